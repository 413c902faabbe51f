"""The session rules as pure functions: (state, input, now) -> (new state, event). No I/O.

A session moves through steps 1..total_steps. `completed_steps` is the set of steps reported
DONE; `current_step` is the step the learner should work on and never moves backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from chalicelib.domain.clock import seconds_between
from chalicelib.domain.errors import InvalidStep, SessionEnded, UserMismatch
from chalicelib.domain.models import Event, Session
from chalicelib.domain.vocabulary import ACTIVE, StepStatus

__all__ = ["ACTIVE", "Change", "apply_progress", "end_session", "ensure_active", "ensure_owner",
           "start_session", "summarize", "with_summary"]


class Change(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    """The result of applying one input: the new session state and the events it emits
    (one, or two when the last DONE also ends the session)."""

    session: Session
    events: tuple[Event, ...]

    @property
    def event(self) -> Event:
        """The event that answers the request (the first one)."""
        return self.events[0]


def start_session(
    *, session_id: str, user_id: str, manual_id: str, manual_rev: str, total_steps: int,
    now: str, new_id: Callable[[str, str], str],
) -> Change:
    session = Session(
        session_id=session_id, user_id=user_id, manual_id=manual_id, manual_rev=manual_rev,
        status=ACTIVE, current_step=1, total_steps=total_steps, completed_steps=[],
        started_at=now, last_activity_at=now, version=1, event_seq=1,
    )
    return Change(session, (_event(session, "session_created", new_id(session_id, now), 1, now, previous_step=1),))


def ensure_active(session: Session) -> None:
    if session.status != ACTIVE:
        raise SessionEnded(
            f"Session '{session.session_id}' is already {session.status}. Cannot accept updates.",
            session_id=session.session_id, session_status=session.status,
        )


def ensure_owner(session: Session, user_id: str) -> None:
    if session.user_id != user_id:
        raise UserMismatch(
            f"Session '{session.session_id}' does not belong to user '{user_id}'.",
            session_id=session.session_id,
        )


def apply_progress(
    session: Session, *, user_id: str, step: int, step_status: StepStatus, now: str,
    new_id: Callable[[str, str], str],
) -> Change:
    """Apply a DONE/ONGOING report for `step`.

    DONE marks the step completed and moves `current_step` past it (skipping steps already
    done); DONE on the final step completes the session. ONGOING moves `current_step` up to the
    step if it is ahead. A report for a step behind `current_step` is recorded as out of order
    and never moves the session backwards.
    """
    ensure_owner(session, user_id)
    ensure_active(session)
    if step > session.total_steps:
        raise InvalidStep(
            f"Step {step} exceeds total steps ({session.total_steps})",
            session_id=session.session_id, total_steps=session.total_steps,
        )
    previous = session.current_step
    completed = set(session.completed_steps)
    status = session.status
    current = previous
    ended_at = session.ended_at
    end_reason = session.end_reason
    if step_status == "DONE":
        completed.add(step)
        if step == session.total_steps:
            status, ended_at, end_reason = "completed", now, "completed"
            current = session.total_steps
        else:
            current = max(previous, step + 1)
            while current in completed and current < session.total_steps:
                current += 1
    elif step > previous:
        current = step

    new_completed = sorted(completed)
    applied = (
        new_completed != session.completed_steps or current != previous or status != session.status
    )
    ends = status != ACTIVE
    new = session.model_copy(update={
        "status": status, "current_step": current, "completed_steps": new_completed,
        "ended_at": ended_at, "end_reason": end_reason, "last_activity_at": now,
        "version": session.version + 1, "event_seq": session.event_seq + (2 if ends else 1),
    })
    events = [_event(new, "progress_update", new_id(session.session_id, now), session.event_seq + 1, now,
                     previous_step=previous, step=step, step_status=step_status, applied=applied,
                     out_of_order=step < previous)]
    if ends:
        events.append(_event(new, "session_ended", new_id(session.session_id, now), session.event_seq + 2, now,
                             previous_step=previous, reason=end_reason))
    return Change(new, tuple(events))


def end_session(
    session: Session, *, status: str, reason: str, now: str, new_id: Callable[[str, str], str]
) -> Change:
    """End an active session by the caller's or a job's decision (`ended` or `abandoned`)."""
    ensure_active(session)
    # Ending is not learner activity: last_activity_at keeps the last real activity.
    new = session.model_copy(update={
        "status": status, "ended_at": now, "end_reason": reason,
        "version": session.version + 1, "event_seq": session.event_seq + 1,
    })
    event = _event(new, "session_ended", new_id(session.session_id, now), new.event_seq, now,
                   previous_step=session.current_step, reason=reason)
    return Change(new, (event,))


def summarize(session: Session, events: list[Event]) -> dict[str, object]:
    """The summary stored on a session when it ends: progress, duration, time per step (from
    the event trail: each newly completed step, timed from the previous one or the start),
    messages by sender, first and last activity."""
    assert session.ended_at is not None
    done = [e for e in sorted(events, key=lambda e: e.sequence)
            if e.event_type == "progress_update" and e.step_status == "DONE" and e.applied]
    per_step: list[dict[str, float]] = []
    previous = session.started_at
    for event in done:
        assert event.step is not None  # a progress event names its step
        per_step.append({"step": event.step, "seconds": seconds_between(previous, event.occurred_at)})
        previous = event.occurred_at
    return {
        "steps_completed": len(session.completed_steps),
        "total_steps": session.total_steps,
        "completion_ratio": round(len(session.completed_steps) / session.total_steps, 4),
        "duration_seconds": seconds_between(session.started_at, session.ended_at),
        "time_per_step": per_step,
        "average_step_seconds": round(sum(p["seconds"] for p in per_step) / len(per_step), 3) if per_step else None,
        "messages": {"user": session.messages_user, "agent": session.messages_agent,
                     "total": session.message_count},
        "first_activity_at": session.started_at,
        "last_activity_at": session.last_activity_at,
        "end_reason": session.end_reason,
    }


def with_summary(change: Change, history: list[Event]) -> Change:
    """Attach the summary to an ending change: on the session and its session_ended event."""
    summary = summarize(change.session, history + list(change.events))
    session = change.session.model_copy(update={"summary": summary})
    events = tuple(e.model_copy(update={"summary": summary}) if e.event_type == "session_ended" else e
                   for e in change.events)
    return Change(session, events)


def _event(session: Session, event_type: str, event_id: str, sequence: int, now: str, *,
           previous_step: int, **fields: object) -> Event:
    return Event(
        event_id=event_id, event_type=event_type, session_id=session.session_id,
        user_id=session.user_id, manual_id=session.manual_id, sequence=sequence,
        previous_step=previous_step, current_step=session.current_step,
        total_steps=session.total_steps, session_status=session.status,
        completed_steps=session.completed_steps, started_at=session.started_at,
        ended_at=session.ended_at, occurred_at=now, **fields,
    )

