"""`keys create|list|limits|revoke` (through the API, with an admin key), and, with AWS
credentials, `keys bootstrap` (the first admin key of a deployment) and `keys sync-usage-plans`
(the upgrade path of keys minted before usage plans)."""

from __future__ import annotations

import click

from cli.client import seg
from cli.commands import Cli, every_option
from cli.output import more_hint, table, when


@click.group()
def keys() -> None:
    """API keys (needs an admin key)."""


@keys.command("create")
@click.option("--scope", "scopes", type=click.Choice(["agent", "admin", "read"]), multiple=True,
              required=True, help="What the key may do (repeatable): read, agent (read + a "
                                  "tutor's writes) or admin (everything).")
@click.option("--name", default=None, help="A name to recognise the key by.")
@click.option("--user", "user_id", default=None, help="Bind the key to this user's sessions.")
@click.option("--rate", "rate_per_second", type=float, default=None,
              help="Its own limit: requests per second (default: the default plan's).")
@click.option("--burst", type=int, default=None, help="Its own burst (default: the default plan's).")
@click.option("--daily-quota", type=int, default=None, help="Its own requests a day (default: the default plan's).")
@click.pass_obj
def keys_create(obj: Cli, scopes: tuple[str, ...], name: str | None, user_id: str | None,
                rate_per_second: float | None, burst: int | None, daily_quota: int | None) -> None:
    """Create an API key. The key is printed once, alone on stdout (details on stderr):
    store it now, it cannot be shown again."""
    body = {"scopes": list(dict.fromkeys(scopes)), "name": name, "user_id": user_id,
            "rate_per_second": rate_per_second, "burst": burst, "daily_quota": daily_quota}
    created = obj.client.call("POST", "v1/keys", body={k: v for k, v in body.items() if v})[1]
    if obj.json_output:
        obj.emit(created)
        return
    click.echo(created["key"])
    detail = f"scopes {', '.join(created['scopes'])}"
    if created.get("name"):
        detail += f", name {created['name']!r}"
    if created.get("user_id"):
        detail += f", user {created['user_id']}"
    click.echo(f"Created key {created['key_id']} ({detail}). It is shown only this once: "
               "store it now.", err=True)


@keys.command("list")
@every_option
@click.pass_obj
def keys_list(obj: Cli, limit: int, every: bool, cursor: str | None) -> None:
    """API keys (never their values), with revoked ones marked."""
    items, next_cursor = obj.client.listing("v1/keys", limit=limit, cursor=cursor, every=every)
    if obj.json_output:
        obj.emit({"items": items, "next_cursor": next_cursor})
        return
    rows = [[k["key_id"], k.get("name"), ",".join(k["scopes"]), k.get("user_id"),
             when(k["created_at"]), when(k.get("revoked_at")) if k.get("revoked_at") else "-"]
            for k in items]
    click.echo(table(["KEY ID", "NAME", "SCOPES", "USER", "CREATED", "REVOKED"], rows)
               if rows else "(no keys)")
    more_hint("keys", next_cursor)


