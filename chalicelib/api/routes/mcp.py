"""The MCP endpoint: POST /v1/mcp, Streamable HTTP, stateless, JSON responses (no SSE stream).

The route needs the lowest scope (`read`) and admits keys bound to a user, so that any key can
reach the endpoint; each tool call then checks the tool's own scope, and narrows a bound key to
its user, as the tool's REST route does (chalicelib/api/mcp/tools.py). GET (with a key, like
every route) answers 405: there is no stream to open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chalice import Response
from chalice.app import Request

from chalicelib.api.http import header, json_response, parse_body
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource, caller
from chalicelib.domain.errors import Forbidden, MethodNotAllowed, NotAcceptable, UnsupportedProtocolVersion

if TYPE_CHECKING:
    from chalicelib.api.mcp import protocol
    from chalicelib.api.mcp.protocol import JsonRpcErrorResponse, JsonRpcMessage, JsonRpcResult, ProtocolVersion
    from chalicelib.api.schemas import ErrorBody
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    protocol = lazy("chalicelib.api.mcp", "protocol")
    JsonRpcErrorResponse, JsonRpcMessage, JsonRpcResult, ProtocolVersion = lazy(
        "chalicelib.api.mcp.protocol", "JsonRpcErrorResponse", "JsonRpcMessage", "JsonRpcResult", "ProtocolVersion")
    ErrorBody = lazy("chalicelib.api.schemas", "ErrorBody")

bp = Resource(__name__)
route = bp.declare


@route("/v1/mcp", "POST",
       summary="MCP (Model Context Protocol) endpoint: one JSON-RPC message per request",
       body=JsonRpcMessage,
       responses={200: [JsonRpcResult, JsonRpcErrorResponse], 202: None},
       headers=(("MCP-Protocol-Version", ProtocolVersion),), scope="read", per_user=True,
       errors=(UnsupportedProtocolVersion, NotAcceptable, Forbidden))
def mcp_message() -> Response:
    """The Model Context Protocol (Streamable HTTP, stateless, JSON answers): POST one JSON-RPC
    message (initialize, tools/list, tools/call ...); a notification or a response is
    accepted with 202 and no body. Each tool checks the scope of the REST operation it maps
    to. GET answers 405 (no SSE stream). Connect an MCP client to this URL with the API key
    as `Authorization: Bearer <key>`."""
    request = bp.current_request
    _check_origin(request)
    _check_accept(request)
    version = header(request, "MCP-Protocol-Version")
    if version is not None and version not in protocol.PROTOCOL_VERSIONS:
        raise UnsupportedProtocolVersion(
            f"MCP-Protocol-Version {version[:64]!r} is not supported here.",
            supported=list(protocol.PROTOCOL_VERSIONS))
    reply = protocol.handle(parse_body(request, JsonRpcMessage), caller(request))
    if reply is None:  # a notification, or a response to the server: accepted, no body
        return Response(body="", status_code=202)
    return json_response(reply)


# left out of the document: GET only ever answers 405 (the POST operation says so)
@route("/v1/mcp", "GET", summary="No SSE stream: 405", responses={405: ErrorBody}, per_user=True,
       documented=False)
def mcp_stream() -> Response:
    raise MethodNotAllowed("The MCP endpoint is stateless and answers in JSON: POST one JSON-RPC "
                           "message; there is no SSE stream to open.", allow="POST")


def _check_origin(request: Request) -> None:
    """The transport's guard against DNS rebinding: a browser's Origin must be this host's."""
    origin = header(request, "Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != (header(request, "Host") or "").lower():
        raise Forbidden("Requests from another origin are refused by the MCP endpoint.")


def _check_accept(request: Request) -> None:
    accept = header(request, "Accept")
    if accept is None:
        return
    for item in accept.split(","):
        media, *options = (part.strip().lower() for part in item.split(";"))
        refused = any(o.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for o in options)
        if media in ("application/json", "application/*", "*/*") and not refused:
            return
    raise NotAcceptable("The MCP endpoint answers application/json: accept it (Accept: "
                        "application/json, text/event-stream).")
