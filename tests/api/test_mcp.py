"""The MCP endpoint through Chalice's test client: the official SDK's client (over an HTTP
transport that hands each request to chalice.test.Client), then the transport's edges, scopes
and per-user keys with raw JSON-RPC, and the round trips of the tools that write."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import anyio
import httpx2

from chalicelib.db import table as store
from tests import mcp_session
from tests.conftest import Api

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


class ChaliceTransport(httpx2.AsyncBaseTransport):
    """httpx2 requests answered by chalice.test.Client (the app in-process, on moto)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        answer = self.client.http.request(request.method, request.url.raw_path.decode(),
                                          headers=dict(request.headers), body=body)
        return httpx2.Response(answer.status_code, headers=answer.headers, content=answer.body)


def headers_of(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


def rpc(api: Api, method: str, params: dict[str, Any] | None = None, **headers: str) -> Any:
    message = {"jsonrpc": "2.0", "id": 7, "method": method, **({"params": params} if params is not None else {})}
    return api.post("/v1/mcp", message, headers=headers)


def tool(api: Api, name: str, **arguments: Any) -> dict[str, Any]:
    response = rpc(api, "tools/call", {"name": name, "arguments": arguments})
    assert response.status_code == 200, response.json
    return response.json["result"]


def test_a_whole_session_with_the_sdk_client(api, client) -> None:
    def rest(method: str, path: str, body: Any) -> tuple[int, Any]:
        response = api.request(method, path, body)
        return response.status_code, response.json

    async def scenario() -> None:
        async with mcp_session.client("http://testserver/v1/mcp", api.key or "", ChaliceTransport(client)) as mcp:
            await mcp_session.whole_session(mcp, rest, "api")

    anyio.run(scenario)


def test_the_handshake_is_stateless_and_answers_json(api) -> None:
    response = api.post("/v1/mcp", INIT)
    assert response.status_code == 200 and headers_of(response)["content-type"] == "application/json"
    assert "mcp-session-id" not in headers_of(response)
    result = response.json["result"]
    assert result["protocolVersion"] == "2025-06-18" and result["capabilities"] == {"tools": {"listChanged": False}}
    # a revision not spoken here: the server offers its own
    other = api.post("/v1/mcp", {**INIT, "params": {**INIT["params"], "protocolVersion": "2024-01-01"}})
    assert other.json["result"]["protocolVersion"] == "2025-11-25"
    # no handshake needed before a call (another Lambda instance may answer it anyway)
    assert rpc(api, "tools/list").json["result"]["tools"]
    assert rpc(api, "ping").json == {"jsonrpc": "2.0", "id": 7, "result": {}}
    # notifications and responses: 202, no body
    note = api.post("/v1/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert (note.status_code, note.body) == (202, b"")
    assert api.post("/v1/mcp", {"jsonrpc": "2.0", "id": 3, "result": {}}).status_code == 202


def test_protocol_faults(api) -> None:
    unknown = rpc(api, "resources/list")
    assert unknown.status_code == 200 and unknown.json["error"]["code"] == -32601
    assert rpc(api, "tools/call", {"arguments": {}}).json["error"]["code"] == -32602
    assert rpc(api, "tools/list", {"cursor": "x"}).json["error"]["code"] == -32602
    assert rpc(api, "initialize", {}).json["error"]["code"] == -32602
    # what is not one JSON-RPC message is refused over HTTP, in the API's error shape
    for raw, code in ((b"not json", "invalid_json"), (b"[" + json.dumps(INIT).encode() + b"]", "invalid_json"),
                      (b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', "validation_error"),
                      (b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', "validation_error"),
                      (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', "validation_error"),
                      (b'{"jsonrpc": "2.0", "id": 1}', "validation_error"),
                      (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "extra": 1}', "validation_error")):
        response = api.post("/v1/mcp", raw=raw)
        assert (response.status_code, response.json["error"]) == (400, code), raw
    version = rpc(api, "ping", **{"MCP-Protocol-Version": "2099-01-01"})
    assert (version.status_code, version.json["error"]) == (400, "unsupported_protocol_version")
    assert "2025-11-25" in version.json["supported"]
    assert rpc(api, "ping", **{"MCP-Protocol-Version": "2025-03-26"}).status_code == 200
    accept = rpc(api, "ping", Accept="text/html")
    assert (accept.status_code, accept.json["error"]) == (406, "not_acceptable")
    assert rpc(api, "ping", Accept="application/json, text/event-stream").status_code == 200
    assert rpc(api, "ping", Accept="application/json;q=0, text/event-stream").status_code == 406
    origin = rpc(api, "ping", Origin="http://evil.example", Host="api.example")
    assert (origin.status_code, origin.json["error"]) == (403, "forbidden")
    assert rpc(api, "ping", Origin="https://api.example", Host="api.example").status_code == 200


def test_get_answers_405_and_no_key_answers_401_with_a_bearer_challenge(api) -> None:
    stream = api.get("/v1/mcp", headers={"Accept": "text/event-stream"})
    assert (stream.status_code, stream.json["error"], headers_of(stream)["allow"]) == (405, "method_not_allowed", "POST")
    for key in (None, "ssk_not_a_key"):
        refused = api.as_key(key).post("/v1/mcp", INIT)
        assert (refused.status_code, refused.json["error"]) == (401, "unauthorized")
        assert headers_of(refused)["www-authenticate"] == 'Bearer realm="session-service"'


def test_each_tool_needs_its_routes_scope(api, make_session) -> None:
    session = make_session(steps=2, user_id="ann")
    read = api.as_key(api.post("/v1/keys", {"scopes": ["read"]}).json["key"])
    # a read key reaches the endpoint, sees the read tools, and calls them only
    listed = {t["name"] for t in rpc(read, "tools/list").json["result"]["tools"]}
    assert listed == mcp_session.READ_TOOLS
    assert tool(read, "get_session", session_id=session["session_id"])["structuredContent"]["user_id"] == "ann"
    refused = tool(read, "report_progress", session_id=session["session_id"], user_id="ann",
                   current_step=1, step_status="DONE")
    assert refused["isError"] is True and json.loads(refused["content"][0]["text"]) == {
        "error": "forbidden", "message": "This API key's scopes do not allow this request (it needs 'agent')."}
    assert api.get(f"/v1/sessions/{session['session_id']}").json["completed_steps"] == []
    agent = api.as_key(api.post("/v1/keys", {"scopes": ["agent"]}).json["key"])
    assert set(t["name"] for t in rpc(agent, "tools/list").json["result"]["tools"]) == mcp_session.TOOLS
    assert tool(agent, "report_progress", session_id=session["session_id"], user_id="ann",
                current_step=1, step_status="DONE")["isError"] is False


def test_a_key_bound_to_a_user_reaches_only_its_users_sessions(api, make_session) -> None:
    theirs = make_session(steps=2, user_id="bob")
    mine = make_session(steps=2, user_id="ann")
    bound = api.as_key(api.post("/v1/keys", {"scopes": ["agent"], "user_id": "ann"}).json["key"])
    sid = theirs["session_id"]
    for name, arguments in (
            ("get_session", {"session_id": sid}), ("get_next_step", {"session_id": sid}),
            ("get_conversation", {"session_id": sid}), ("end_session", {"session_id": sid, "status": "ended"}),
            ("report_progress", {"session_id": sid, "user_id": "bob", "current_step": 1, "step_status": "DONE"}),
            ("record_message", {"session_id": sid, "user_id": "bob", "message": "x", "sender": "user"}),
            ("start_session", {"user_id": "bob", "manual_id": theirs["manual_id"]})):
        result = tool(bound, name, **arguments)
        assert json.loads(result["content"][0]["text"])["error"] == "forbidden", name
    assert api.get(f"/v1/sessions/{sid}").json["status"] == "active"
    assert api.get(f"/v1/sessions/{sid}/messages").json["items"] == []
    # its own user's session: allowed
    ok = tool(bound, "get_next_step", session_id=mine["session_id"])
    assert ok["isError"] is False and ok["structuredContent"]["next_step"]["step_number"] == 1
    # a user_id of someone else on the user's own session: refused as REST refuses it
    other = tool(bound, "report_progress", session_id=mine["session_id"], user_id="bob",
                 current_step=1, step_status="DONE")
    assert json.loads(other["content"][0]["text"])["error"] == "forbidden"


def test_a_tool_call_costs_its_routes_round_trips(api, make_session) -> None:
    session = make_session(steps=3, user_id="u")
    sid = session["session_id"]
    api.get("/v1/manuals")  # the key's lookup is cached from here on
    counter: Counter = Counter()
    store.get_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: counter.update([event_name.rsplit(".", 1)[-1]]))

    def used(name: str, **arguments: Any) -> int:
        counter.clear()
        assert tool(api, name, **arguments)["isError"] is False
        return sum(counter.values())

    def rest(method: str, path: str, body: Any = None) -> int:
        counter.clear()
        assert api.request(method, path, body).status_code in (200, 201)
        return sum(counter.values())

    # writes: the same counts as the REST routes in the same situation
    progress = {"user_id": "u", "step_status": "ONGOING"}
    assert used("report_progress", session_id=sid, current_step=1, idempotency_key="k1", **progress) == rest(
        "POST", f"/v1/sessions/{sid}/progress", {"current_step": 2, "idempotency_key": "k2", **progress}) == 2
    assert used("report_progress", session_id=sid, current_step=1, idempotency_key="k1", **progress) == rest(
        "POST", f"/v1/sessions/{sid}/progress", {"current_step": 2, "idempotency_key": "k2", **progress}) == 1
    message = {"user_id": "u", "message": "hi", "sender": "user"}
    assert used("record_message", session_id=sid, **message) == rest(
        "POST", f"/v1/sessions/{sid}/messages", message) == 1
    # reads: each tool as its route
    for name, path in (("get_session", f"/v1/sessions/{sid}"), ("get_next_step", f"/v1/sessions/{sid}/next-step"),
                       ("get_conversation", f"/v1/sessions/{sid}/messages"),
                       ("get_manual", f"/v1/manuals/{session['manual_id']}"), ("list_manuals", "/v1/manuals")):
        arguments = {"manual_id": session["manual_id"]} if name == "get_manual" else (
            {} if name == "list_manuals" else {"session_id": sid})
        assert used(name, **arguments) == rest("GET", path) == 1, name
    assert used("end_session", session_id=sid, status="ended") == 3  # as PATCH (test_round_trips.py)


def test_the_authorizers_policy_lets_every_key_reach_the_endpoint() -> None:
    import app  # noqa: F401 - declares every route
    from chalicelib.api import auth, openapi
    from chalicelib.services.keys import Principal

    # the route needs the lowest scope and admits bound keys: the tools check the rest
    for scopes, user in (({"read"}, None), ({"read"}, "ann"), ({"agent"}, "ann"), ({"admin"}, None)):
        allowed = dict(auth.policy_routes(Principal("k", frozenset(scopes), user), openapi.route_policies()))
        assert sorted(allowed["/v1/mcp"]) == ["GET", "HEAD", "POST"], (scopes, user)  # HEAD: as GET
