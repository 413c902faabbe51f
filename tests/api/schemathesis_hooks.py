"""Schemathesis hooks for tests/api/test_schemathesis.py (SCHEMATHESIS_HOOKS): its checks
judge answers only (no 5xx, documented status, schema and content type), never whether a
request was valid, so the text components' patterns (thousands of ranges, exact for
tests/contract/) are dropped: its coverage phase draws boundary values of every pattern and
would take many minutes on them. Requests it sends are only wider for it."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_load_schema(ctx: Any, raw_schema: dict[str, Any]) -> None:
    for name in ("IdentifierText", "DisplayText", "LongText"):
        raw_schema.get("components", {}).get("schemas", {}).get(name, {}).pop("pattern", None)
