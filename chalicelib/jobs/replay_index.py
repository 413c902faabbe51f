"""The replay index's backfill: an operator's one-off migration after upgrading.

An endpoint's replay finds a window's events through their time-window index entry (GSI4,
chalicelib/db/events.py), written with each event since webhook endpoints exist. Events
stored before that version have none, so a replay never finds them. `step()` gives them one:
it Scans the table a page at a time and adds the entry to each event without it, with a
conditional UpdateItem (only the two index keys; nothing else of the event changes).

- **Bounded**: one Scan page per step (at most `page_size` items evaluated, fewer with
  `limit`), so a step indexes at most that many events.
- **Resumable**: a step answers the cursor to continue from (the last item it handled), so a
  run stopped anywhere (Ctrl-C, `--limit`, a crash after the last printed cursor) continues
  where it stopped (a step is the unit: one interrupted inside its page is done again).
- **Idempotent**: an event that has its entry is neither selected nor changed (the update's
  condition), so running it again, or from the start, changes nothing.

The update is a MODIFY in the table's stream: the feedback function takes only INSERTs (no
webhook is sent again) and the analytics function only changes of `delivery_status` (which
this never changes).
"""

from __future__ import annotations

from chalicelib.db import events, table
from chalicelib.domain.models import Model

CURSOR_SCOPE = "replay-index-backfill"


class BackfillStep(Model):
    """One bounded step of the backfill."""

    scanned: int  # items of the table evaluated by the Scan (every kind, not only events)
    indexed: int  # events given their window index entry now
    skipped: int  # selected but not changed (indexed meanwhile by another run, or deleted)
    next_cursor: str | None  # where the next step starts (None: the end of the table)
    done: bool


def step(cursor: str | None = None, *, page_size: int = 100, limit: int | None = None) -> BackfillStep:
    """Index the events without a window entry among the next `page_size` items of the
    table (at most `limit` items are evaluated, so at most `limit` events indexed), and say
    where to go on."""
    start = table.decode_cursor(cursor, CURSOR_SCOPE) if cursor else None
    size = page_size if limit is None else max(1, min(page_size, limit))
    found, last, scanned = events.unindexed_page(size, start)
    indexed = sum(events.add_window_keys(event) for event in found)
    return BackfillStep(scanned=scanned, indexed=indexed, skipped=len(found) - indexed,
                        next_cursor=table.encode_cursor(last, CURSOR_SCOPE) if last else None, done=last is None)