@keys.command("limits")
@click.argument("key_id")
@click.option("--rate", "rate_per_second", default=None, help="Requests per second, or 'default'.")
@click.option("--burst", default=None, help="Burst, or 'default'.")
@click.option("--daily-quota", default=None, help="Requests a day, or 'default'.")
@click.pass_obj
def keys_limits(obj: Cli, key_id: str, rate_per_second: str | None, burst: str | None,
                daily_quota: str | None) -> None:
    """Set an API key's own limits ('default': back to the default plan's; left out: unchanged)."""
    given = {"rate_per_second": rate_per_second, "burst": burst, "daily_quota": daily_quota}

    def number(name: str, value: str) -> float | int | None:
        if value == "default":
            return None
        try:
            return float(value) if name == "rate_per_second" else int(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a number or 'default'", param_hint=name) from None

    body = {k: number(k, v) for k, v in given.items() if v is not None}
    updated = obj.client.call("PATCH", f"v1/keys/{seg(key_id)}", body=body)[1]
    if obj.json_output:
        obj.emit(updated)
        return
    shown = ", ".join(f"{k} {updated[k] if updated[k] is not None else 'default'}" for k in given)
    click.echo(f"Key {key_id}: {shown}.")


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def keys_revoke(obj: Cli, key_id: str) -> None:
    """Revoke an API key (it stops working within the service's cache time)."""
    obj.client.call("DELETE", f"v1/keys/{seg(key_id)}")
    if obj.json_output:
        obj.emit({"key_id": key_id, "revoked": True})
    else:
        click.echo(f"Revoked key {key_id}.")


@keys.command("bootstrap")
@click.option("--stack", default=None, help="CloudFormation stack whose table to use.")
@click.option("--table", default=None, help="The table name (instead of --stack).")
@click.option("--name", default="bootstrap admin key", show_default=True)
@click.option("--usage-plan", default=None,
              help="API Gateway usage plan for the key (default with --stack: <stack>-default, "
                   "the stack's DefaultUsagePlan; with --table alone: none).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (e.g. the local moto server); default: AWS itself.")
def keys_bootstrap(stack: str | None, table: str | None, name: str, usage_plan: str | None,
                   endpoint_url: str | None) -> None:
    """The first admin key of a new deployment, written straight into its table with your
    AWS credentials (every other key is made through the API with an admin key), with its
    API Gateway key in the stack's default usage plan (without one, API Gateway refuses the
    key). Printed once, alone on stdout."""
    from chalicelib import runtime
    from chalicelib.services import keys

    table, plan = _stack_settings(stack, table, usage_plan, endpoint_url)
    runtime.bootstrap({"TABLE_NAME": table, "USAGE_PLAN_NAME": plan})
    created = keys.create_key(keys.KeyCreate(scopes=["admin"], name=name))
    click.echo(f"Created admin key {created.key_id} in table {table} (shown only now).", err=True)
    click.echo(created.key)


def _stack_settings(stack: str | None, table: str | None, usage_plan: str | None,
                    endpoint_url: str | None) -> tuple[str, str]:
    """The table and the default usage plan's name of a deployed stack (or as given)."""
    import os

    from cli.stack import outputs

    if not (stack or table):
        raise click.UsageError("give --stack or --table")
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    if table is None:
        table = outputs(str(stack))["TableName"]
    return table, usage_plan or (f"{stack}-default" if stack else "")


@keys.command("sync-usage-plans")
@click.option("--stack", default=None, help="CloudFormation stack whose table and default plan to use.")
@click.option("--table", default=None, help="The table name (instead of --stack; then give --usage-plan).")
@click.option("--usage-plan", default=None, help="The default usage plan's name (default: <stack>-default).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (e.g. a moto server); default: AWS itself.")
@click.option("--max-keys", type=click.IntRange(1), default=None,
              help="Stop at the end of the page (of up to 50 keys) that reaches this many keys, "
                   "printing the cursor to go on from.")
@click.option("--cursor", default=None, help="Resume from this cursor (printed by an earlier run).")
@click.option("--pause", type=click.FloatRange(0, 10), default=0.2, show_default=True,
              help="Seconds between keys (API Gateway limits its management calls per account).")
@click.pass_obj
def keys_sync_usage_plans(obj: Cli, stack: str | None, table: str | None, usage_plan: str | None,
                          endpoint_url: str | None, max_keys: int | None, cursor: str | None,
                          pause: float) -> None:
    """Give every active key its API Gateway key in the right usage plan: the upgrade step for
    keys minted before usage plans, which API Gateway refuses (403) until then. Safe to run
    again and to interrupt: a key already in place is left as it is, and a second run finishes
    what a first one left. Progress on stderr, the summary on stdout."""
    import time

    from chalicelib import runtime
    from chalicelib.domain.errors import ServiceError
    from chalicelib.services import keys

    table, plan = _stack_settings(stack, table, usage_plan, endpoint_url)
    if not plan:
        raise click.UsageError("give --usage-plan (or --stack)")
    runtime.bootstrap({"TABLE_NAME": table, "USAGE_PLAN_NAME": plan})
    counts = {"attached": 0, "in place": 0, "revoked": 0}
    seen, resume = 0, None
    try:
        for synced in keys.sync_usage_plans(page_size=min(max_keys or 50, 50), cursor=cursor):
            seen += 1
            counts[synced.outcome] += 1
            where = f" (plan {synced.usage_plan_id})" if synced.usage_plan_id else ""
            click.echo(f"[{seen}] key {synced.key_id}: {synced.outcome}{where}", err=True)
            if max_keys is not None and seen >= max_keys and synced.last_of_page:
                resume = synced.cursor
                break
            time.sleep(pause)
    except ServiceError as failed:  # API Gateway refused or throttled past the retries
        click.echo(f"error: {failed.code}: {failed.message} ({seen} keys done; run it again to "
                   "go on: keys already in place are skipped)", err=True)
        raise SystemExit(1) from None
    summary = {"keys": seen, **{k.replace(" ", "_"): v for k, v in counts.items()}, "cursor": resume}
    if obj.json_output:
        obj.emit(summary)
        return
    click.echo(f"{seen} keys: {counts['attached']} given their API Gateway key or plan, "
               f"{counts['in place']} already in place, {counts['revoked']} revoked (skipped).")
    if resume:
        click.echo(f"Stopped after {seen} keys (--max-keys): go on with --cursor {resume}", err=True)
    else:
        click.echo("Every active key is in its usage plan.", err=True)
