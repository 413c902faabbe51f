"""Schemathesis hooks for the coverage phase of tests/contract/test_schemathesis_all_checks.py:
the contract hooks (tests/contract/schemathesis_hooks.py), and the three text components
(IdentifierText, DisplayText, LongText) without their patterns.

Why: the coverage phase draws the boundary values of every pattern, and those three are
derived from the validators over every code point (thousands of ranges): with them it takes
minutes per operation, without them all operations take about 100 s. What the patterns refuse
is checked elsewhere: the other phases of the same gate (their text formats and the patterns),
and tests/api/test_openapi.py (each pattern refuses what the validators refuse)."""

from __future__ import annotations

from typing import Any

import schemathesis

from tests.contract import schemathesis_hooks  # noqa: F401 (registers the contract's hooks and checks)

TEXT_COMPONENTS = ("IdentifierText", "DisplayText", "LongText")


@schemathesis.hook
def before_load_schema(ctx: Any, raw_schema: dict[str, Any]) -> None:
    for name in TEXT_COMPONENTS:
        raw_schema.get("components", {}).get("schemas", {}).get(name, {}).pop("pattern", None)
