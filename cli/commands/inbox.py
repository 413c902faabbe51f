"""`inbox show [INBOX_ID]`: requests captured by a webhook inbox; `inbox encrypt-secrets`: the
upgrade's migration (AWS credentials)."""

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


@inbox.command("encrypt-secrets")
@click.option("--stack", default=None, help="CloudFormation stack whose table and key to use.")
@click.option("--table", default=None, help="The table name (instead of --stack; then give --key).")
@click.option("--key", "key_arn", default=None, help="The stack's KMS key ARN (its EndpointSecretsKeyArn output).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (e.g. the local moto server); default: AWS itself.")
@click.pass_obj
def inbox_encrypt_secrets(obj: Cli, stack: str | None, table: str | None, key_arn: str | None,
                          endpoint_url: str | None) -> None:
    """The upgrade's migration: encrypt (KMS) the inbox signing secrets an older version
    stored plain, in place, with your AWS credentials (the table's Scan and UpdateItem,
    kms:Encrypt on the key). Safe to run again: encrypted secrets are left alone. Until it
    has run, plain secrets keep checking signatures."""
    import os

    from chalicelib import runtime
    from chalicelib.inbox import captures
    from cli.stack import outputs

    if not (stack or (table and key_arn)):
        raise click.UsageError("give --stack, or --table and --key")
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    if stack:
        found = outputs(stack)
        table = table or found["TableName"]
        key_arn = key_arn or found.get("EndpointSecretsKeyArn")
    if not (table and key_arn):
        raise click.UsageError(f"the stack {stack} has no EndpointSecretsKeyArn output: give --key")
    runtime.bootstrap({"TABLE_NAME": table, "ENDPOINT_SECRETS_KEY_ARN": key_arn, "WEBHOOK_URL": ""})
    done = captures.encrypt_stored_secrets()
    if obj.json_output:
        obj.emit({"table": table, **done})
        return
    meanwhile = f", {done['skipped']} deleted or changed meanwhile" if done["skipped"] else ""
    click.echo(f"{done['encrypted']} inbox secret(s) in {table} encrypted now "
               f"({done['scanned']} items scanned{meanwhile}).")
