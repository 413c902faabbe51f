"""`completed_steps` as stored on session and event items: a bitmap, base64 in a string.

A list of step numbers costs DynamoDB about 3.5 bytes a step: a 1,000-step manual's session
item and each of its events grow past 4 KB near the end, and every write unit is a KB (twice
in the progress transaction; the delivery log's updates are sized by the whole event item).
The bitmap takes at most 168 characters for 1,000 steps (bench/RESULTS.md has the cost).

Stored as `"bits:" + base64(bitmap)`, bit 0 of byte 0 being step 1 (a String, not a Binary:
Lambda hands a stream record's binaries over base64-encoded, a string is the same everywhere).
Items written before hold a list of numbers; `decode` reads both, so nothing is migrated. The
API, the webhooks and the models always show the list.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

PREFIX = "bits:"


def encode(steps: Iterable[int]) -> str:
    numbers = list(steps)
    bitmap = bytearray((max(numbers) + 7) // 8 if numbers else 0)
    for step in numbers:
        bitmap[(step - 1) // 8] |= 1 << ((step - 1) % 8)
    return PREFIX + base64.b64encode(bytes(bitmap)).decode()


def decode(value: Any) -> Any:
    """The step numbers, ascending, of a stored value (a bitmap string, or the list items
    written before held); anything else is returned as it is, for the model to refuse."""
    if isinstance(value, str) and value.startswith(PREFIX):
        bitmap = base64.b64decode(value[len(PREFIX):], validate=True)
        return [8 * n + bit + 1 for n, byte in enumerate(bitmap) for bit in range(8) if byte >> bit & 1]
    if isinstance(value, (list, tuple)):
        return [int(step) for step in value]
    return value
