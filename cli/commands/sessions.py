"""`sessions list` and `sessions show ID`."""

from __future__ import annotations

from collections import deque
from typing import Any

import click

from chalicelib.domain.vocabulary import SESSION_STATUSES
from cli.client import seg
from cli.commands import Cli, every_option
from cli.output import duration, more_hint, table, when


@click.group()
def sessions() -> None:
    """Learners' sessions."""


def session_row(s: dict[str, Any]) -> list[Any]:
    step = "done" if s["status"] == "completed" else f"{s['current_step']}/{s['total_steps']}"
    return [s["session_id"], s["user_id"], s["manual_id"], s["status"], step,
            f"{len(s['completed_steps'])}/{s['total_steps']}", when(s["started_at"]),
            duration(s.get("duration_seconds"))]


SESSION_HEADERS = ["SESSION", "USER", "MANUAL", "STATUS", "STEP", "DONE", "STARTED", "DURATION"]


@sessions.command("list")
@click.option("--status", type=click.Choice(SESSION_STATUSES))
@click.option("--user", "user_id", help="Only this user's sessions.")
@click.option("--manual", "manual_id", help="Only sessions on this manual.")
@every_option
@click.pass_obj
def sessions_list(obj: Cli, status: str | None, user_id: str | None, manual_id: str | None,
                  limit: int, every: bool, cursor: str | None) -> None:
    """Sessions, newest first."""
    items, next_cursor = obj.client.listing(
        "v1/sessions", {"status": status, "user_id": user_id, "manual_id": manual_id},
        limit=limit, cursor=cursor, every=every)
    if obj.json_output:
        obj.emit({"items": items, "next_cursor": next_cursor})
        return
    click.echo(table(SESSION_HEADERS, [session_row(s) for s in items]) if items else "(no sessions)")
    more_hint("sessions", next_cursor)


@sessions.command("show")
@click.argument("session_id")
@click.option("--messages", "recent", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="How many of the latest messages to show.")
@click.pass_obj
def sessions_show(obj: Cli, session_id: str, recent: int) -> None:
    """A session, its next step and its most recent messages."""
    client = obj.client
    session = client.get(f"v1/sessions/{seg(session_id)}")
    next_step = client.get(f"v1/sessions/{seg(session_id)}/next-step")
    # oldest first, so the latest are at the end of the last page
    messages = deque(client.listing(f"v1/sessions/{seg(session_id)}/messages")[0] if recent else [],
                     maxlen=recent)
    if obj.json_output:
        obj.emit({"session": session, "next_step": next_step, "messages": list(messages)})
        return
    s = session
    rows = [
        ("session", s["session_id"]), ("user", s["user_id"]), ("manual", s["manual_id"]),
        ("status", s["status"] + (f" ({s['end_reason']})" if s.get("end_reason") else "")),
        ("step", f"{s['current_step']} of {s['total_steps']}"),
        ("completed", ", ".join(map(str, s["completed_steps"])) or "none"),
        ("started", when(s["started_at"])), ("last activity", when(s["last_activity_at"])),
        ("ended", when(s.get("ended_at"))), ("duration", duration(s["duration_seconds"])),
        ("messages", str(s["message_count"])), ("version", str(s["version"])),
    ]
    for name, value in rows:
        click.echo(f"{name:<14} {value}")
    step = next_step.get("next_step")
    if next_step.get("is_completed"):
        click.echo(f"{'next step':<14} none: the manual is completed")
    elif step:
        click.echo(f"{'next step':<14} {step['step_number']}: {step['title']}")
        content = " ".join(step["content"].split())
        if content:
            click.echo(f"{'':<14} {content[:200]}{'...' if len(content) > 200 else ''}")
    if recent:
        click.echo(f"\nlast {len(messages)} of {s['message_count']} message(s):" if messages
                   else "\nno messages")
        for m in messages:
            click.echo(f"  {when(m['created_at'])}  {m['sender']:<5}  {m['message']}")
