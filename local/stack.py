"""The local stack: `make run` (python -m local.stack).

Starts a moto server on loopback, deploys infra/resources.json into it with CloudFormation,
serves the Chalice app over HTTP on 127.0.0.1:PORT, under both `/` and `/api` (the deployed
stage name), so local and deployed base URLs differ only in host, and runs the event-source
runner (stream -> feedback -> queue -> delivery). Unless WEBHOOK_URL is set, webhooks go to
the app's own inbox `local`, which verifies their signatures. Data lives as long as the
process. Nothing here ships to Lambda.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGE_PREFIX = "/api"
_PIPELINE = threading.local()  # set while the API serves one of our own webhooks (the inbox)
# API requests handled at once (webhooks to the inbox `local` are not counted). One process
# serves the API, the inbox and the event sources, and moto answers one call at a time
# anyway: more API requests at once only took the interpreter from the pipeline, whose
# backlog then grew without bound under load. Requests beyond it wait their turn.
_API_TURNS = threading.BoundedSemaphore(int(os.environ.get("LOCAL_API_CONCURRENCY", "4")))
# An idle event source waits for the next write to moto; this is its longest wait (a message
# whose visibility timeout simply runs out, after a crash, is noticed within it).
IDLE_POLL_SECONDS = 5.0
# Concurrent consumers of the delivery queue. Lambda runs one per active message group (a
# session) up to its concurrency; FIFO lets each take one group at a time.
QUEUE_CONSUMERS = int(os.environ.get("LOCAL_QUEUE_CONSUMERS", "8"))
# API Gateway refuses bodies over 10 MB itself (the app's own limits are lower: 1 MB, 5 MB for
# manuals); the local server refuses them before reading them.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# socketserver's default listen backlog is 5: a burst of new connections overflowed it and
# the kernel dropped or reset the rest. The kernel caps this at net.core.somaxconn.
LISTEN_BACKLOG = 1024
FAKE_AWS_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@dataclass
class LocalStack:
    api_url: str
    moto_url: str
    table_name: str
    stream_arn: str
    webhook_url: str
    inbox_url: str | None
    inbox_token: str | None
    api_key: str
    _stoppers: list[Any]
    limits: str = ""

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            stop()


class FramingError(Exception):
    """The request's body framing is unusable: answer `error` and close the connection."""

    def __init__(self, error: Any) -> None:
        super().__init__(error.message)
        self.error = error


