"""A whole tutoring session through the MCP endpoint with the official `mcp` SDK's client,
shared by tests/api/test_mcp.py (Chalice's test client under an HTTP transport) and
tests/e2e/test_mcp.py (the local stack over real HTTP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

TOOLS = {"list_manuals", "get_manual", "start_session", "get_session", "record_message",
         "report_progress", "get_next_step", "get_conversation", "end_session"}
READ_TOOLS = {"list_manuals", "get_manual", "get_session", "get_next_step", "get_conversation"}
# REST: (method, path, body) -> (status, JSON body), with the same key
Rest = Callable[[str, str, Any], tuple[int, Any]]


def client(url: str, key: str, transport: httpx2.AsyncBaseTransport | None = None, mode: str = "auto") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, transport=transport, timeout=60)
    return Client(streamable_http_client(url, http_client=http), mode=mode)


def error_of(result: Any) -> dict[str, Any]:
    """The REST error body a failed tool call carries."""
    assert result.is_error, result
    return json.loads(result.content[0].text)


async def call(mcp: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed: its structured content (checked by the SDK against the
    tool's outputSchema)."""
    result = await mcp.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.content[0].type == "text" and len(result.content[0].text) < 300  # a short text
    assert json.loads(result.content[1].text) == result.structured_content
    return result.structured_content


async def whole_session(mcp: Client, rest: Rest, run: str) -> None:
    """Handshake, tool list, and a session from start to completion, with retries and errors."""
    manual, session, user = f"mcp-m-{run}", f"mcp-s-{run}", f"mcp-u-{run}"
    assert rest("POST", "/v1/manuals", {"manual_id": manual, "title": "MCP", "steps": [
        {"step_number": n, "title": f"Step {n}", "content": f"Do {n}."} for n in (1, 2, 3)]})[0] == 201
    # GIVEN a connected client: the handshake negotiated a revision (stateless: no session id)
    assert mcp.protocol_version == "2025-11-25"
    assert mcp.server_info is not None and mcp.server_info.name == "session-service"
    assert "report_progress" in (mcp.instructions or "")
    # the curated tools, each with schemas and true annotations
    listed = {t.name: t for t in (await mcp.list_tools()).tools}
    assert set(listed) == TOOLS
    for name, tool in listed.items():
        assert tool.output_schema and tool.output_schema["type"] == "object", name
        assert tool.annotations is not None and tool.annotations.read_only_hint == (name in READ_TOOLS), name
    progress = listed["report_progress"]
    assert {"session_id", "user_id", "current_step", "step_status", "idempotency_key"} == set(
        progress.input_schema["properties"])
    assert progress.input_schema["properties"]["step_status"]["enum"] == ["DONE", "ONGOING"]
    assert "out_of_order" in (progress.description or "") and "idempotency" in (progress.description or "")
    assert listed["end_session"].annotations.destructive_hint is True
    assert listed["start_session"].annotations.destructive_hint is False
    assert "idempotency_key" in listed["record_message"].input_schema["properties"]

    # WHEN the agent runs a session through the tools
    manuals = await call(mcp, "list_manuals", limit=100)
    assert manual in [m["manual_id"] for m in manuals["items"]] or manuals["next_cursor"]
    assert (await call(mcp, "get_manual", manual_id=manual))["total_steps"] == 3
    started = await call(mcp, "start_session", session_id=session, user_id=user, manual_id=manual)
    assert (started["created"], started["status"], started["current_step"]) == (True, "active", 1)
    again = await call(mcp, "start_session", session_id=session, user_id=user, manual_id=manual)
    assert again["created"] is False and again["started_at"] == started["started_at"]

    said = await call(mcp, "record_message", session_id=session, user_id=user, sender="user",
                      message="Hello!", idempotency_key=f"m1-{run}")
    assert (said["message_id"], said["replayed"]) == (f"m1-{run}", False)
    replayed = await call(mcp, "record_message", session_id=session, user_id=user, sender="user",
                          message="Hello!", idempotency_key=f"m1-{run}")
    assert replayed["replayed"] is True and replayed["created_at"] == said["created_at"]
    await call(mcp, "record_message", session_id=session, user_id=user, sender="agent", message="Step 1 now.")
    conversation = await call(mcp, "get_conversation", session_id=session)
    assert [m["sender"] for m in conversation["items"]] == ["user", "agent"]

    first = await call(mcp, "report_progress", session_id=session, user_id=user, current_step=1,
                       step_status="DONE", idempotency_key=f"p1-{run}")
    assert first["replayed"] is False and first["next_step"]["step_number"] == 2
    # a replayed call: the first answer, nothing changed
    retry = await call(mcp, "report_progress", session_id=session, user_id=user, current_step=1,
                       step_status="DONE", idempotency_key=f"p1-{run}")
    assert retry["replayed"] is True and retry["event_id"] == first["event_id"]
    assert retry["session"] == first["session"]
    ongoing = await call(mcp, "report_progress", session_id=session, user_id=user, current_step=2,
                         step_status="ONGOING")
    assert ongoing["session"]["current_step"] == 2
    await call(mcp, "report_progress", session_id=session, user_id=user, current_step=2, step_status="DONE")
    late = await call(mcp, "report_progress", session_id=session, user_id=user, current_step=1, step_status="DONE")
    assert (late["out_of_order"], late["applied"]) == (True, False)
    nxt = await call(mcp, "get_next_step", session_id=session)
    assert (nxt["is_completed"], nxt["next_step"]["step_number"]) == (False, 3)
    done = await call(mcp, "report_progress", session_id=session, user_id=user, current_step=3, step_status="DONE")
    # THEN the session completed, as REST sees it too
    assert done["session"]["status"] == "completed" and done["next_step"] is None
    assert (await call(mcp, "get_next_step", session_id=session))["is_completed"] is True
    assert (await call(mcp, "get_session", session_id=session))["completed_steps"] == [1, 2, 3]
    assert rest("GET", f"/v1/sessions/{session}", None)[1]["status"] == "completed"

    # errors: tool errors with REST's code and message
    refused = await mcp.call_tool("report_progress", {"session_id": session, "user_id": user,
                                                      "current_step": 3, "step_status": "DONE"})
    status, body = rest("POST", f"/v1/sessions/{session}/progress",
                        {"user_id": user, "current_step": 3, "step_status": "DONE"})
    assert status == 400 and error_of(refused) == body and body["error"] == "session_ended"
    missing = await mcp.call_tool("get_session", {"session_id": f"nothing-{run}"})
    assert error_of(missing) == rest("GET", f"/v1/sessions/nothing-{run}", None)[1]
    invalid = await mcp.call_tool("report_progress", {"session_id": session, "user_id": user,
                                                      "current_step": 0, "step_status": "FINISHED"})
    assert error_of(invalid)["error"] == "validation_error"
    assert {f["field"] for f in error_of(invalid)["fields"]} == {"current_step", "step_status"}
    with pytest.raises(MCPError) as unknown:
        await mcp.call_tool("delete_everything", {})
    assert unknown.value.error.code == -32602

    # ending a session: once, then session_ended
    other = f"{session}-end"
    await call(mcp, "start_session", session_id=other, user_id=user, manual_id=manual)
    assert (await call(mcp, "end_session", session_id=other, status="abandoned"))["status"] == "abandoned"
    assert error_of(await mcp.call_tool("end_session", {"session_id": other, "status": "ended"}))[
        "error"] == "session_ended"
