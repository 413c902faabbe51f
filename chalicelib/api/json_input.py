"""The one parser for JSON that comes from outside (request bodies, manual files).

json.loads recurses once per nesting level and raises RecursionError (not ValueError) past
about a thousand levels, which every caller would otherwise have to know. Here any input
that is not JSON, nests deeper than any body the API takes, or escapes a lone surrogate
(which no store can keep) is one error: 400 `invalid_json`.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.errors import InvalidJson

# Our deepest body is a manual: object > steps list > step object (3 levels). 32 leaves room
# for any future body while keeping the parse and validation of hostile input small.
MAX_JSON_DEPTH = 32


def parse_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in `raw`; InvalidJson if it is not JSON, nests deeper than
    `max_depth`, or contains a lone surrogate escape."""
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise InvalidJson(f"The JSON is nested deeper than {max_depth} levels.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"Not valid JSON: {exc}") from exc
    if depth(data) > max_depth:
        raise InvalidJson(f"The JSON is nested deeper than {max_depth} levels.")
    try:  # JSON escapes can smuggle in lone surrogates, which no store can keep
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidJson("The JSON contains invalid Unicode (a lone surrogate escape).") from exc
    return data


def depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        node, level = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level + 1)
        pending.extend((child, level + 1) for child in children)
    return deepest
