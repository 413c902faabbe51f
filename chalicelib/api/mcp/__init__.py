"""The MCP endpoint (POST /v1/mcp): the Model Context Protocol's Streamable HTTP transport,
stateless and JSON-only, so it runs behind API Gateway and Lambda like every other route.

`protocol` is the JSON-RPC side (the messages, the handshake, tools/list and tools/call);
`tools` is the curated tool table, each tool a thin adapter over the service its REST route
calls. The route itself is chalicelib/api/routes/mcp.py. No MCP SDK ships in the zip: the
stateless subset is a few JSON-RPC methods.
"""
