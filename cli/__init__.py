"""Operator CLI: a client of the session service's HTTP API (python -m cli ...).

It works the same against `make run` (the default URL) and a deployed stack: pass the stage
URL (`EndpointURL`, ending in /api) and an API key. HTTP is the standard library's urllib;
manual files are checked with the service's own pydantic model before they are sent. Not
shipped to Lambda.

\b
What it does:
  manuals import FILE...    create manuals from JSON or YAML files
  sessions list             sessions, newest first (--status, --user, --manual, --all)
  sessions show ID          a session, its next step and its recent messages
  events tail SESSION       a session's events and their webhook delivery (-f: follow)
  deliveries failed         webhooks that failed for good (dead-lettered)
  redrive                   move dead-lettered webhooks back to the delivery queue
  endpoints list|create|rotate|test|replay|disable|enable  webhook endpoints
  endpoints encrypt-secrets  encrypt secrets stored plain by an older version (AWS credentials)
  inbox show [INBOX_ID]     requests captured by a webhook inbox (--token)
  inbox encrypt-secrets     encrypt inbox secrets stored plain by an older version (AWS credentials)
  keys create|list|limits|revoke  API keys (limits: a key's own rate, burst, daily quota)
  keys bootstrap            the first admin key of a deployment (AWS credentials)

\b
Exit codes:
  0  success
  1  the API answered an error (`error: <code>: <message>` on stderr), or a redrive
     could not finish
  2  usage error (unknown option, bad value, missing file)
  3  cannot reach the service (connection refused, timeout, DNS)
  4  a local file is invalid (manuals import; nothing is sent for that file)

Results go to stdout; progress bars, hints and errors to stderr. --json prints results as
JSON (one object per line for `events tail --follow`).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import click

from cli.client import DEFAULT_URL, Client
from cli.commands import Cli, deliveries, endpoints, events, inbox, keys, manuals, sessions


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if urllib.parse.urlsplit(value).scheme not in ("http", "https") or "//" not in value:
        raise click.BadParameter(f"{value!r} is not an http(s) URL, e.g. {DEFAULT_URL}")
    return value


@click.group(help=__doc__, context_settings={"help_option_names": ["-h", "--help"],
                                            "max_content_width": 100})
@click.option("--url", envvar="SESSION_SERVICE_URL", default=DEFAULT_URL, show_default=True,
              show_envvar=True, callback=_check_url,
              help="The API's base URL (a deployed stack's EndpointURL, ending in /api).")
@click.option("--api-key", envvar="SESSION_SERVICE_API_KEY", default=None, show_envvar=True,
              help="API key, sent as Authorization: Bearer <key>.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=30.0, show_default=True,
              help="Seconds to wait for each HTTP answer.")
@click.pass_context
def cli(ctx: click.Context, url: str, api_key: str | None, json_output: bool, timeout: float) -> None:
    ctx.obj = Cli(Client(url, api_key or None, timeout), json_output)


for command in (manuals.manuals, sessions.sessions, events.events, deliveries.deliveries,
                deliveries.redrive, endpoints.endpoints, inbox.inbox, keys.keys):
    cli.add_command(command)


def main() -> Any:
    return cli(prog_name="python -m cli")
