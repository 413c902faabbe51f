"""A real HTTP receiver on 127.0.0.1 for webhook tests, with scriptable behaviour."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    verified: bool | None = None  # the signature, checked on arrival when the receiver has a secret
    method: str = "POST"
    path: str = "/webhook"

    @property
    def json(self) -> Any:
        return json.loads(self.body)


# A behaviour gets the request number (1-based) and the body and returns (status, headers).
# Two statuses are not HTTP: RESET drops the connection with a TCP reset and no answer;
# SLOW answers 200 only after `Receiver.slow_seconds` (longer than the sender's timeout).
Behaviour = Callable[[int, bytes], tuple[int, dict[str, str]]]
RESET, SLOW = -1, -2


def always(status: int = 200) -> Behaviour:
    return lambda n, body: (status, {})


def chaos(seed: int, ok: float = 0.5) -> Behaviour:
    """A receiver that fails at random: `ok` of requests succeed; the rest are, in equal
    parts, a 500, a reset, a timeout, and a 429 asking to wait a second (Retry-After)."""
    import random

    rng = random.Random(seed)
    lock = threading.Lock()

    def behave(n: int, body: bytes) -> tuple[int, dict[str, str]]:
        with lock:
            roll = rng.random()
        if roll < ok:
            return 200, {}
        kind = int((roll - ok) / (1 - ok) * 4)
        return [(500, {}), (RESET, {}), (SLOW, {}), (429, {"Retry-After": "1"})][min(kind, 3)]

    return behave


@dataclass
class Receiver:
    behaviour: Behaviour = field(default_factory=always)
    requests: list[Received] = field(default_factory=list)
    slow_seconds: float = 1.5
    secret: str | None = None  # verify each request's Standard Webhooks signature on arrival

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received = {k.lower(): v for k, v in self.headers.items()}
                verified = None
                if receiver.secret:
                    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

                    try:
                        Webhook(receiver.secret).verify(body, received)
                        verified = True
                    except WebhookVerificationError:
                        verified = False
                with lock:
                    n = len(receiver.requests) + 1
                    status, headers = receiver.behaviour(n, body)
                    receiver.requests.append(Received(received, body, time.monotonic(), status, verified,
                                                      self.command, self.path))
                if status == RESET:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if status == SLOW:
                    time.sleep(receiver.slow_seconds)
                    status = 200
                payload = b'{"ok": true}'
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            # any method (inbox forwards keep the captured one); HEAD answers without a body
            do_PUT = do_PATCH = do_DELETE = do_GET = do_OPTIONS = do_POST

            def do_HEAD(self) -> None:
                self.do_POST()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a sender that gave up (timeout) leaves a broken pipe: expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhook"

    def delivered(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
