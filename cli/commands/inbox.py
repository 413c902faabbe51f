"""`inbox show [INBOX_ID]`: requests captured by a webhook inbox."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import click

from cli.client import seg
from cli.commands import Cli, every_option
from cli.output import more_hint, table, when


@click.group()
def inbox() -> None:
    """Webhook inboxes (the local stack's webhooks arrive in inbox `local`)."""


def verdict(signature: dict[str, Any] | None) -> str:
    if not signature:
        return "-"
    return "verified" if signature.get("verified") else f"invalid ({signature.get('reason')})"


def webhook_of(capture: dict[str, Any]) -> str | None:
    """`event_type session_id #sequence` when the body is one of our webhooks."""
    if capture.get("body_encoding") != "text" or not capture.get("body"):
        return None
    try:
        body = json.loads(capture["body"])
    except ValueError:
        return None
    if not isinstance(body, dict) or "event_type" not in body:
        return None
    return f"{body['event_type']} {body.get('session_id')} #{body.get('sequence')}"


@inbox.command("show")
@click.argument("inbox_id", default="local")
@click.option("--token", envvar="INBOX_TOKEN", required=True, show_envvar=True,
              help="The inbox's read token (sent as X-Inbox-Token).")
@click.option("--request", "request_id", default=None, help="Show this captured request in full.")
@click.option("--method", default=None, help="Only requests with this method.")
@every_option
@click.pass_obj
def inbox_show(obj: Cli, inbox_id: str, token: str, request_id: str | None, method: str | None,
               limit: int, every: bool, cursor: str | None) -> None:
    """Requests captured by inbox INBOX_ID (default `local`), newest first, with their
    signature verdict; --request shows one with its headers and body."""
    headers = {"X-Inbox-Token": token}
    base = f"v1/inboxes/{seg(inbox_id)}/requests"
    if request_id:
        capture = obj.client.call("GET", f"{base}/{seg(request_id)}", headers=headers)[1]
        if obj.json_output:
            obj.emit(capture)
            return
        query = urllib.parse.urlencode(capture.get("query") or {})
        for name, value in [
            ("request", capture["request_id"]), ("received", when(capture["received_at"])),
            ("method", capture["method"]), ("path", capture["path"] + (f"?{query}" if query else "")),
            ("source ip", capture.get("source_ip") or "-"),
            ("content type", capture.get("content_type") or "-"),
            ("size", f"{capture['size_bytes']} bytes ({capture['body_encoding']})"),
            ("signature", verdict(capture.get("signature"))),
        ]:
            click.echo(f"{name:<13} {value}")
        click.echo("")
        for name, value in sorted((capture.get("headers") or {}).items(), key=lambda h: h[0].lower()):
            click.echo(f"{name}: {value}")
        click.echo("")
        click.echo(capture.get("body") or "")
        return
    items, next_cursor = obj.client.listing(base, {"method": method}, limit=limit, cursor=cursor,
                                            every=every, headers=headers)
    if obj.json_output:
        obj.emit({"items": items, "next_cursor": next_cursor})
        return
    rows = [[c["request_id"], when(c["received_at"]), c["method"], c["size_bytes"],
             verdict(c.get("signature")), webhook_of(c)] for c in items]
    click.echo(table(["REQUEST", "RECEIVED", "METHOD", "BYTES", "SIGNATURE", "WEBHOOK"], rows)
               if rows else "(no requests captured)")
    more_hint("requests", next_cursor)
