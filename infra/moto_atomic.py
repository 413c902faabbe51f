"""moto, made atomic per request.

moto's backends are plain Python objects without locks: two threads running a
TransactWriteItems at once can interleave its check and its write, which real DynamoDB never
does. Our concurrency guarantees rest on DynamoDB's per-request atomicity, so locally we give
moto the same: one request at a time, both in-process (`mock_aws`) and for the server.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.RLock()
_patched = False


def serialize_in_process_moto() -> None:
    """Make every request handled by `mock_aws` atomic with respect to the others."""
    global _patched
    if _patched:
        return
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request

    def process_request(self: Any, request: Any) -> Any:
        with _lock:
            return original(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    _patched = True


class AtomicMotoServer:
    """A moto server on loopback that handles one AWS request at a time."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
        )
        from werkzeug.serving import make_server

        dispatcher = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            with _lock:
                return list(dispatcher(environ, start_response))

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="moto-server")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AtomicMotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
