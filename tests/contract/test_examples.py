"""The document's whole-body examples (chalicelib/api/examples.py): each fits its own schema in
the document, and each request example, sent in the order of the flow to an empty service
(chalice.test.Client on moto), gets the operation's documented 2xx with an answer shaped like
the documented answer's example. The MCP tools' input schemas carry the same examples."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

from chalicelib.api import examples, openapi

# the main flow, in the order an agent (and an admin before it) calls it: each operation's
# request example relies on the earlier ones (the manual before the session, ...)
FLOW = [
    "createManual", "listManuals", "getManual", "startSession", "getSession", "listSessions",
    "recordMessage", "recordSessionMessage", "getConversation", "reportProgress", "getNextStep",
    "listEvents", "mcpMessage", "endSession",
    "createEndpoint", "listEndpoints", "getEndpoint", "updateEndpoint", "rotateEndpointSecret",
    "testEndpoint", "replayEndpoint",
    "createKey", "listKeys", "updateKey",
    "createInbox", "getInbox", "updateInbox",
]


def operations(document: dict) -> dict[str, tuple[str, str, dict]]:
    return {op["operationId"]: (path, method, op)
            for path, ops in document["paths"].items() for method, op in ops.items()}


def validator(document: dict, schema: dict) -> OAS31Validator:
    return OAS31Validator({**schema, "components": document["components"]})


def media_examples(op: dict) -> list[tuple[str, dict, dict]]:
    """(where, schema, example value) of every example an operation's body and 2xx answers hold."""
    found = []
    media = op.get("requestBody", {}).get("content", {}).get("application/json")
    for name, example in (media or {}).get("examples", {}).items():
        found.append((f"request {name}", media["schema"], example["value"]))
    for status, response in op["responses"].items():
        media = response.get("content", {}).get("application/json")
        for name, example in (media or {}).get("examples", {}).items():
            found.append((f"{status} {name}", media["schema"], example["value"]))
    return found


def test_every_example_fits_its_own_schema(api) -> None:
    document = api.get("/v1/openapi.json").json
    ops = operations(document)
    checked = 0
    for operation_id, (_, _, op) in ops.items():
        for where, schema, value in media_examples(op):
            errors = [e.message for e in validator(document, schema).iter_errors(value)]
            assert not errors, (operation_id, where, errors)
            checked += 1
    # every JSON request body has an example, and every JSON 2xx answer
    for operation_id, (_, _, op) in ops.items():
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            assert op["requestBody"]["content"]["application/json"].get("examples"), operation_id
        for status, response in op["responses"].items():
            if status.startswith("2") and "application/json" in response.get("content", {}):
                assert response["content"]["application/json"].get("examples"), (operation_id, status)
    assert checked >= 60, checked


def test_an_example_that_no_longer_fits_its_model_fails_the_document(monkeypatch) -> None:
    # GIVEN an example the model refuses (a step status that does not exist)
    monkeypatch.setitem(examples.EXAMPLES, "ProgressIn", {**examples.PROGRESS_IN, "step_status": "FINISHED"})
    monkeypatch.setattr(openapi, "_document", None)
    # THEN building the document fails, naming it (not a reader, later)
    with pytest.raises(ValueError, match="step_status"):
        openapi.document()
    monkeypatch.setattr(openapi, "_document", None)


@pytest.fixture
def example_hosts(monkeypatch) -> None:
    """The examples' webhook URL is on example.com, which this machine cannot resolve: it
    resolves to example.com's public address (the registration guard runs as it is)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".example.com"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_every_request_example_gets_its_documented_2xx(api, example_hosts) -> None:
    document = api.get("/v1/openapi.json").json
    ops = operations(document)
    # path ids the service chooses come from earlier answers, as the document's links say
    ids = {"manual_id": examples.MANUAL_ID, "session_id": examples.SESSION_ID, "inbox_id": examples.INBOX_ID}
    headers: dict[str, str] = {}
    sent = 0
    for operation_id in FLOW:
        path, method, op = ops[operation_id]
        # WHEN the operation is called with its request example (a GET: with none)
        media = op.get("requestBody", {}).get("content", {}).get("application/json")
        body = next(iter(media["examples"].values()))["value"] if media else None
        extra = {"Accept": "application/json"} if operation_id == "mcpMessage" else {}
        response = api.request(method.upper(), path.format(**ids), body, headers={**headers, **extra})
        # THEN it answers one of the documented 2xx statuses with the documented schema
        documented = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert str(response.status_code) in documented, (operation_id, response.status_code, response.json)
        answer = documented[str(response.status_code)]["content"]["application/json"]
        errors = [e.message for e in validator(document, answer["schema"]).iter_errors(response.json)]
        assert not errors, (operation_id, errors)
        # AND the documented example has the answer's shape (the same fields)
        shapes = [set(e["value"]) for e in answer["examples"].values()]
        assert set(response.json) in shapes, (operation_id, set(response.json) ^ shapes[0])
        sent += body is not None
        ids.update({name: response.json[name] for name in ("endpoint_id", "key_id") if name in response.json})
        if "read_token" in response.json:
            headers["X-Inbox-Token"] = response.json["read_token"]
    assert sent == 15  # every request body of the flow (and the MCP message)


def test_the_mcp_tools_input_schemas_carry_the_examples(api) -> None:
    listed = api.request("POST", "/v1/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                         headers={"Accept": "application/json"}).json["result"]["tools"]
    assert len(listed) == 9
    for tool in listed:
        schema = tool["inputSchema"]
        assert schema.get("examples"), tool["name"]
        for example in schema["examples"]:
            errors = [e.message for e in OAS31Validator(schema).iter_errors(example)]
            assert not errors, (tool["name"], errors)
    by_name = {tool["name"]: tool for tool in listed}
    assert by_name["report_progress"]["inputSchema"]["examples"][0]["step_status"] == "DONE"
