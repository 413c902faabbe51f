"""The progress rules as pure functions: no moto, no HTTP."""

from __future__ import annotations

import itertools
import random

import pytest

from chalicelib.domain import rules
from chalicelib.domain.errors import InvalidStep, SessionEnded, UserMismatch
from chalicelib.domain.models import Session

NOW = "2026-01-01T00:00:10.000000Z"
ids = (f"evt_{n}" for n in itertools.count())


def new_id(session_id: str, occurred_at: str) -> str:
    return next(ids)


def session(total: int = 5, **fields: object) -> Session:
    change = rules.start_session(session_id="s1", user_id="u1", manual_id="m1", manual_rev="r",
                                 total_steps=total, now="2026-01-01T00:00:00.000000Z", new_id=new_id)
    return change.session.model_copy(update=fields)


def report(s: Session, step: int, status: str = "DONE", user: str = "u1") -> rules.Change:
    return rules.apply_progress(s, user_id=user, step=step, step_status=status, now=NOW,  # type: ignore[arg-type]
                                new_id=new_id)


def test_start_is_active_on_step_one_with_a_created_event() -> None:
    change = rules.start_session(session_id="s1", user_id="u1", manual_id="m1", manual_rev="r",
                                 total_steps=3, now=NOW, new_id=new_id)
    assert (change.session.status, change.session.current_step, change.session.version) == ("active", 1, 1)
    assert [e.event_type for e in change.events] == ["session_created"]
    assert change.event.sequence == 1


def test_done_marks_step_and_moves_to_next() -> None:
    change = report(session(), 1)
    assert change.session.completed_steps == [1]
    assert change.session.current_step == 2
    assert change.session.version == 2
    assert change.event.event_type == "progress_update"
    assert (change.event.previous_step, change.event.current_step) == (1, 2)
    assert change.event.applied and not change.event.out_of_order


def test_done_on_final_step_completes_with_two_events() -> None:
    change = report(session(total=2, current_step=2, completed_steps=[1]), 2)
    assert change.session.status == "completed"
    assert change.session.ended_at == NOW
    assert change.session.current_step == 2
    assert [e.event_type for e in change.events] == ["progress_update", "session_ended"]
    assert [e.sequence for e in change.events] == [2, 3]
    assert change.events[1].reason == "completed"


def test_ongoing_moves_forward_only() -> None:
    ahead = report(session(), 3, "ONGOING")
    assert ahead.session.current_step == 3 and ahead.event.applied
    behind = report(ahead.session, 2, "ONGOING")
    assert behind.session.current_step == 3
    assert behind.event.out_of_order and not behind.event.applied
    assert behind.session.last_activity_at == NOW


def test_out_of_order_done_is_recorded_without_regressing() -> None:
    s = session(current_step=4, completed_steps=[1, 3])
    change = report(s, 2)
    assert change.session.completed_steps == [1, 2, 3]
    assert change.session.current_step == 4
    assert change.event.out_of_order and change.event.applied


def test_done_skips_steps_already_completed() -> None:
    s = session(current_step=2, completed_steps=[1, 3, 4])
    assert report(s, 2).session.current_step == 5


def test_duplicate_done_changes_nothing_but_activity() -> None:
    s = report(session(), 1).session
    again = report(s, 1)
    assert again.session.completed_steps == [1] and again.session.current_step == 2
    assert not again.event.applied and again.event.out_of_order


def test_step_beyond_manual_is_invalid() -> None:
    with pytest.raises(InvalidStep) as err:
        report(session(total=5), 6)
    assert err.value.details["total_steps"] == 5


@pytest.mark.parametrize("status", ["completed", "ended", "abandoned"])
def test_ended_session_refuses_progress(status: str) -> None:
    with pytest.raises(SessionEnded) as err:
        report(session(status=status), 1)
    assert err.value.details["session_status"] == status


def test_other_user_is_refused() -> None:
    with pytest.raises(UserMismatch):
        report(session(), 1, user="intruder")


def test_end_session_emits_session_ended() -> None:
    change = rules.end_session(session(), status="abandoned", reason="idle_timeout", now=NOW,
                               new_id=new_id)
    assert change.session.status == "abandoned" and change.session.ended_at == NOW
    assert change.event.event_type == "session_ended" and change.event.reason == "idle_timeout"
    with pytest.raises(SessionEnded):
        rules.end_session(change.session, status="ended", reason="ended", now=NOW, new_id=new_id)


def test_any_order_of_done_reports_converges() -> None:
    # GIVEN DONE reports for steps 1..20 of a 25-step manual, in random orders
    rng = random.Random(7)
    for _ in range(50):
        steps = list(range(1, 21))
        rng.shuffle(steps)
        s = session(total=25)
        for step in steps:
            s = report(s, step).session
        # THEN the outcome never depends on the order
        assert s.completed_steps == list(range(1, 21))
        assert s.current_step == 21
        assert s.version == 21