def _request_handler(limiter: Any = None) -> type:
    from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalGatewayException

    from chalicelib.api.headers import API_HEADERS, add_missing
    from chalicelib.domain import errors
    from local.gateway import AccessDenied

    # What http.server answers by itself (request line too long, too many or too long
    # headers, a bad request line), in the API's error shape. An "HTTP/2.0" request line is
    # not HTTP/2 (which is binary) but a malformed HTTP/1 request: 400, not http.server's 505.
    protocol_errors: dict[int, type[errors.ServiceError]] = {
        413: errors.PayloadTooLarge, 414: errors.UriTooLong, 431: errors.HeadersTooLarge,
    }

    class Handler(ChaliceRequestHandler):
        """Chalice's local handler, plus the stage prefix, JSON 404s for unknown routes (API
        Gateway's own answer, 403 "Missing Authentication Token", is mapped the same way by a
        GatewayResponse in the deployed template), and every protocol error in JSON: as on
        API Gateway, no answer is ever HTML."""

        # http.server writes the headers and the body of an answer separately: with Nagle's
        # algorithm on, the body then waits for the client's delayed ACK (40 ms per answer).
        disable_nagle_algorithm = True

        def _generic_handle(self) -> None:
            from chalicelib.pipeline.webhooks import USER_AGENT

            _PIPELINE.on = self.headers.get("User-Agent") == USER_AGENT
            if self.path == STAGE_PREFIX or self.path.startswith(STAGE_PREFIX + "/"):
                self.path = self.path[len(STAGE_PREFIX):] or "/"
            if limiter is not None and not self._admitted():
                return
            try:
                headers, body = self._parse_payload()
            except FramingError as refused:  # the rest of the stream cannot be trusted
                self.close_connection = True
                self._send_json_error(refused.error)
                return
            gate = contextlib.nullcontext() if _PIPELINE.on else _API_TURNS
            try:
                with gate:
                    response = self.local_gateway.handle_request(
                        method=self.command, path=self.path, headers=headers, body=body)
            except AccessDenied as denied:  # the key's scopes do not allow this route
                self._send_http_response(denied.CODE, denied.headers, denied.body)
                return
            except ForbiddenError:
                route = self.path.split("?", 1)[0]
                payload = json.dumps({"error": "route_not_found",
                                      "message": f"No route {self.command} {route}"}).encode()
                self._send_http_response(404, {"Content-Type": "application/json"}, payload)
                return
            except LocalGatewayException as error:  # 401, or the authorizer could not decide
                self._send_http_response(error.CODE, error.headers, error.body)
                return
            headers = response["headers"].copy()
            headers.update(response["multiValueHeaders"])
            response = self._handle_binary(response)
            self._send_http_response(response["statusCode"], headers, response["body"])

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def _admitted(self) -> bool:
            """API Gateway's per-key and per-route limits (local/limits.py), checked first:
            a refused request costs no body read (a small one is skipped, a large or chunked
            one closes the connection), no request for the app, and one write of a 429
            prepared once. Each further 429 in a row on this connection is held longer."""
            streak = getattr(self, "refused_in_a_row", 0)
            try:
                limiter.admit(self.command, self.path, self.headers, streak)
            except LocalGatewayException as throttled:
                self.refused_in_a_row = streak + 1
                self._skip_body()
                self.wfile.write(_prepared(throttled.CODE, throttled.headers, throttled.body,
                                           self.command == "HEAD", self.close_connection))
                self.log_request(throttled.CODE)
                return False
            self.refused_in_a_row = 0
            return True

        def _skip_body(self) -> None:
            length = (self.headers.get("Content-Length") or "0").strip()
            if self.headers.get("Transfer-Encoding") or not length.isdigit() or int(length) > SKIPPED_BODY_BYTES:
                self.close_connection = True
            elif int(length):
                self.rfile.read(int(length))

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, QUERY, ...) reaches the app, which answers a JSON 405
            # as API Gateway would not let it through either.
            if name.startswith("do_"):
                return self._generic_handle
            raise AttributeError(name)

        def _send_http_response(self, code: int, headers: dict[str, Any], body: str | bytes | None) -> None:
            """Every answer, the gateway's own (401, 403, 404, 503) as the function's: with
            the security headers (as the deployed GatewayResponses carry them). A HEAD answer
            says its length but has no body (API Gateway drops it too); sending one would
            corrupt the next response on a kept-alive connection."""
            add_missing(headers, API_HEADERS)
            if self.command != "HEAD" or body is None:
                super()._send_http_response(code, headers, body)
                return
            payload = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self._send_headers(headers)

        def _parse_payload(self) -> tuple[dict[str, str], bytes | None]:
            """The headers and the body, read by Content-Length or chunked transfer coding
            (Chalice's own reader read Content-Length only: `abc` killed the connection
            unanswered, and a chunked body arrived empty)."""
            codings = self.headers.get_all("Transfer-Encoding") or []
            lengths = self.headers.get_all("Content-Length") or []
            if codings:
                if [c.strip().lower() for c in codings] != ["chunked"] or lengths:
                    raise FramingError(errors.BadRequest(
                        "Transfer-Encoding must be 'chunked' alone, without Content-Length."))
                body: bytes | None = self._read_chunked()
            elif lengths:
                if len(set(lengths)) != 1 or not lengths[0].strip().isascii() or not lengths[0].strip().isdigit():
                    raise FramingError(errors.BadRequest("Content-Length must be one non-negative integer."))
                size = int(lengths[0])
                self._check_size(size)
                body = self.rfile.read(size) if size else None
            else:
                body = None
            headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
            if codings:
                headers["Content-Length"] = str(len(body or b""))
            return headers, body

        def _read_chunked(self) -> bytes:
            body = bytearray()
            while True:
                size_line = self.rfile.readline(1026).split(b";", 1)[0].strip()
                if not size_line or not all(c in b"0123456789abcdefABCDEF" for c in size_line):
                    raise FramingError(errors.BadRequest("Malformed chunked body."))
                size = int(size_line, 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields: ignored
                    return bytes(body)
                self._check_size(len(body) + size)
                body += self.rfile.read(size)
                if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise FramingError(errors.BadRequest("Malformed chunked body."))

        def _check_size(self, size: int) -> None:
            if size > MAX_REQUEST_BYTES:
                raise FramingError(errors.PayloadTooLarge(
                    f"Request body is over {MAX_REQUEST_BYTES} bytes (API Gateway's limit).",
                    limit_bytes=MAX_REQUEST_BYTES))

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own errors (414, 431, bad request lines...) as JSON, not HTML."""
            if self.request_version == "HTTP/0.9":  # unparsable request line: answer in HTTP/1.x
                self.request_version = "HTTP/1.0"
            error = protocol_errors.get(code, errors.BadRequest)(
                (message or explain or self.responses.get(code, ("Bad request",))[0])[:300])
            self.close_connection = True
            self._send_json_error(error)

        def _send_json_error(self, error: Any) -> None:
            body = json.dumps(error.to_body()).encode()
            self.send_response(error.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for name, value in API_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("LOCAL_ACCESS_LOG", "0") == "1":
                super().log_message(format, *args)

    return Handler


# a refused request's body up to this size is read and dropped (the connection stays usable);
# a larger or chunked one closes the connection instead of being read
SKIPPED_BODY_BYTES = 64 * 1024
_PREPARED: dict[tuple[Any, ...], bytes] = {}


def _prepared(code: int, headers: dict[str, str], body: bytes, head: bool, close: bool) -> bytes:
    """A whole gateway answer (a 429), status line to body, with the security headers; built
    once per distinct answer (a few: the THROTTLED one, the quota's per second to midnight)."""
    key = (code, tuple(headers.items()), body, head, close)
    answer = _PREPARED.get(key)
    if answer is None:
        from http import HTTPStatus

        from chalicelib.api.headers import API_HEADERS

        lines = [f"HTTP/1.1 {code} {HTTPStatus(code).phrase}", *(f"{k}: {v}" for k, v in headers.items()),
                 *(f"{k}: {v}" for k, v in API_HEADERS.items() if k not in headers),
                 f"Content-Length: {len(body)}", *(["Connection: close"] if close else [])]
        answer = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)
        if len(_PREPARED) >= 256:
            _PREPARED.clear()
        _PREPARED[key] = answer
    return answer


def readable_logs() -> None:
    """The functions' JSON log records (Powertools) as one line a person reads, unless
    LOCAL_LOG_FORMAT=json: the same facts as on AWS, for a terminal."""
    if os.environ.get("LOCAL_LOG_FORMAT", "text") == "json":
        return
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    from chalicelib.observability import logger

    class Readable(LambdaPowertoolsFormatter):
        HIDDEN = {"level", "location", "message", "timestamp", "service", "cold_start", "function_name",
                  "function_memory_size", "function_arn", "function_request_id", "exception",
                  "exception_name", "stack_trace", "xray_trace_id", "round", "message_id"}

        def serialize(self, log: dict[str, Any]) -> str:
            when = time.strftime("%H:%M:%S")
            if log.get("outcome") and "attempt" in log:  # one webhook attempt
                answer = log.get("status") or log.get("error") or "no answer"
                later = f", next in {log['retry_in_seconds']} s" if "retry_in_seconds" in log else ""
                text = (f"{when} webhook {log.get('event_type')} session {log.get('session_id')}"
                        f" #{log.get('sequence')} attempt {log['attempt']}/{log['max_attempts']}:"
                        f" {log['outcome']} ({answer}, {log.get('latency_ms')} ms{later})")
            else:
                fields = " ".join(f"{k}={v}" for k, v in log.items() if k not in self.HIDDEN)
                text = f"{when} {log.get('level', ''):<7} {log.get('message')}" + (f"  {fields}" if fields else "")
            return text + (f"\n{log['exception']}" if log.get("exception") else "")

    logger.registered_handler.setFormatter(Readable())


def _server_class() -> type:
    from chalice.local import ThreadedHTTPServer

    class Server(ThreadedHTTPServer):
        request_queue_size = LISTEN_BACKLOG

    return Server


def _chalice_config() -> Any:
    from chalice.config import Config

    disk = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return Config(chalice_stage="dev", config_from_disk=disk)


def start(port: int = 8000, moto_port: int = 0, host: str = "127.0.0.1") -> LocalStack:
    """Start moto, deploy the stack, serve the API, run the event sources; returns handles
    to stop it all. WEBHOOK_URL and WEBHOOK_SECRET are honoured when set; otherwise webhooks
    go to the app's own inbox `local`, which verifies their signatures."""
    for key, value in FAKE_AWS_ENV.items():
        os.environ.setdefault(key, value)
    import base64
    import secrets

    import boto3
    from chalice.local import LocalDevServer, create_local_server

    from infra.deploy import deploy
    from local import gateway
    from local.moto_server import Activity, MotoProcess, mark_pipeline_calls
    from local.runner import Runner

    stoppers: list[Any] = []
    moto = MotoProcess(host, moto_port)
    stoppers.append(moto.stop)
    # the runner's consumers wait for the app's writes instead of polling
    botocore_session = boto3._get_default_session()._session
    table_activity, queue_activity = Activity(), Activity()
    table_activity.watch(botocore_session, "dynamodb")
    queue_activity.watch(botocore_session, "sqs")
    # the event sources' calls go first at moto (see PriorityLock): the runner's threads, and
    # the inbox capturing one of our webhooks (the pipeline's receiver, served by the API)
    mark_pipeline_calls(botocore_session, lambda: threading.current_thread().name.startswith("runner")
                        or getattr(_PIPELINE, "on", False))
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    stack = deploy(boto3.Session())
    config = _chalice_config()
    for key, value in config.environment_variables.items():
        os.environ.setdefault(key, value)
    # webhooks to this machine (the inbox `local`, a receiver on localhost) are the point
    # here; on AWS the SSRF guard refuses private addresses
    os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "1")
    os.environ.update(stack.environment())
    os.environ.setdefault("WEBHOOK_SECRET", "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
    # EMF metrics are for CloudWatch; the readable log lines say the same here
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    import app as app_module
    from app import app
    from chalicelib import config as settings

    readable_logs()
    from chalicelib import runtime

    runtime.reset()

    gateway.install()
    api_key = _dev_key()
    # create_local_server makes app.current_request thread-local for the threaded server.
    create_local_server(app, config, host, 0).server.server_close()
    from local.limits import LocalLimits

    limiter = LocalLimits(app, enabled=os.environ.get("LOCAL_RATE_LIMITS", "1") != "0",
                          refusal_delay=float(os.environ.get("LOCAL_REFUSAL_DELAY_MS", "100")) / 1000)
    server = LocalDevServer(app, config, host, port, handler_cls=_request_handler(limiter),
                            server_cls=_server_class())
    thread = threading.Thread(target=server.server.serve_forever, daemon=True, name="api")
    thread.start()
    bound = server.server.server_address[1]
    stoppers.append(server.shutdown)
    api_url = f"http://{host}:{bound}{STAGE_PREFIX}"
    # capture URLs are built from this, never from a request's Host header
    os.environ.setdefault("PUBLIC_API_URL", api_url)
    inbox_url = inbox_token = None
    if not os.environ.get("WEBHOOK_URL"):
        inbox_url, inbox_token = _local_inbox(api_url)
        os.environ["WEBHOOK_URL"] = f"{api_url}/v1/hooks/local"
        settings.get_settings.cache_clear()
    from chalicelib.pipeline import targets

    targets.every()  # WEBHOOK_URL / WEBHOOK_SECRET -> the webhook endpoint `default`, now
    runner = Runner(app_module, stack.stream_arn, stack.delivery_queue_url)
    stoppers.append(runner.start(interval=IDLE_POLL_SECONDS, queue_concurrency=QUEUE_CONSUMERS, activity=table_activity,
                                  queue_activity=queue_activity).set)
    return LocalStack(
        api_url=api_url, moto_url=moto.url, table_name=stack.table_name,
        stream_arn=stack.stream_arn, webhook_url=os.environ["WEBHOOK_URL"],
        inbox_url=inbox_url, inbox_token=inbox_token, api_key=api_key, _stoppers=stoppers,
        limits=limiter.describe(),
    )


def _dev_key() -> str:
    """The local stack's admin API key: LOCAL_API_KEY when set (scripts can rely on it),
    otherwise a new random one, printed at start."""
    import secrets

    from chalicelib.services import keys

    token = os.environ.get("LOCAL_API_KEY") or keys.KEY_PREFIX + secrets.token_urlsafe(32)
    keys.ensure_key(token, ["admin"], name="local stack dev key")
    return token


def _local_inbox(api_url: str) -> tuple[str, str]:
    """The inbox `local`: our webhooks' receiver, verifying them with WEBHOOK_SECRET."""
    from chalicelib.inbox import captures as inbox

    token = os.environ.get("LOCAL_INBOX_TOKEN") or None
    _, token = inbox.create_inbox(inbox.InboxCreate(
        inbox_id="local", name="Webhooks of this local stack",
        signing_secret=os.environ["WEBHOOK_SECRET"]), read_token=token)
    return f"{api_url}/v1/inboxes/local/requests", token


def banner(stack: LocalStack) -> str:
    """What `make run` prints: the addresses, and the exact environment that the README's
    examples (curl and the CLI) use, so they work on any PORT."""
    base = stack.api_url
    exports = [f"export SESSION_SERVICE_URL={base}",
               f"export SESSION_SERVICE_API_KEY={stack.api_key}"]
    if stack.inbox_token:
        exports.append(f"export INBOX_TOKEN={stack.inbox_token}")
    exports += ['export B="$SESSION_SERVICE_URL/v1"',
                'export K="Authorization: Bearer $SESSION_SERVICE_API_KEY"']
    inbox = " (the inbox `local` of this stack: read it with $INBOX_TOKEN)" if stack.inbox_token else ""
    lines = "\n".join(f"  {line}" for line in exports)
    return f"""
Session service running locally (data lives until you stop it).
  API         {base}/v1            (also without /api)
  API key     {stack.api_key}   (admin; set LOCAL_API_KEY to choose it)
  dashboard   {base}/dashboard
  docs        {base}/docs
  moto        {stack.moto_url}   (AWS_ENDPOINT_URL for the aws CLI / boto3)
  table       {stack.table_name}
  deliveries  webhooks POSTed to {stack.webhook_url}{inbox}
  limits      {stack.limits}

In the shell where you follow the README, paste (curl and python -m cli read these):
{lines}

Try:
  curl -s -H "$K" "$B/sessions"
  curl -s -H "$K" -H "X-Inbox-Token: $INBOX_TOKEN" "$B/inboxes/local/requests"
  .venv/bin/python -m cli sessions list

Ctrl-C stops everything."""


def _hold_terminal() -> Callable[[], None]:
    """Under `make run`, make and this process share the terminal's foreground process
    group, so Ctrl-C's SIGINT reaches make too, which then reports `*** [run] Interrupt` and
    exits 2 however cleanly we stop. Becoming the foreground group ourselves (as a shell does
    for a job) sends Ctrl-C to us alone: we stop, give the terminal back, exit 0, and so does
    make. Returns what gives the terminal back (nothing to do without a terminal)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return lambda: None
    group = os.getpgrp()
    try:
        if group == os.getpid() or os.tcgetpgrp(tty) != group:
            raise OSError("already a job of our own, or in the background: nothing to do")
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may set the foreground
        # Ctrl-Z would stop us while make waits on us, leaving the terminal to no one
        signal.signal(signal.SIGTSTP, signal.SIG_IGN)
        os.setpgid(0, 0)
        os.tcsetpgrp(tty, os.getpgrp())
    except OSError:
        os.close(tty)
        return lambda: None

    def give_back() -> None:
        try:
            os.tcsetpgrp(tty, group)
        except OSError:
            pass  # make is gone already: the shell takes its terminal back itself

    return give_back


def main(argv: list[str] | None = None) -> None:
    """`make run`: start everything, print the banner, stop on Ctrl-C or SIGTERM.
    `--foreground` (what make run passes): take the terminal's foreground, see _hold_terminal."""
    give_back = _hold_terminal() if "--foreground" in (sys.argv[1:] if argv is None else argv) else None
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    port = int(os.environ.get("PORT", "8000"))
    stack = start(port=port, moto_port=int(os.environ.get("MOTO_PORT", "5055")))
    print(banner(stack), flush=True)
    while not stopped.wait(0.5):
        pass
    print("\nStopping...", file=sys.stderr)
    # Stop the servers and the runner, but never hang on a busy one: the data is in memory
    # and goes with the process anyway.
    stopper = threading.Thread(target=stack.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=10)
    sys.stdout.flush()
    if give_back is not None:
        give_back()
    os._exit(0)


if __name__ == "__main__":
    main()
