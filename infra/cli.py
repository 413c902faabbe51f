"""Operator CLI: a client of the session service's HTTP API (python -m infra.cli ...).

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
  inbox show [INBOX_ID]     requests captured by a webhook inbox (--token)
  keys create|list|revoke   API keys
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

import http.client
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

DEFAULT_URL = "http://127.0.0.1:8000/api"
EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INVALID_FILE = 1, 2, 3, 4
KEY_HINT = "pass --api-key or set SESSION_SERVICE_API_KEY"
STALL_PAUSE_SECONDS = 1.0  # redrive: wait before asking again when nothing could be moved
MAX_STALLS = 5


# ---- errors with their exit codes ----------------------------------------------------------


class CliError(click.ClickException):
    """Printed as `error: <code>: <message>` (and a hint) on stderr; exits with exit_code."""

    def __init__(self, code: str, message: str, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
        self.hint = hint

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.code}: {self.message}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


class ApiError(CliError):
    """The API answered with an error status (exit 1)."""

    def __init__(self, status: int, body: dict[str, Any], sent_key: bool) -> None:
        code = str(body.get("error") or f"http_{status}")
        message = str(body.get("message") or http.client.responses.get(status, "error"))
        super().__init__(code, message, EXIT_API_ERROR, _auth_hint(status, code, sent_key))
        self.status = status
        self.body = body


class Unreachable(CliError):
    """No HTTP answer at all (exit 3)."""

    def __init__(self, url: str, reason: Any) -> None:
        super().__init__("unreachable", f"cannot reach the service at {url}: {reason}",
                         EXIT_UNREACHABLE, "is it running (make run), and is --url right?")


def _auth_hint(status: int, code: str, sent_key: bool) -> str | None:
    if code == "token_required":
        return "pass the inbox's read token with --token or INBOX_TOKEN"
    if status == 401:
        return (f"the API key was not accepted (unknown or revoked): {KEY_HINT}" if sent_key
                else f"this needs an API key: {KEY_HINT}")
    if status == 403 and code != "user_mismatch":
        return (f"this API key's scopes do not allow it (manuals, redrive, inboxes and keys need "
                f"admin; a key bound to a user reaches only that user's sessions): {KEY_HINT}")
    return None


# ---- the HTTP client -----------------------------------------------------------------------


@dataclass
class Client:
    url: str
    api_key: str | None = None
    timeout: float = 30.0

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None,
             body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON or None). Raises ApiError for 4xx/5xx
        and Unreachable when there is no HTTP answer."""
        target = self.url.rstrip("/") + "/" + path.lstrip("/")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urllib.parse.urlencode(params)
        all_headers = {"Accept": "application/json", "User-Agent": "session-service-cli",
                       **(headers or {})}
        if self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data=data, method=method, headers=all_headers)
        try:
            # the URL's scheme is checked to be http(s) when the option is parsed (_check_url)
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # nosec B310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _error_body(exc.read()), bool(self.api_key)) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, refused, timeout, DNS
            raise Unreachable(self.url, getattr(exc, "reason", None) or exc) from None
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise CliError("invalid_response", f"{method} {target} answered {status} with a "
                           "body that is not JSON (is --url the API's base URL?)",
                           EXIT_API_ERROR) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)[1]

    def listing(self, path: str, query: dict[str, Any] | None = None, *, limit: int = 100,
                cursor: str | None = None, every: bool = True,
                headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """A listing's items from `cursor` on: one page, or with `every` all pages (following
        next_cursor); returns the items and the cursor of what is left (None at the end)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", path, query={**(query or {}), "limit": limit, "cursor": cursor},
                             headers=headers)[1]
            items += page["items"]
            cursor = page.get("next_cursor")
            if not (every and cursor):
                return items, cursor


def _error_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = raw.decode("utf-8", "replace").strip()
    return {"message": text[:300]} if text else {}


def seg(value: str) -> str:
    """A path segment, escaped (ids come from the command line)."""
    return urllib.parse.quote(value, safe="")


@dataclass
class Cli:
    client: Client
    json_output: bool

    def emit(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# ---- output helpers ------------------------------------------------------------------------


def cells(row: list[Any]) -> list[str]:
    return ["-" if c is None or c == "" else str(c) for c in row]


def line(row: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()


def column_widths(headers: list[str], rows: list[list[Any]]) -> list[int]:
    rendered = [cells(r) for r in rows]
    return [max([len(h), *(len(r[i]) for r in rendered)]) for i, h in enumerate(headers)]


def table(headers: list[str], rows: list[list[Any]]) -> str:
    widths = column_widths(headers, rows)
    return "\n".join(line(r, widths) for r in [headers, *map(cells, rows)])


def when(iso: str | None) -> str:
    """2026-11-22T10:00:05.123456Z -> 2026-11-22 10:00:05Z"""
    if not iso:
        return "-"
    return iso[:19].replace("T", " ") + ("Z" if iso.endswith("Z") else "")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def more_hint(noun: str, cursor: str | None) -> None:
    if cursor:
        click.echo(f"(more {noun}: --all, or --cursor {cursor})", err=True)


def last_attempt(attempts: list[dict[str, Any]]) -> str:
    if not attempts:
        return "-"
    last = attempts[-1]
    result = last.get("status_code") or last.get("error") or "?"
    return f"{len(attempts)}, last {result}"


def every_option(f: Any) -> Any:
    for option in reversed([
        click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True,
                     help="Items per page (per request with --all)."),
        click.option("--all", "every", is_flag=True, help="Follow next_cursor to the end."),
        click.option("--cursor", default=None, help="Start from this page (a next_cursor)."),
    ]):
        f = option(f)
    return f


# ---- the command group ---------------------------------------------------------------------


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


# ---- manuals -------------------------------------------------------------------------------


@cli.group()
def manuals() -> None:
    """Manuals (instruction manuals of 1 to 1000 steps)."""


@dataclass
class Imported:
    file: str
    status: str  # created | unchanged | failed
    manual_id: str | None = None
    steps: int | None = None
    error: str | None = None
    message: str | None = None
    fields: list[dict[str, str]] | None = None

    def line(self) -> str:
        if self.status == "failed":
            return f"{self.error}: {self.message}"
        return f"{self.manual_id} ({self.steps} steps)"


class InvalidFile(Exception):
    def __init__(self, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


def load_manual(path: Path) -> Any:
    """The ManualCreate in a JSON or YAML file, validated as the API validates it."""
    from pydantic import ValidationError

    from chalicelib.domain.errors import InvalidJson
    from chalicelib.api.json_input import parse_json
    from chalicelib.domain.models import ManualCreate

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidFile(f"cannot read the file: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = parse_json(text)
        except InvalidJson as exc:  # "Not valid JSON: ..." -> "not valid JSON: ..." (as for YAML)
            raise InvalidFile(exc.message[:1].lower() + exc.message[1:]) from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidFile(f"not valid YAML: {' '.join(str(exc).split())}") from None
    else:
        raise InvalidFile("unsupported file type: use .json, .yaml or .yml")
    if not isinstance(data, dict):
        raise InvalidFile("the file must hold one manual (an object with manual_id, title, steps)")
    try:
        return ManualCreate.model_validate(data)
    except ValidationError as exc:
        fields = [{"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
                  for err in exc.errors(include_url=False, include_input=False)]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        raise InvalidFile(f"Invalid manual: {summary}", fields) from None


def import_one(client: Client, path: Path) -> Imported:
    try:
        manual = load_manual(path)
    except InvalidFile as exc:
        return Imported(str(path), "failed", error="invalid_file", message=exc.message,
                        fields=exc.fields)
    done = Imported(str(path), "failed", manual.manual_id, len(manual.steps))
    try:
        status, _ = client.call("POST", "v1/manuals",
                                body=manual.model_dump(mode="json", exclude_none=True))
    except ApiError as exc:
        if exc.status in (401, 403):
            raise  # the same for every file: stop with the hint
        done.error, done.message, done.fields = exc.code, exc.message, exc.body.get("fields")
        return done
    done.status = "created" if status == 201 else "unchanged"
    return done


@manuals.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def manuals_import(obj: Cli, files: tuple[Path, ...]) -> None:
    """Create a manual from each JSON or YAML FILE (one manual per file, the body that
    POST /v1/manuals takes). Each file is validated locally first; each is reported as
    created, unchanged (the same manual was already there) or failed.

    Exit code 4 if a file is invalid, else 1 if the API refused one, else 0."""
    results: list[Imported] = []
    stopped: CliError | None = None
    try:
        if len(files) > 1:
            with click.progressbar(files, label="Importing", file=sys.stderr,
                                   item_show_func=lambda p: p.name if p else None) as bar:
                for path in bar:
                    results.append(import_one(obj.client, path))
        else:
            results.append(import_one(obj.client, files[0]))
    except (Unreachable, ApiError) as exc:
        stopped = exc
    if obj.json_output:
        obj.emit([r.__dict__ for r in results])
    elif results:  # an error that stopped the import before any file: only the error
        width = max(len(r.file) for r in results)
        for r in results:
            click.echo(f"{r.status:<9}  {r.file:<{width}}  {r.line()}")
        counts = {s: sum(r.status == s for r in results) for s in ("created", "unchanged", "failed")}
        click.echo(", ".join(f"{n} {s}" for s, n in counts.items()), err=True)
    if stopped:
        raise stopped
    ctx = click.get_current_context()
    if any(r.error == "invalid_file" for r in results):
        ctx.exit(EXIT_INVALID_FILE)
    if any(r.status == "failed" for r in results):
        ctx.exit(EXIT_API_ERROR)


# ---- sessions ------------------------------------------------------------------------------


@cli.group()
def sessions() -> None:
    """Learners' sessions."""


def session_row(s: dict[str, Any]) -> list[Any]:
    step = "done" if s["status"] == "completed" else f"{s['current_step']}/{s['total_steps']}"
    return [s["session_id"], s["user_id"], s["manual_id"], s["status"], step,
            f"{len(s['completed_steps'])}/{s['total_steps']}", when(s["started_at"]),
            duration(s.get("duration_seconds"))]


SESSION_HEADERS = ["SESSION", "USER", "MANUAL", "STATUS", "STEP", "DONE", "STARTED", "DURATION"]


@sessions.command("list")
@click.option("--status", type=click.Choice(["active", "completed", "ended", "abandoned"]))
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


# ---- events --------------------------------------------------------------------------------


@cli.group()
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
            for i, (c, w) in enumerate(zip(row, widths))]


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
                from chalicelib.domain.vocabulary import MAX_STEPS

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


