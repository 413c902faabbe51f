"""`events tail SESSION`: a session's events and their webhook delivery (-f: follow)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from cli.client import Client, seg
from cli.commands import Cli
from cli.output import cells, last_attempt, line, table, when


@click.group()
def events() -> None:
    """A session's audit trail, with webhook delivery status."""


EVENT_HEADERS = ["SEQ", "OCCURRED", "TYPE", "DETAIL", "DELIVERY", "ATTEMPTS", "EVENT"]
ATTEMPTS_WIDTH = 24  # `--follow`: a longer attempts cell (an error text) is cut to this


def follow_widths(total_steps: int) -> list[int]:
    """Column widths that fit every row a session can have, so rows printed later by
    `--follow` line up with the first table (widths measured on the first rows did not)."""
    longest_detail = f"step {total_steps} ONGOING, out of order, no change"
    return [max(len(EVENT_HEADERS[0]), 5), len("2026-11-22 10:00:05Z"), len("progress_update"),
            len(longest_detail), len("delivered"), ATTEMPTS_WIDTH, len("evt_") + 32]


def fitted(row: list[str], widths: list[int]) -> list[str]:
    return [c if len(c) <= w or i == len(row) - 1 else c[:w - 1] + "…"
            for i, (c, w) in enumerate(zip(row, widths, strict=True))]


def event_detail(e: dict[str, Any]) -> str:
    if e["event_type"] == "progress_update":
        text = f"step {e.get('step')} {e.get('step_status')}"
        if e.get("out_of_order"):
            text += ", out of order"
        if not e.get("applied", True):
            text += ", no change"
        return text
    if e["event_type"] == "session_ended":
        reason = e.get("reason")
        return e["session_status"] + (f" ({reason})" if reason and reason != e["session_status"] else "")
    return f"{e['total_steps']} steps"


def event_row(e: dict[str, Any]) -> list[Any]:
    return [e["sequence"], when(e["occurred_at"]), e["event_type"], event_detail(e),
            e.get("delivery_status"), last_attempt(e.get("delivery_attempts") or []), e["event_id"]]


def all_events(client: Client, session_id: str) -> list[dict[str, Any]]:
    return client.listing(f"v1/sessions/{seg(session_id)}/events")[0]


@events.command("tail")
@click.argument("session_id")
@click.option("-f", "--follow", is_flag=True,
              help="Keep polling: print new events and delivery changes until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
              help="Seconds between polls with --follow.")
@click.pass_obj
def events_tail(obj: Cli, session_id: str, follow: bool, interval: float) -> None:
    """A session's events, oldest first, with each webhook's delivery status and attempts."""
    seen: dict[str, tuple[Any, int]] = {}
    widths: list[int] = []

    def show(items: list[dict[str, Any]], first: bool) -> None:
        fresh = []
        for e in items:
            state = (e.get("delivery_status"), len(e.get("delivery_attempts") or []))
            before = seen.get(e["event_id"])
            seen[e["event_id"]] = state
            if before is None:
                fresh.append(e)
            elif before != state:
                if obj.json_output:
                    click.echo(json.dumps(e, ensure_ascii=False))
                else:
                    click.echo(f"{e['sequence']:<3}  {e['event_id']}  delivery {before[0]} -> "
                               f"{state[0]} (attempts {last_attempt(e['delivery_attempts'])})")
        if obj.json_output:
            if first and not follow:
                obj.emit(items)
            else:
                for e in fresh:
                    click.echo(json.dumps(e, ensure_ascii=False))
        elif first and not follow:
            rows = [event_row(e) for e in fresh]
            click.echo(table(EVENT_HEADERS, rows) if rows else "(no events)")
        else:
            if first:  # fixed columns: every later row lines up with these
                from chalicelib.domain.models import MAX_STEPS

                widths[:] = follow_widths(items[0]["total_steps"] if items else MAX_STEPS)
                click.echo(line(EVENT_HEADERS, widths))
            for e in fresh:
                click.echo(line(fitted(cells(event_row(e)), widths), widths))

    try:
        show(all_events(obj.client, session_id), first=True)
        while follow:
            time.sleep(interval)
            show(all_events(obj.client, session_id), first=False)
    except KeyboardInterrupt:
        return
