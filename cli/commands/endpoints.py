"""`endpoints list|create|rotate|test|replay|disable|enable`: webhook endpoints (admin key);
`endpoints backfill-replay-index`: the one-off after upgrading, straight on the table;
`endpoints encrypt-secrets`: the upgrade's migration (AWS credentials)."""

from __future__ import annotations

import sys
import time

import click

from cli.commands import Cli, every_option
from cli.output import more_hint, table, when

EVENT_TYPES = ("session_created", "progress_update", "progress_update:DONE", "session_ended")


@click.group()
def endpoints() -> None:
    """Webhook endpoints: where webhooks go (needs an admin key)."""


def _rate(stats: dict) -> str:
    rate = stats.get("success_rate")
    return "-" if rate is None else f"{rate * 100:.0f}%"


@endpoints.command("list")
@every_option
@click.pass_obj
def endpoints_list(obj: Cli, limit: int, every: bool, cursor: str | None) -> None:
    """Every endpoint with its health and stats."""
    items, next_cursor = obj.client.listing("v1/webhook-endpoints", limit=limit, cursor=cursor, every=every)
    if obj.json_output:
        obj.emit({"items": items, "next_cursor": next_cursor})
        return
    if not items:
        click.echo("(no webhook endpoints)")
        return
    rows = [[e["endpoint_id"], "enabled" if e["enabled"] else f"DISABLED: {e['disabled_reason']}",
             ",".join(e["event_types"]) if e["event_types"] else "(every event)", e["url"],
             e["stats"]["attempts"], _rate(e["stats"]),
             "-" if e["stats"]["p50_latency_ms"] is None else f"{e['stats']['p50_latency_ms']} ms",
             when(e["stats"]["last_success_at"])] for e in items]
    click.echo(table(["ENDPOINT", "STATUS", "EVENTS", "URL", "ATTEMPTS", "OK", "P50", "LAST SUCCESS"], rows))
    more_hint("endpoints", next_cursor)


@endpoints.command("create")
@click.argument("url")
@click.option("--description", default=None)
@click.option("--event-type", "event_types", multiple=True, type=click.Choice(EVENT_TYPES),
              help="An event type it takes (repeat; none: every event).")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.pass_obj
def endpoints_create(obj: Cli, url: str, description: str | None, event_types: tuple[str, ...],
                     disabled: bool) -> None:
    """Register URL as a webhook endpoint; prints its signing secret (shown only now)."""
    body: dict = {"url": url, "enabled": not disabled}
    if description:
        body["description"] = description
    if event_types:
        body["event_types"] = list(event_types)
    created = obj.client.call("POST", "v1/webhook-endpoints", body=body)[1]
    if obj.json_output:
        obj.emit(created)
        return
    click.echo(f"{created['endpoint_id']}  {created['url']}")
    click.echo(f"secret: {created['secret']}")
    click.echo("(the secret is shown only now: give it to the receiver)", err=True)


@endpoints.command("rotate")
@click.argument("endpoint_id")
@click.option("--grace", "grace_seconds", type=click.IntRange(0, 7 * 86400), default=86400, show_default=True,
              help="Seconds the old secret keeps signing too.")
@click.pass_obj
def endpoints_rotate(obj: Cli, endpoint_id: str, grace_seconds: int) -> None:
    """A new signing secret; the old one keeps signing for --grace seconds."""
    answer = obj.client.call("POST", f"v1/webhook-endpoints/{endpoint_id}/rotate-secret",
                             body={"grace_seconds": grace_seconds})[1]
    if obj.json_output:
        obj.emit(answer)
        return
    click.echo(f"secret: {answer['secret']}")
    expires = answer["previous_secret_expires_at"]
    click.echo(f"(the old secret signs too until {expires})" if expires else "(the old secret no longer signs)",
               err=True)


@endpoints.command("test")
@click.argument("endpoint_id")
@click.option("--wait", "wait_seconds", type=click.FloatRange(0, 3600), default=0,
              help="Wait up to this many seconds for the ping's outcome (exit 1 if it failed).")