# ---- deliveries and redrive ----------------------------------------------------------------


@cli.group()
def deliveries() -> None:
    """Webhook deliveries."""


@deliveries.command("failed")
@every_option
@click.pass_obj
def deliveries_failed(obj: Cli, limit: int, every: bool, cursor: str | None) -> None:
    """Webhooks that failed for good (dead-lettered), newest first."""
    items, next_cursor = obj.client.listing("v1/deliveries", {"status": "failed"}, limit=limit,
                                            cursor=cursor, every=every)
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


@cli.command()
@click.option("--batch", type=click.IntRange(1, 100), default=100, show_default=True,
              help="Messages moved per request (each request also stops after about 10 s).")
@click.pass_obj
def redrive(obj: Cli, batch: int) -> None:
    """Move every dead-lettered webhook back to the delivery queue, in order
    (POST /v1/deliveries/redrive, repeated until none remain; needs an admin key)."""
    def step() -> tuple[int, int]:
        answer = obj.client.call("POST", "v1/deliveries/redrive", query={"limit": batch})[1]
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


# ---- inboxes -------------------------------------------------------------------------------


@cli.group()
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


# ---- API keys ------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """API keys (needs an admin key)."""


@keys.command("create")
@click.option("--scope", "scopes", type=click.Choice(["agent", "admin", "read"]), multiple=True,
              required=True, help="What the key may do (repeatable): read, agent (read + a "
                                  "tutor's writes) or admin (everything).")
