"""UTC timestamps as ISO 8601 strings with microseconds (fixed width, so they sort as strings)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
_ONE_MICROSECOND = timedelta(microseconds=1)
_lock = threading.Lock()
_last = datetime.min.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Now, strictly increasing within this process, so writes in the same instant still order."""
    global _last
    with _lock:
        now = datetime.now(UTC)
        if now <= _last:
            now = _last + _ONE_MICROSECOND
        _last = now
        return now


def to_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_ISO)


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, _ISO).replace(tzinfo=UTC)


def seconds_between(start: str, end: datetime | str) -> float:
    """Whole-precision duration in seconds (to the millisecond) between two instants."""
    end_at = from_iso(end) if isinstance(end, str) else end
    return round((end_at - from_iso(start)).total_seconds(), 3)