@click.pass_obj
def endpoints_test(obj: Cli, endpoint_id: str, wait_seconds: float) -> None:
    """Send a ping event to the endpoint through the pipeline (retried like any webhook)."""
    answer = obj.client.call("POST", f"v1/webhook-endpoints/{endpoint_id}/test")[1]
    if not wait_seconds:
        if obj.json_output:
            obj.emit(answer)
        else:
            click.echo(f"ping {answer['event_id']} queued for {endpoint_id}")
        return
    deadline = time.monotonic() + wait_seconds
    path = f"v1/webhook-endpoints/{endpoint_id}/pings/{answer['event_id']}"
    status = obj.client.call("GET", path)[1]
    while status["status"] in ("queued", "retrying") and time.monotonic() < deadline:
        time.sleep(0.5)
        status = obj.client.call("GET", path)[1]
    if obj.json_output:
        obj.emit(status)
    else:
        last = status["attempts"][-1] if status["attempts"] else {}
        answered = f"HTTP {last['status_code']}" if last.get("status_code") is not None else last.get("error")
        click.echo(f"ping {status['event_id']} {status['status']} after {status['attempt_count']} of "
                   f"{status['max_attempts']} attempts" + (f" (last: {answered})" if last else ""))
    if status["status"] in ("failed", "gone"):
        sys.exit(1)


@endpoints.command("replay")
@click.argument("endpoint_id")
@click.option("--since", required=True, help="Start of the window (2026-11-22T10:00:00.000000Z).")
@click.option("--until", default=None, help="End of the window (default: now).")
@click.option("--batch", type=click.IntRange(1, 500), default=100, show_default=True,
              help="Events queued per request (each request also stops after about 10 s).")
@click.pass_obj
def endpoints_replay(obj: Cli, endpoint_id: str, since: str, until: str | None, batch: int) -> None:
    """Re-send a window's events to this endpoint only (same webhook-ids), step by step."""
    body: dict = {"since": since, "limit": batch, **({"until": until} if until else {})}
    queued = scanned = 0
    while True:
        step = obj.client.call("POST", f"v1/webhook-endpoints/{endpoint_id}/replay", body=body)[1]
        queued += step["queued"]
        scanned += step["scanned"]
        if not obj.json_output:
            click.echo(f"\rreplaying: {queued} queued, {scanned} scanned", nl=False, err=True)
        if step["done"]:
            break
        body["cursor"] = step["next_cursor"]
    if obj.json_output:
        obj.emit({"endpoint_id": endpoint_id, "queued": queued, "scanned": scanned})
    else:
        print(file=sys.stderr)
        click.echo(f"Replayed {queued} event(s) to {endpoint_id}.")


def _set_enabled(obj: Cli, endpoint_id: str, enabled: bool) -> None:
    answer = obj.client.call("PATCH", f"v1/webhook-endpoints/{endpoint_id}", body={"enabled": enabled})[1]
    if obj.json_output:
        obj.emit(answer)
        return
    click.echo(f"{endpoint_id} {'enabled' if answer['enabled'] else 'disabled'}")
    if answer.get("replay_hint"):
        click.echo(f"(to re-send what it missed: endpoints replay {endpoint_id} "
                   f"--since {answer['replay_hint']['since']})", err=True)


@endpoints.command("disable")
@click.argument("endpoint_id")
@click.pass_obj
def endpoints_disable(obj: Cli, endpoint_id: str) -> None:
    """Stop sending to the endpoint (nothing is queued for it while disabled)."""
    _set_enabled(obj, endpoint_id, False)


@endpoints.command("enable")
@click.argument("endpoint_id")
@click.pass_obj
def endpoints_enable(obj: Cli, endpoint_id: str) -> None:
    """Send to the endpoint again (prints the replay that re-sends what it missed)."""
    _set_enabled(obj, endpoint_id, True)


