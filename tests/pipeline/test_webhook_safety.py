"""Webhook delivery against hostile or broken targets: the SSRF guard (schemes, inside
addresses, redirects) and transport failures (connection resets, TLS errors), each counted
as a failed attempt and retried, never an exception."""

from __future__ import annotations

import datetime
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from chalicelib.domain.delivery_policy import classify
from chalicelib.pipeline import webhooks
from tests.conftest import drain
from tests.receiver import Receiver, always


def post(url: str, allow_private: bool = False) -> webhooks.Attempt:
    return webhooks.post(url, '{"x":1}', {}, timeout=2, allow_private=allow_private)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/",
                                 "javascript:alert(1)", "127.0.0.1:8000/hooks"])
def test_only_http_and_https_are_sent(url: str, caplog) -> None:
    with caplog.at_level(logging.ERROR):
        attempt = post(url, allow_private=True)
    assert attempt.status_code is None and attempt.error.startswith("TargetRefused: scheme")
    assert "webhook target refused" in caplog.text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.10", "172.16.5.5",
                                  "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "100.64.0.1"])
def test_inside_addresses_are_refused_outside_the_local_stack(host: str, caplog) -> None:
    receiver = Receiver()
    try:
        port = receiver.url.rsplit(":", 1)[1].split("/")[0]
        with caplog.at_level(logging.ERROR):
            attempt = post(f"http://{host}:{port}/hook")
    finally:
        receiver.stop()
    assert attempt.status_code is None and attempt.error.startswith("TargetRefused"), attempt
    assert receiver.requests == []
    assert "webhook target refused" in caplog.text


def test_metadata_address_is_refused_even_where_private_targets_are_allowed() -> None:
    attempt = post("http://169.254.169.254/latest/meta-data/", allow_private=True)
    assert attempt.error.startswith("TargetRefused") and "metadata" in attempt.error


def test_loopback_is_allowed_in_the_local_stack() -> None:
    receiver = Receiver()
    try:
        assert post(receiver.url, allow_private=True).status_code == 200
    finally:
        receiver.stop()
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed() -> None:
    inside, outside = Receiver(), Receiver()
    outside.behaviour = lambda n, body: (307, {"Location": inside.url})
    try:
        attempt = post(outside.url, allow_private=True)
    finally:
        inside.stop()
        outside.stop()
    assert attempt.status_code == 307 and classify(attempt.status_code) == "failed"
    assert inside.requests == []


# ---- transport failures --------------------------------------------------------------------


@contextmanager
def tcp_server(scheme: str, handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server calling `handle` on each accepted connection; yields its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.fixture
def resetting_server() -> Iterator[str]:
    """Accepts, reads a little, then resets the connection (RST, not a clean close)."""
    def reset(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    with tcp_server("http", reset) as url:
        yield url


@pytest.fixture
def tls_server(tmp_path) -> Iterator[str]:
    """HTTPS with a self-signed certificate: the client's verification must fail."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    def handshake(conn: socket.socket) -> None:
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    with tcp_server("https", handshake) as url:
        yield url


def test_a_connection_reset_is_a_failed_attempt(resetting_server: str) -> None:
    attempt = post(resetting_server, allow_private=True)
    assert attempt.status_code is None and classify(attempt.status_code) == "failed"
    assert "reset" in attempt.error.lower() or "RemoteDisconnected" in attempt.error, attempt.error


def test_a_bad_certificate_is_a_failed_attempt(tls_server: str) -> None:
    attempt = post(tls_server, allow_private=True)
    assert attempt.status_code is None and "CERTIFICATE_VERIFY_FAILED" in attempt.error, attempt.error


@pytest.mark.parametrize("broken", ["resetting_server", "tls_server"])
def test_the_pipeline_retries_past_resets_and_tls_errors(broken, request, api, runner, receiver,
                                                         monkeypatch) -> None:
    from chalicelib.config import get_settings

    monkeypatch.setenv("WEBHOOK_URL", request.getfixturevalue(broken))
    get_settings.cache_clear()
    api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [{"step_number": 1, "title": "a"}]})
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"})

    def first_event() -> dict:
        return api.get("/v1/sessions/s-1/events").json["items"][0]

    drain(runner, lambda: len(first_event().get("delivery_attempts") or []) >= 2)
    assert {a["outcome"] for a in first_event()["delivery_attempts"]} == {"retrying"}
    # the receiver is fixed: the next retry delivers it
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)
    get_settings.cache_clear()
    receiver.behaviour = always(200)
    drain(runner, lambda: first_event()["delivery_status"] == "delivered")
    assert first_event()["delivery_attempts"][0]["status_code"] is None