@click.option("--name", default=None, help="A name to recognise the key by.")
@click.option("--user", "user_id", default=None, help="Bind the key to this user's sessions.")
@click.pass_obj
def keys_create(obj: Cli, scopes: tuple[str, ...], name: str | None, user_id: str | None) -> None:
    """Create an API key. The key is printed once, alone on stdout (details on stderr):
    store it now, it cannot be shown again."""
    body = {"scopes": list(dict.fromkeys(scopes)), "name": name, "user_id": user_id}
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
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (e.g. the local moto server); default: AWS itself.")
def keys_bootstrap(stack: str | None, table: str | None, name: str, endpoint_url: str | None) -> None:
    """The first admin key of a new deployment, written straight into its table with your
    AWS credentials (every other key is made through the API with an admin key). Printed
    once, alone on stdout."""
    import os

    import boto3

    from chalicelib.db import table as store
    from chalicelib.api import auth

    if not (stack or table):
        raise click.UsageError("give --stack or --table")
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    if table is None:
        described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        table = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}["TableName"]
    os.environ["TABLE_NAME"] = table
    store.reset_client()
    created = auth.create_key(auth.KeyCreate(scopes=["admin"], name=name))
    click.echo(f"Created admin key {created.key_id} in table {table} (shown only now).", err=True)
    click.echo(created.key)


def main() -> Any:
    return cli(prog_name="python -m infra.cli")


if __name__ == "__main__":
    main()
