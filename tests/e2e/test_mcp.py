"""The MCP endpoint of `make run`'s stack over real HTTP, with the official `mcp` SDK's client:
the handshake, the tool list and a whole session through tools/call; the transport's 405 and
401 as an MCP client meets them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from tests import mcp_session

RUN = uuid.uuid4().hex[:6]  # the local stack is shared with other test files


def rest_as(base: str, key: str) -> mcp_session.Rest:
    def rest(method: str, path: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(f"{base}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    return rest


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_whole_session_over_http_with_the_sdk_client(local_stack, mode) -> None:
    base, key = local_stack["api"], local_stack["api_key"]

    async def scenario() -> None:
        async with mcp_session.client(f"{base}/v1/mcp", key, mode=mode) as mcp:
            await mcp_session.whole_session(mcp, rest_as(base, key), f"{RUN}-{mode}")

    anyio.run(scenario)


def test_the_transport_edges_over_http(local_stack) -> None:
    url = f"{local_stack['api']}/v1/mcp"
    with httpx2.Client(timeout=30) as http:
        # no key: 401 with the bearer challenge an MCP client looks for
        refused = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                            headers={"Accept": "application/json, text/event-stream"})
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert refused.headers["www-authenticate"] == 'Bearer realm="session-service"'
        # GET: no SSE stream
        stream = http.get(url, headers={"Accept": "text/event-stream",
                                        "Authorization": f"Bearer {local_stack['api_key']}"})
        assert (stream.status_code, stream.headers["allow"]) == (405, "POST")
        assert stream.json()["error"] == "method_not_allowed"

        # the SDK's client refuses to connect without a key
        async def connect() -> None:
            async with mcp_session.client(url, "ssk_not_a_key", mode="legacy"):
                pass

        with pytest.raises(ExceptionGroup) as failed:
            anyio.run(connect)
        assert failed.group_contains(MCPError)
