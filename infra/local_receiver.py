"""A small webhook receiver for `make run`: the stand-in for the external instruction-delivery
service, so a newcomer sees the pipeline's webhooks arrive with no other set-up.

POST anything: stored (with whether its Standard Webhooks signature verified) and answered 200.
GET /webhooks: what arrived, newest last. DELETE /webhooks: forget them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalReceiver:
    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(receiver._capture(self.path, dict(self.headers), body))
                self._reply(200, {"ok": True})

            def do_GET(self) -> None:  # noqa: N802
                self._reply(200, {"items": receiver.received, "count": len(receiver.received)})

            def do_DELETE(self) -> None:  # noqa: N802
                receiver.received.clear()
                self._reply(204, None)

            def _reply(self, status: int, body: Any) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._secret = secret
        self._server = ThreadingHTTPServer((host, port), Handler)

    def _capture(self, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        from standardwebhooks.webhooks import Webhook

        try:
            Webhook(self._secret).verify(body, headers)
            verified, why = True, None
        except Exception as exc:  # noqa: BLE001 - the verdict is what we report
            verified, why = False, str(exc)
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode(errors="replace")
        lowered = {k.lower(): v for k, v in headers.items()}
        print(f"  webhook {lowered.get('webhook-id', '?')} "
              f"{payload.get('event_type') if isinstance(payload, dict) else ''} "
              f"session={payload.get('session_id') if isinstance(payload, dict) else ''} "
              f"verified={verified}", flush=True)
        return {"path": path, "webhook_id": lowered.get("webhook-id"), "verified": verified,
                "verification_error": why, "payload": payload}

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="receiver").start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
