"""The local stack: `make run` (python -m infra.local).

Starts a moto server on loopback, deploys infra/resources.json into it with CloudFormation,
serves the Chalice app over HTTP on 127.0.0.1:PORT, under both `/` and `/api` (the deployed
stage name), so local and deployed base URLs differ only in host, and runs the event-source
runner (stream -> feedback -> queue -> delivery). Unless WEBHOOK_URL is set, webhooks go to
the app's own inbox `local`, which verifies their signatures. Data lives as long as the process. Nothing here ships to Lambda.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGE_PREFIX = "/api"
# An idle event source waits for the next write to moto; this is its longest wait (a message
# whose visibility timeout simply runs out, after a crash, is noticed within it).
IDLE_POLL_SECONDS = 2.0
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

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            stop()


def _request_handler() -> type:
    from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalGatewayException

    from infra.gateway import AccessDenied

    class Handler(ChaliceRequestHandler):
        """Chalice's local handler, plus the stage prefix and JSON 404s for unknown routes
        (API Gateway's own answer, 403 "Missing Authentication Token", is mapped the same
        way by a GatewayResponse in the deployed template)."""

        def _generic_handle(self) -> None:
            if self.path == STAGE_PREFIX or self.path.startswith(STAGE_PREFIX + "/"):
                self.path = self.path[len(STAGE_PREFIX):] or "/"
            headers, body = self._parse_payload()
            try:
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
            # A HEAD answer has no body (API Gateway drops it too); sending one would corrupt
            # the next response on a kept-alive connection.
            body = None if self.command == "HEAD" else response["body"]
            self._send_http_response(response["statusCode"], headers, body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, QUERY, ...) reaches the app, which answers a JSON 405
            # as API Gateway would not let it through either.
            if name.startswith("do_"):
                return self._generic_handle
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if os.environ.get("LOCAL_ACCESS_LOG", "0") == "1":
                super().log_message(format, *args)

    return Handler


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

    from infra import gateway
    from infra.deploy import deploy
    from infra.moto_atomic import AtomicMotoServer
    from infra.runner import Runner

    stoppers: list[Any] = []
    moto = AtomicMotoServer(host, moto_port).start()
    stoppers.append(moto.stop)
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
    from chalicelib import queue, store

    settings.get_settings.cache_clear()
    store.reset_client()
    queue.reset_client()

    gateway.install()
    api_key = _dev_key()
    # create_local_server makes app.current_request thread-local for the threaded server.
    create_local_server(app, config, host, 0).server.server_close()
    server = LocalDevServer(app, config, host, port, handler_cls=_request_handler())
    thread = threading.Thread(target=server.server.serve_forever, daemon=True, name="api")
    thread.start()
    bound = server.server.server_address[1]
    stoppers.append(server.shutdown)
    api_url = f"http://{host}:{bound}{STAGE_PREFIX}"
    inbox_url = inbox_token = None
    if not os.environ.get("WEBHOOK_URL"):
        inbox_url, inbox_token = _local_inbox(api_url)
        os.environ["WEBHOOK_URL"] = f"{api_url}/v1/hooks/local"
        settings.get_settings.cache_clear()
    runner = Runner(app_module, stack.stream_arn, stack.delivery_queue_url)
    stoppers.append(runner.start(interval=IDLE_POLL_SECONDS, activity=moto.activity).set)
    return LocalStack(
        api_url=api_url, moto_url=moto.url, table_name=stack.table_name,
        stream_arn=stack.stream_arn, webhook_url=os.environ["WEBHOOK_URL"],
        inbox_url=inbox_url, inbox_token=inbox_token, api_key=api_key, _stoppers=stoppers,
    )


def _dev_key() -> str:
    """The local stack's admin API key: LOCAL_API_KEY when set (scripts can rely on it),
    otherwise a new random one, printed at start."""
    import secrets

    from chalicelib import auth

    token = os.environ.get("LOCAL_API_KEY") or auth.KEY_PREFIX + secrets.token_urlsafe(32)
    auth.ensure_key(token, ["admin"], name="local stack dev key")
    return token


def _local_inbox(api_url: str) -> tuple[str, str]:
    """The inbox `local`: our webhooks' receiver, verifying them with WEBHOOK_SECRET."""
    from chalicelib import inbox

    token = os.environ.get("LOCAL_INBOX_TOKEN") or None
    _, token = inbox.create_inbox(inbox.InboxCreate(
        inbox_id="local", name="Webhooks of this local stack",
        signing_secret=os.environ["WEBHOOK_SECRET"]), read_token=token)
    return f"{api_url}/v1/inboxes/local/requests", token


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    stack = start(port=port, moto_port=int(os.environ.get("MOTO_PORT", "5055")))
    base = stack.api_url
    watch = (f"\n  webhooks    curl -s -H \"Authorization: Bearer $KEY\" "
             f"-H 'X-Inbox-Token: {stack.inbox_token}' {stack.inbox_url}"
             if stack.inbox_url else "")
    print(f"""
Session service running locally (data lives until you stop it).
  API         {base}/v1            (also without /api)
  API key     {stack.api_key}   (admin; set LOCAL_API_KEY to choose it)
  dashboard   {base}/dashboard
  docs        {base}/docs
  moto        {stack.moto_url}   (AWS_ENDPOINT_URL for the aws CLI / boto3)
  table       {stack.table_name}
  deliveries  webhooks POSTed to {stack.webhook_url}{watch}

Try:
  export KEY={stack.api_key}
  curl -s -X POST {base}/v1/manuals -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
    -d '{{"manual_id":"m1","title":"Demo","steps":[{{"step_number":1,"title":"One","content":"..."}},{{"step_number":2,"title":"Two","content":"..."}}]}}'
  curl -s -X POST {base}/v1/sessions -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
    -d '{{"session_id":"s1","user_id":"u1","manual_id":"m1"}}'
  curl -s -X POST {base}/v1/sessions/s1/progress -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
    -d '{{"user_id":"u1","current_step":1,"step_status":"DONE"}}'

Ctrl-C stops everything.""", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    print("\nStopping...", file=sys.stderr)
    # Stop the servers and the runner, but never hang on a busy one: the data is in memory
    # and goes with the process anyway.
    stopper = threading.Thread(target=stack.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=10)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
