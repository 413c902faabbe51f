"""The JSON-RPC side of the MCP endpoint: the stateless subset of the Streamable HTTP transport.

Every POST carries one JSON-RPC message and is answered on its own: a request gets its
response as `application/json`, a notification or a client's response gets 202 with no body.
No session id is issued and nothing is kept between requests (a Lambda instance may serve the
next one, or not), so `initialize` only negotiates the protocol revision and `tools/call` needs
no handshake before it. Methods: initialize, ping, tools/list, tools/call.

Tool failures are results with `isError: true` whose text is the REST error body
(`{"error": code, "message": ...}`, the same code and message as the REST route), so the model
can read and correct them; JSON-RPC errors are kept for protocol faults (unknown method or tool,
malformed params). What is not a JSON-RPC message at all is refused at the HTTP level (400, the
REST error body), as the transport allows.
"""

import json
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import ConfigDict, StrictInt, StrictStr, StringConstraints, model_validator

from chalicelib import __version__
from chalicelib.api.http import validate
from chalicelib.api.mcp.tools import TOOLS, Tool
from chalicelib.domain.errors import Forbidden, ServiceError
from chalicelib.domain.models import Model
from chalicelib.observability import logger
from chalicelib.services.keys import Principal

# Handshake-era revisions whose Streamable HTTP transport this endpoint speaks, oldest first.
ProtocolVersion = Literal["2025-03-26", "2025-06-18", "2025-11-25"]
PROTOCOL_VERSIONS: tuple[str, ...] = get_args(ProtocolVersion)
LATEST_VERSION = PROTOCOL_VERSIONS[-1]
INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32600, -32601, -32602

INSTRUCTIONS = (
    "Session service: keeps the state of a learner's session with you, the tutor. Typical use: "
    "list_manuals / get_manual to pick a manual; start_session (give your own session_id so a "
    "retry is safe); during the lesson record_message for each chat message (yours: sender "
    "'agent', the learner's: 'user') and report_progress with DONE or ONGOING on a step (give an "
    "idempotency_key so a retry is safe); get_next_step tells what to teach next; the session "
    "completes by itself when the last step is DONE; end_session ends it early. Failures are "
    "tool errors carrying {\"error\": code, \"message\": ...}.")

RequestId = StrictInt | StrictStr


class JsonRpcMessage(Model):
    """One JSON-RPC 2.0 message: a request (method and id), a notification (method, no id) or
    a response to the server (id with result or error). Batches are not accepted (MCP
    removed them in 2025-06-18)."""

    # the validator below, as JSON Schema (the OpenAPI document says what it refuses)
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "if": {"required": ["method"], "properties": {"method": {"type": "string"}}},
        "then": {"properties": {"id": {"not": {"type": "null"}}, "result": {"type": "null"},
                                "error": {"type": "null"}}},
        "else": {"required": ["id"], "oneOf": [
            {"required": ["result"], "properties": {"result": {"type": "object"}, "error": {"type": "null"}}},
            {"required": ["error"], "properties": {"error": {"type": "object"}, "result": {"type": "null"}}}]}})

    jsonrpc: Literal["2.0"]
    id: RequestId | None = None
    method: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _a_request_notification_or_response(self) -> "JsonRpcMessage":
        if self.method is not None:
            if self.result is not None or self.error is not None:
                raise ValueError("a request or notification has no result or error")
            if "id" in self.model_fields_set and self.id is None:
                raise ValueError("a request's id must be a string or an integer, not null")
        elif "id" not in self.model_fields_set or (self.result is None) == (self.error is None):
            raise ValueError("a message needs a method (a request or notification) or an id with "
                             "either a result or an error (a response)")
        return self


class JsonRpcError(Model):
    code: int
    message: str
    data: Any = None


class JsonRpcResult(Model):
    jsonrpc: Literal["2.0"]
    id: RequestId
    result: dict[str, Any]


class JsonRpcErrorResponse(Model):
    jsonrpc: Literal["2.0"]
    id: RequestId | None
    error: JsonRpcError


class Failure(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    """A JSON-RPC error to answer with (a protocol fault, not a tool's failure)."""

    code: int
    message: str


def handle(message: JsonRpcMessage, principal: Principal | None) -> dict[str, Any] | None:
    """The JSON-RPC response to `message`, or None for a notification or a response (HTTP 202)."""
    if message.method is None or message.id is None:
        return None
    params = message.params or {}
    method = _METHODS.get(message.method)
    answer = method(params, principal) if method else Failure(METHOD_NOT_FOUND, f"Method not found: {message.method}")
    if isinstance(answer, Failure):
        return {"jsonrpc": "2.0", "id": message.id, "error": {"code": answer.code, "message": answer.message}}
    return {"jsonrpc": "2.0", "id": message.id, "result": answer}


def initialize(params: dict[str, Any], principal: Principal | None) -> dict[str, Any] | Failure:
    requested = params.get("protocolVersion")
    if not isinstance(requested, str):
        return Failure(INVALID_PARAMS, "initialize needs params.protocolVersion (a string)")
    return {
        # the client's revision if spoken here, else ours: the client decides whether to go on
        "protocolVersion": requested if requested in PROTOCOL_VERSIONS else LATEST_VERSION,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": "session-service", "title": "Session service", "version": __version__},
        "instructions": INSTRUCTIONS,
    }


def ping(params: dict[str, Any], principal: Principal | None) -> dict[str, Any] | Failure:
    return {}


def list_tools(params: dict[str, Any], principal: Principal | None) -> dict[str, Any] | Failure:
    """The tools this key may call (a read key sees the read tools), on one page."""
    if params.get("cursor") is not None:
        return Failure(INVALID_PARAMS, "Invalid cursor: the tool list has one page")
    return {"tools": [tool.definition() for tool in TOOLS.values() if _allowed(principal, tool)]}


def call_tool(params: dict[str, Any], principal: Principal | None) -> dict[str, Any] | Failure:
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str):
        return Failure(INVALID_PARAMS, "tools/call needs params.name (a string)")
    tool = TOOLS.get(name)
    if tool is None:
        return Failure(INVALID_PARAMS, f"Unknown tool: {name}")
    if arguments is not None and not isinstance(arguments, dict):
        return Failure(INVALID_PARAMS, "params.arguments must be an object")
    try:
        if not _allowed(principal, tool):
            raise Forbidden(f"This API key's scopes do not allow this request (it needs '{tool.scope}').")
        output, text = tool.run(principal, validate(tool.arguments, arguments or {}))
    except ServiceError as exc:
        return _tool_error(exc.to_body())
    except Exception:  # noqa: BLE001 - the tool's error boundary: a bug is a tool error, logged
        logger.exception("unhandled error", extra={"route": "/v1/mcp", "tool": name})
        return _tool_error({"error": "internal_error", "message": "An internal error occurred."})
    structured = output.model_dump(mode="json")
    return {"content": [{"type": "text", "text": text},
                        {"type": "text", "text": json.dumps(structured, separators=(",", ":"), ensure_ascii=False)}],
            "structuredContent": structured, "isError": False}


def _tool_error(body: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": json.dumps(body, ensure_ascii=False)}], "isError": True}


def _allowed(principal: Principal | None, tool: Tool) -> bool:
    return principal is not None and principal.allows(tool.scope)


_METHODS = {"initialize": initialize, "ping": ping, "tools/list": list_tools, "tools/call": call_tool}
