"""`deliveries failed` (dead-lettered webhooks) and `redrive` (back to the delivery queue)."""

from __future__ import annotations

import sys
import time

import click

from cli.client import EXIT_API_ERROR, CliError
from cli.commands import Cli, every_option
from cli.output import last_attempt, more_hint, table, when

STALL_PAUSE_SECONDS = 1.0  # redrive: wait before asking again when nothing could be moved
MAX_STALLS = 5


@click.group()
def deliveries() -> None:
    """Webhook deliveries."""


@deliveries.command("failed")
@every_option
@click.option("--endpoint", "endpoint_id", default=None, help="Only those that failed at this webhook endpoint.")
@click.pass_obj
def deliveries_failed(obj: Cli, limit: int, every: bool, cursor: str | None, endpoint_id: str | None) -> None:
    """Webhooks that failed for good (dead-lettered), newest first."""
    query = {"status": "failed", **({"endpoint_id": endpoint_id} if endpoint_id else {})}
    items, next_cursor = obj.client.listing("v1/deliveries", query, limit=limit, cursor=cursor, every=every)
    if obj.json_output:
        obj.emit({"items": items, "next_cursor": next_cursor})
        return
    if not items:
        click.echo("(no failed deliveries)")
        return
    rows = [[d["event_id"], d["event_type"], d["session_id"], when(d["occurred_at"]),
             last_attempt(d["delivery_attempts"]),
             when(d["delivery_attempts"][-1].get("at") if d["delivery_attempts"] else None)]
            for d in items]
    click.echo(table(["EVENT", "TYPE", "SESSION", "OCCURRED", "ATTEMPTS", "LAST ATTEMPT"], rows))
    more_hint("failed deliveries", next_cursor)
    click.echo("(once the receiver is back: redrive)", err=True)


@click.command()
@click.option("--batch", type=click.IntRange(1, 100), default=100, show_default=True,
              help="Messages moved per request (each request also stops after about 10 s).")
@click.option("--endpoint", "endpoint_id", default=None, help="Only this webhook endpoint's dead letters.")
@click.pass_obj
def redrive(obj: Cli, batch: int, endpoint_id: str | None) -> None:
    """Move every dead-lettered webhook back to the delivery queue, in order
    (POST /v1/deliveries/redrive, repeated until none remain; needs an admin key)."""
    def step() -> tuple[int, int]:
        query: dict[str, object] = {"limit": batch, **({"endpoint_id": endpoint_id} if endpoint_id else {})}
        answer = obj.client.call("POST", "v1/deliveries/redrive", query=query)[1]
        return answer["moved"], answer["remaining"]

    moved, remaining = step()
    total = moved
    if moved + remaining == 0:
        if obj.json_output:
            obj.emit({"moved": 0, "remaining": 0})
        else:
            click.echo("Dead-letter queue is empty: nothing to redrive.")
        return
    stalls = 0
    with click.progressbar(length=moved + remaining, label="Redriving",
                           file=sys.stderr) as bar:
        bar.update(moved)
        while remaining:
            moved, remaining = step()
            total += moved
            bar.length = max(bar.length or 0, total + remaining)
            bar.update(moved)
            # Messages in flight (another redrive, or SQS's approximate count) cannot be
            # received yet: retry a few times, then give up rather than spin.
            stalls = 0 if moved else stalls + 1
            if stalls >= MAX_STALLS:
                break
            if not moved:
                time.sleep(STALL_PAUSE_SECONDS)
    if obj.json_output:
        obj.emit({"moved": total, "remaining": remaining})
    else:
        click.echo(f"Redrove {total} message(s) to the delivery queue.")
    if remaining:
        raise CliError("redrive_incomplete", f"{remaining} message(s) still in the dead-letter "
                       "queue could not be received (in flight?); run redrive again shortly",
                       EXIT_API_ERROR)