@endpoints.command("backfill-replay-index")
@click.option("--stack", default=None, help="CloudFormation stack whose table to migrate.")
@click.option("--table", default=None, help="The table name (instead of --stack).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Stop after evaluating this many items (and so indexing at most this many events).")
@click.option("--cursor", default=None, help="Resume where a stopped run said (its next cursor).")
@click.option("--page-size", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Items evaluated per Scan request.")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (e.g. the local moto server); default: AWS itself.")
@click.pass_obj
def endpoints_backfill_replay_index(obj: Cli, stack: str | None, table: str | None, limit: int | None,
                                    cursor: str | None, page_size: int, endpoint_url: str | None) -> None:
    """Give the events stored before webhook endpoints existed their replay index entry, so an
    endpoint's replay finds them: a one-off after upgrading, straight on the table with your
    AWS credentials (a Scan; it never sends a webhook). Bounded (--limit), resumable (--cursor:
    Ctrl-C or --limit print where to go on) and idempotent (run it again: nothing changes)."""
    import os

    from chalicelib import runtime
    from chalicelib.domain.errors import InvalidCursor
    from chalicelib.jobs import replay_index
    from cli.stack import outputs

    if not (stack or table):
        raise click.UsageError("give --stack or --table")
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    if table is None:
        table = outputs(str(stack))["TableName"]
    runtime.bootstrap({"TABLE_NAME": table})
    scanned = indexed = skipped = 0
    done = False
    try:
        while not done and (limit is None or scanned < limit):
            try:
                step = replay_index.step(cursor, page_size=page_size,
                                         limit=None if limit is None else limit - scanned)
            except InvalidCursor as exc:
                raise click.BadParameter(str(exc), param_hint="--cursor") from exc
            scanned, indexed, skipped = scanned + step.scanned, indexed + step.indexed, skipped + step.skipped
            cursor, done = step.next_cursor, step.done
            if not obj.json_output:
                click.echo(f"\rbackfill: {scanned} items scanned, {indexed} events indexed", nl=False, err=True)
    except KeyboardInterrupt:
        if not obj.json_output:
            print(file=sys.stderr)
        click.echo(f"Interrupted: {indexed} event(s) indexed so far; resume with --cursor {cursor}"
                   if cursor else f"Interrupted before the first page: {indexed} event(s) indexed.", err=True)
        raise SystemExit(130) from None
    if obj.json_output:
        obj.emit({"table": table, "scanned": scanned, "indexed": indexed, "skipped": skipped,
                  "next_cursor": cursor, "done": done})
        return
    print(file=sys.stderr)
    click.echo(f"Indexed {indexed} event(s) for replay ({scanned} items scanned"
               f"{f', {skipped} indexed meanwhile or deleted' if skipped else ''}).")
    if not done:
        click.echo(f"Stopped at --limit: resume with --cursor {cursor}", err=True)


@endpoints.command("encrypt-secrets")
@click.option("--stack", default=None, help="CloudFormation stack whose table and key to use.")
@click.option("--table", default=None, help="The table name (instead of --stack; then give --key).")
@click.option("--key", "key_arn", default=None, help="The endpoints' KMS key ARN (the stack's EndpointSecretsKeyArn).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (e.g. the local moto server); default: AWS itself.")
@click.pass_obj
def endpoints_encrypt_secrets(obj: Cli, stack: str | None, table: str | None, key_arn: str | None,
                              endpoint_url: str | None) -> None:
    """The upgrade's migration: encrypt (KMS) the signing secrets an older version stored
    plain, in place, with your AWS credentials (the table's Query and UpdateItem,
    kms:Encrypt on the key). Safe to run again: encrypted secrets are left alone. Until it
    has run, plain secrets keep signing."""
    import os

    from chalicelib import runtime
    from chalicelib.services import endpoints as service
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
    # only the secrets are touched: no WEBHOOK_URL here, so the default endpoint is not reconfigured
    runtime.bootstrap({"TABLE_NAME": table, "ENDPOINT_SECRETS_KEY_ARN": key_arn, "WEBHOOK_URL": ""})
    done = service.encrypt_stored_secrets()
    if obj.json_output:
        obj.emit(done)
        return
    click.echo(f"{done['endpoints']} webhook endpoint(s) in {table}: {done['encrypted']} encrypted now, "
               f"{done['already_encrypted']} with nothing stored plain, {done['changed_meanwhile']} changed "
               "meanwhile (run again)")
