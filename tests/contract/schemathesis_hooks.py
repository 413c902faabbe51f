"""Schemathesis hooks (SCHEMATHESIS_HOOKS) for tests/contract: the rules the document states
in words, which JSON Schema cannot say, applied to the requests it generates as valid.

- a cursor is one that a listing answered (opaque): a generated one is dropped;
- a manual's steps are numbered 1..N and `total_steps`, when given, is N (`x-rules`);
- a progress report's Idempotency-Key header and body idempotency_key agree;
- a replay's `until`, when given, is after `since` and at most 31 days later (`x-rules`);
- an inbox's forward_to holds http(s) URLs of public hosts (`x-rules`).
(And the run never revokes its own API key.)

Only cases generated as valid (positive) are touched: invalid ones stay as generated, so the
server's refusal of each is still checked."""

from __future__ import annotations

from typing import Any

import schemathesis


def _own_key_id() -> str | None:
    """The id of the key the run authenticates with (SCHEMATHESIS_KEY)."""
    import os

    from chalicelib.services.keys import _digest

    token = os.environ.get("SCHEMATHESIS_KEY")
    return _digest(token)[:16] if token else None


@schemathesis.hook
def before_call(ctx: Any, case: Any, *args: Any) -> None:
    # revokeKey may learn the run's own key id (listKeys -> revokeKey): revoking it would
    # answer 401 to everything after, so that one id is swapped for an unknown one
    if case.method == "DELETE" and isinstance(case.path_parameters, dict) and (
            case.path_parameters.get("key_id") == _own_key_id()):
        case.path_parameters["key_id"] = "0" * 16
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return
    if case.query is not None and "cursor" in case.query:
        case.query.pop("cursor", None)
    body = case.body
    if case.method == "POST" and case.path == "/v1/manuals" and isinstance(body, dict):
        steps = body.get("steps")
        if isinstance(steps, list) and all(isinstance(s, dict) for s in steps):
            for number, step in enumerate(steps, 1):
                step["step_number"] = number
            if "total_steps" in body:
                body["total_steps"] = len(steps)
    if case.path.startswith("/v1/inboxes") and case.method in ("POST", "PATCH") and isinstance(body, dict) \
            and isinstance(body.get("forward_to"), list):
        body["forward_to"] = [f"https://example.com/hook-{n}" for n in range(len(body["forward_to"]))]
    if case.path.endswith("/replay") and isinstance(body, dict):
        body.pop("cursor", None)  # only a replay's answer makes one
        from datetime import timedelta

        from chalicelib.domain.clock import from_iso, to_iso
        from chalicelib.domain.vocabulary import _utc_moment

        try:  # a window of one hour from the generated since (absent until: now, maybe years)
            body["until"] = to_iso(from_iso(str(_utc_moment(body["since"]))) + timedelta(hours=1))
        except (KeyError, TypeError, ValueError, OverflowError):
            pass  # a since the server refuses: left as generated
    # the Idempotency-Key header and the body's idempotency_key must agree (one or the other)
    if case.path.endswith("/progress") and isinstance(body, dict) and case.headers is not None:
        key = case.headers.get("Idempotency-Key")
        if key is not None and body.get("idempotency_key") is not None:
            body["idempotency_key"] = key


# The text formats of the document's text components (IdentifierText, DisplayText, LongText):
# values drawn from the Unicode categories their patterns admit (quick to draw, where the
# patterns, thousands of ranges long, are slow); the pattern still decides what is valid.
def _text(exclude: list[str], keep: str = "") -> Any:
    from hypothesis import strategies as st

    return st.text(st.characters(exclude_categories=exclude, include_characters=keep or None))


_CONTROL = ["Cc", "Cs"]
schemathesis.openapi.format("identifier-text", _text(["Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"]))
schemathesis.openapi.format("display-text", _text(["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"]))
schemathesis.openapi.format("long-text", _text(_CONTROL, "\t\n\r"))


# positive_data_acceptance, but for the codes the document marks as refusals for what is
# stored (`x-state-codes` of a response: a completed session, a step past the manual's end, an
# idempotency key already used with another request): a schema-valid request meets them when
# the generated data lands on such a state, which no schema can tell in advance. Every other
# refusal of valid data still fails. Run with --exclude-checks positive_data_acceptance.
@schemathesis.check
def positive_data_acceptance_but_stored_state(ctx: Any, response: Any, case: Any) -> bool | None:
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    try:
        return positive_data_acceptance(ctx, response, case)
    except AssertionError:
        documented = case.operation.definition.raw.get("responses", {}).get(str(response.status_code), {})
        try:
            code = response.json().get("error")
        except Exception:  # noqa: BLE001 - not JSON: not one of ours
            code = None
        if code is not None and code in documented.get("x-state-codes", []):
            return None
        raise


# use_after_free, but not for the capture URL (/v1/hooks/{inbox_id}): it takes every method
# and stores each request as a capture, a DELETE included, so a GET after a DELETE answers the
# inbox's configured response as before; nothing was deleted (the document says so). Every
# other operation is still checked. Run with --exclude-checks use_after_free.
@schemathesis.check
def use_after_free_but_not_the_capture_url(ctx: Any, response: Any, case: Any) -> bool | None:
    from schemathesis.specs.openapi.checks import use_after_free

    if case.path.startswith("/v1/hooks/"):
        return None
    return use_after_free(ctx, response, case)
