"""The OpenAPI document fed to an OpenAPI-to-MCP converter, as a new user would: FastMCP's
`FastMCP.from_openapi` (PyPI `fastmcp`), before the document was made exact and now.

    python bench/bench_openapi_mcp.py CONVERTER_PYTHON [BEFORE_COMMIT]

CONVERTER_PYTHON is a Python with `fastmcp` installed (not one of ours: its pins are its own),
e.g. `python3 -m venv /tmp/fastmcp-venv && /tmp/fastmcp-venv/bin/pip install fastmcp`.
BEFORE_COMMIT (default 3a16ceb, the parent of the exact-document work) is unpacked with `git
archive` into a temporary folder. For each version: its local stack (`python -m local.stack`
of that version) is started, its /v1/openapi.json is read and converted; the converter's tools
are counted (with a description, with typed and with bounded input properties, with examples,
with an output schema), and four of them are called through FastMCP's client against that
stack: createManual (the seed manual), listManuals, startSession, reportProgress (DONE on step 1).
Prints one JSON line per version and a Markdown table.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "ssk_local_stack_admin_key_for_tests_only_0001"
# the calls, by (method, path): each version names its operations its own way
CALLS = [("post", "/v1/manuals"), ("get", "/v1/manuals"), ("post", "/v1/sessions"),
         ("post", "/v1/sessions/{session_id}/progress")]


# ---- the converter's side (runs in CONVERTER_PYTHON) ---------------------------------------


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = {**root.get("$defs", {}).get(name, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
    options = [o for o in schema.get("anyOf", schema.get("oneOf", [])) if o.get("type") != "null"]
    if len(options) == 1 and "type" not in schema:
        return {**{k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}, **_resolve(options[0], root)}
    return schema


def _typed(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", schema.get("oneOf"))
    if options and "type" not in schema:
        return all(_typed(o) for o in options)
    return "type" in schema or "enum" in schema or "const" in schema


def _bounded(schema: dict[str, Any]) -> bool:
    """A value an LLM cannot get wrong by shape alone: an enum or constant, a string with a
    pattern, a length bound or a format, a number between bounds, a boolean, a bounded array."""
    kind = schema.get("type")
    if "enum" in schema or "const" in schema or kind == "boolean":
        return True
    if kind == "string":
        return any(k in schema for k in ("pattern", "maxLength", "format"))
    if kind in ("integer", "number"):
        return ("minimum" in schema or "exclusiveMinimum" in schema) and (
            "maximum" in schema or "exclusiveMaximum" in schema)
    if kind == "array":
        return "maxItems" in schema
    return False


async def _convert(document: dict[str, Any], api: str) -> dict[str, Any]:
    import httpx2
    from fastmcp import Client, FastMCP

    http = httpx2.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    started = time.perf_counter()
    server = FastMCP.from_openapi(document, client=http)
    names = {(m, p): op["operationId"] for p, ops in document["paths"].items() for m, op in ops.items()
             if isinstance(op, dict) and "operationId" in op}
    async with Client(server) as client:
        tools = await client.list_tools()
        seconds = time.perf_counter() - started
        properties = typed = bounded = described = 0
        for tool in tools:
            schema = tool.input_schema
            for prop in schema.get("properties", {}).values():
                resolved = _resolve(prop, schema)
                properties += 1
                typed += _typed(resolved)
                bounded += _bounded(resolved)
                described += bool(resolved.get("description"))
        seed = json.loads((Path(__file__).resolve().parents[1] / "manuals" / "intro.json").read_text())
        seed["manual_id"] = f"mcp-bench-{int(time.time())}"
        arguments = [seed, {}, {"user_id": "ada", "manual_id": seed["manual_id"]},
                     {"user_id": "ada", "current_step": 1, "step_status": "DONE"}]
        calls = []
        session_id = None
        for (method, path), args in zip(CALLS, arguments, strict=True):
            name = names.get((method, path))
            if path.endswith("/progress"):
                args = {**args, "session_id": session_id}
            try:
                result = await client.call_tool(name, args, raise_on_error=False)
                data = result.structured_content or {}
                text = " ".join(getattr(c, "text", "") for c in result.content)[:300]
                ok = not result.is_error
                if method == "post" and path == "/v1/sessions" and ok:
                    data = data.get("result", data)
                    session_id = data.get("session_id")
                calls.append({"tool": name, "ok": ok, "said": text if not ok else ""})
            except Exception as exc:  # noqa: BLE001 (a converter failure is a measurement)
                calls.append({"tool": name, "ok": False, "said": f"{type(exc).__name__}: {exc}"[:300]})
    return {"tools": len(tools), "with_description": sum(bool((t.description or "").strip()) for t in tools),
            "description_chars_median": sorted(len(t.description or "") for t in tools)[len(tools) // 2],
            "input_properties": properties, "typed": typed, "bounded": bounded, "described": described,
            "with_examples": sum(bool(t.input_schema.get("examples")) or any(
                "examples" in p or "example" in p for p in t.input_schema.get("properties", {}).values())
                for t in tools),
            "with_body_example": sum(bool(t.input_schema.get("examples")) for t in tools),
            "with_output_schema": sum(bool(t.output_schema) for t in tools),
            "tools_list_kb": round(len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True)
                                                   for t in tools])) / 1024),
            "names": sorted(t.name for t in tools)[:6], "convert_seconds": round(seconds, 2), "calls": calls}


# ---- our side: the versions and their stacks ------------------------------------------------


def _stack(root: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PORT": "0", "MOTO_PORT": "0", "LOCAL_INBOX_TOKEN": "bench-token",
           "LOCAL_API_KEY": KEY, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(root)}
    for name in ("AWS_ENDPOINT_URL", "TABLE_NAME", "WEBHOOK_URL", "PUBLIC_API_URL"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    deadline, api, lines = time.monotonic() + 120, None, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"API\s+(http://\S+)/v1", line)
        api = api or (found.group(1) if found else None)
        if "Ctrl-C stops everything" in line:
            break
    assert api, "".join(lines)
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    return proc, api


def measure(root: Path, converter: str) -> dict[str, Any]:
    import httpx

    proc, api = _stack(root)
    try:
        document = httpx.get(f"{api}/v1/openapi.json", headers={"Authorization": f"Bearer {KEY}"}, timeout=120).json()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(document, f)
        out = subprocess.run([converter, __file__, "--convert", f.name, api], capture_output=True, text=True,
                             timeout=600, cwd=tempfile.gettempdir())
        assert out.returncode == 0, out.stderr[-3000:]
        operations = sum(1 for ops in document["paths"].values() for op in ops.values() if isinstance(op, dict))
        # beside it, the service's own MCP endpoint (curated tools): its tools/list
        own = httpx.post(f"{api}/v1/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=60,
                         headers={"Authorization": f"Bearer {KEY}", "Accept": "application/json"}).json()
        tools = own.get("result", {}).get("tools", [])
        return {"operations": operations, **json.loads(out.stdout.strip().splitlines()[-1]),
                "own_mcp_tools": len(tools), "own_mcp_tools_list_kb": round(len(json.dumps(tools)) / 1024),
                "own_mcp_with_examples": sum(bool(t.get("inputSchema", {}).get("examples")) for t in tools)}
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    if sys.argv[1:2] == ["--convert"]:
        document = json.loads(Path(sys.argv[2]).read_text())
        print(json.dumps(asyncio.run(_convert(document, sys.argv[3]))))
        return
    converter = sys.argv[1]
    before = sys.argv[2] if len(sys.argv) > 2 else "3a16ceb"
    rows = {}
    with tempfile.TemporaryDirectory(prefix="openapi-before-") as where:
        archive = subprocess.run(["git", "archive", before], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
        rows[f"before ({before})"] = measure(Path(where), converter)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    rows[f"after ({head})"] = measure(ROOT, converter)
    for name, row in rows.items():
        print(name, json.dumps(row))
    print("\n| | " + " | ".join(rows) + " |\n|---|" + "---|" * len(rows))
    for label, key in [("operations in the document", "operations"), ("tools produced", "tools"),
                       ("tools with a description", "with_description"),
                       ("median description length (chars)", "description_chars_median"),
                       ("input properties", "input_properties"), ("typed", "typed"),
                       ("bounded (enum, pattern/length/format, min and max)", "bounded"),
                       ("described", "described"), ("tools with examples in their input schema", "with_examples"),
                       ("of which a whole-body example", "with_body_example"),
                       ("tools with an output schema", "with_output_schema"),
                       ("tools/list size (KB of JSON)", "tools_list_kb"),
                       ("conversion + tools/list (s)", "convert_seconds"),
                       ("the service's own MCP endpoint: tools", "own_mcp_tools"),
                       ("its tools/list (KB)", "own_mcp_tools_list_kb"),
                       ("its tools with a whole example", "own_mcp_with_examples")]:
        print(f"| {label} | " + " | ".join(str(row[key]) for row in rows.values()) + " |")
    calls = [" ".join(f"{c['tool']}: {'ok' if c['ok'] else 'FAILED ' + c['said']}" for c in row["calls"])
             for row in rows.values()]
    print("| calls against that version's local stack | " + " | ".join(calls) + " |")


if __name__ == "__main__":
    main()
