"""Instruction manuals: immutable once created (a revision id ties steps to their body)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chalicelib.db import manuals as repository
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.errors import ManualExists, ManualInUse, ManualNotFound
from chalicelib.domain.models import Manual, ManualCreate, ManualSummary, Page, Step
from chalicelib.lru import LRU

# Steps are immutable per (manual_id, revision): safe to keep for the life of the process.
_steps: LRU[tuple[str, str, int], Step] = LRU(20_000)


def revision(body: ManualCreate) -> str:
    """A content hash of the manual: the same body always gets the same revision."""
    canonical = json.dumps(
        {"title": body.title, "steps": [s.model_dump() for s in body.steps]},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def create_manual(body: ManualCreate) -> tuple[Manual, bool]:
    """Store a manual. Returns it and whether it was created (False: an identical retry).

    Steps go first, keyed by revision, and the metadata item last with a condition: a
    concurrent create with another body cannot overwrite these steps, and the manual becomes
    visible only once all of its steps are stored."""
    rev = revision(body)
    existing = repository.get_meta(body.manual_id)
    if existing is not None:
        return _existing(existing, body, rev), False
    now = to_iso(utcnow())
    repository.put_steps(body.manual_id, rev, [
        {"step_number": s.step_number, "title": s.title, "content": s.content} for s in body.steps])
    there = repository.put_meta_once({
        "manual_id": body.manual_id, "title": body.title, "total_steps": len(body.steps),
        "rev": rev, "created_at": now, "active_sessions": 0})
    if there is not None:
        return _existing(there, body, rev), False
    return _from_body(body, now), True


def _existing(item: dict[str, Any], body: ManualCreate, rev: str) -> Manual:
    if item.get("rev") != rev:
        raise ManualExists(
            f"Manual '{body.manual_id}' already exists with different content.",
            manual_id=body.manual_id)
    return _from_body(body, item["created_at"], item.get("active_sessions", 0))


def _from_body(body: ManualCreate, created_at: str, active: int = 0) -> Manual:
    return Manual(
        manual_id=body.manual_id, title=body.title, total_steps=len(body.steps),
        created_at=created_at, active_sessions=active,
        steps=[Step(**s.model_dump()) for s in body.steps],
    )


def get_manual(manual_id: str) -> Manual:
    """The manual with its steps: one Query over the manual's partition (paged if > 1 MB)."""
    meta, steps = repository.whole(manual_id)
    if meta is None:
        raise ManualNotFound(f"Manual '{manual_id}' not found", manual_id=manual_id)
    prefix = repository.step_prefix(meta["rev"])
    return Manual(
        manual_id=manual_id, title=meta["title"], total_steps=meta["total_steps"],
        created_at=meta["created_at"], active_sessions=meta.get("active_sessions", 0),
        steps=[_step(s) for s in steps if s["SK"].startswith(prefix)],
    )


def get_meta(manual_id: str) -> dict[str, Any]:
    item = repository.get_meta(manual_id)
    if item is None:
        raise ManualNotFound(f"Manual '{manual_id}' not found", manual_id=manual_id)
    return item


def list_manuals(limit: int, cursor: str | None) -> Page:
    items, next_cursor = repository.list_page(limit, cursor)
    return Page(items=[ManualSummary(**i).model_dump() for i in items], next_cursor=next_cursor)


def delete_manual(manual_id: str) -> None:
    """Delete a manual no active session uses. The metadata goes first, atomically with the
    in-use check (a session start conditions on it), then the steps in bulk."""
    current = repository.delete_unused(manual_id)
    if current is not None:
        if not current:
            raise ManualNotFound(f"Manual '{manual_id}' not found", manual_id=manual_id)
        raise ManualInUse(
            f"Manual '{manual_id}' is used by {current.get('active_sessions', 0)} active session(s).",
            manual_id=manual_id, active_sessions=current.get("active_sessions", 0))
    repository.delete_steps(manual_id)


# ---- steps for the progress path -----------------------------------------------------------


def forget_steps() -> None:
    _steps.clear()


def cached_step(manual_id: str, rev: str, number: int) -> Step | None:
    return _steps.get((manual_id, rev, number))


def remember_step(manual_id: str, rev: str, item: dict[str, Any]) -> Step:
    step = _step(item)
    _steps.put((manual_id, rev, step.step_number), step)
    return step


def fetch_step(manual_id: str, rev: str, number: int) -> Step | None:
    """A step by number: from this process's cache, else one GetItem."""
    step = cached_step(manual_id, rev, number)
    if step is None:
        item = repository.get_step(manual_id, rev, number)
        step = remember_step(manual_id, rev, item) if item else None
    return step


def _step(item: dict[str, Any]) -> Step:
    return Step(step_number=item["step_number"], title=item["title"], content=item.get("content", ""))
