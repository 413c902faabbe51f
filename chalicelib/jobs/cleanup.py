"""The scheduled cleanup job: idle sessions -> abandoned; optional retention of ended ones.

Idle sessions are found through GSI5, a sparse index of *active* sessions sharded by session
and sorted by last activity (an ended session leaves it): never a Scan. Each one is ended
through the same transactional path as any other change (so its `session_ended` event,
reason `idle_timeout`, reaches the webhook), conditional on nothing having touched it since
it was read. The job is safe to run twice at once and to re-run after a crash: a session is
abandoned at most once, and what a run did not reach stays in the index for the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.config import get_settings
from chalicelib.db import sessions as repository
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.vocabulary import ENDED_STATUSES
from chalicelib.observability import SESSIONS_ABANDONED, count, logger
from chalicelib.services import sessions

PAGE = 100


@dataclass
class CleanupReport:
    abandoned: int = 0
    skipped: int = 0
    deleted: int = 0
    complete: bool = True

    def as_dict(self) -> dict[str, int | bool]:
        return self.__dict__.copy()


def run(time_left: Callable[[], float] | None = None, now: datetime | None = None) -> CleanupReport:
    """One run of the job. `time_left()` (seconds) lets it stop before the Lambda timeout;
    what it did not reach is picked up by the next run."""
    report = CleanupReport()
    moment = now or utcnow()
    abandon_idle(moment, report, time_left)
    if get_settings().retention_days > 0 and report.complete:
        apply_retention(moment, report, time_left)
    if report.abandoned:
        count(SESSIONS_ABANDONED, report.abandoned)
    logger.info("cleanup run", extra=report.as_dict())
    return report


def _out_of_time(time_left: Callable[[], float] | None, report: CleanupReport) -> bool:
    if time_left is not None and time_left() < 10:
        report.complete = False
    return not report.complete


def abandon_idle(now: datetime, report: CleanupReport,
                 time_left: Callable[[], float] | None = None) -> None:
    cutoff = to_iso(now - timedelta(seconds=get_settings().idle_timeout_seconds))
    stamp = to_iso(now)
    for shard in range(repository.ACTIVE_SHARDS):
        cursor = None
        while not _out_of_time(time_left, report):
            found, gone, cursor = repository.idle_page(shard, cutoff, PAGE, cursor)
            report.skipped += gone  # deleted (or being deleted) since
            for session in found:
                if session.status != "active" or session.last_activity_at >= cutoff:
                    report.skipped += 1
                elif sessions.abandon_if_idle(session, stamp):
                    report.abandoned += 1
                else:
                    report.skipped += 1
            if cursor is None:
                break


def apply_retention(now: datetime, report: CleanupReport,
                    time_left: Callable[[], float] | None = None) -> None:
    """Delete sessions (with their messages and events) that ended more than RETENTION_DAYS
    ago: a Query per status on the status index (sorted by start, which precedes the end)."""
    cutoff = to_iso(now - timedelta(days=get_settings().retention_days))
    for status in ENDED_STATUSES:
        retention_cursor: str | None = None
        while not _out_of_time(time_left, report):
            ids, cursor = repository.ended_before(status, cutoff, 25, retention_cursor)
            retention_cursor = cursor
            for session_id in ids:
                try:
                    sessions.delete_session(session_id)
                    report.deleted += 1
                except Exception:  # noqa: BLE001 - one stuck session must not stop the job
                    logger.exception("retention: could not delete a session",
                                     extra={"session_id": session_id})
                    report.complete = False
            if cursor is None:
                break
