"""Schemathesis hooks (SCHEMATHESIS_HOOKS) for tests/contract: the rules the document states
in words, which JSON Schema cannot say, applied to the requests it generates as valid.

- a cursor is one that a listing answered (opaque): a generated one is dropped;
- a manual's steps are numbered 1..N and `total_steps`, when given, is N (`x-rules`).

Only cases generated as valid (positive) are touched: invalid ones stay as generated, so the
server's refusal of each is still checked."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(ctx: Any, case: Any, *args: Any) -> None:
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
    body = case.body
    if case.method == "POST" and case.path == "/v1/manuals" and isinstance(body, dict):
        steps = body.get("steps")
        if isinstance(steps, list) and all(isinstance(s, dict) for s in steps):
            for number, step in enumerate(steps, 1):
                step["step_number"] = number
            if "total_steps" in body:
                body["total_steps"] = len(steps)
