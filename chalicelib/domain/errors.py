"""Domain errors. Each has an HTTP status and a stable machine code; chalicelib/api/http.py maps them to
`{"error": code, "message": ..., **details}` responses in one place."""

from __future__ import annotations

from typing import Any

# The challenge of every 401 for a missing or unusable API key (RFC 6750 section 3)
BEARER_CHALLENGE = 'Bearer realm="session-service"'


class ServiceError(Exception):
    """Base of every error the API reports to its caller."""

    status = 400
    code = "bad_request"
    # True: a well-formed request refused for what is stored (a completed session, a step past
    # the manual's end, a key already used): the OpenAPI document lists such codes per status
    # (`x-state-codes`), as no schema can tell them in advance
    state = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class BadRequest(ServiceError):
    """The HTTP request itself is malformed (request line, framing, Content-Length)."""

    status, code = 400, "bad_request"


class ValidationFailed(ServiceError):
    status, code = 400, "validation_error"


class InvalidJson(ServiceError):
    status, code = 400, "invalid_json"


class InvalidCursor(ServiceError):
    status, code = 400, "invalid_cursor"


class InvalidStep(ServiceError):
    status, code, state = 400, "invalid_step", True


class SessionEnded(ServiceError):
    status, code, state = 400, "session_ended", True


class UserMismatch(ServiceError):
    status, code = 403, "user_mismatch"


class ManualNotFound(ServiceError):
    status, code = 404, "manual_not_found"


class SessionNotFound(ServiceError):
    status, code = 404, "session_not_found"


class RouteNotFound(ServiceError):
    status, code = 404, "route_not_found"


class ManualExists(ServiceError):
    status, code = 409, "manual_exists"


class ManualInUse(ServiceError):
    status, code = 409, "manual_in_use"


class SessionExists(ServiceError):
    status, code = 409, "session_exists"


class SessionDeleting(ServiceError):
    """The id is a session's that is being deleted: free again once the delete finishes (a
    DELETE that stopped midway is finished by sending it again)."""

    status, code = 409, "session_deleting"


class ConcurrentUpdate(ServiceError):
    """A conditional write was refused because the data changed meanwhile, and went on
    losing for the whole retry budget: the client should retry, after Retry-After."""

    status, code = 409, "concurrent_update"

    def __init__(self, message: str, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, **details)
        self.headers = {"Retry-After": str(retry_after)}


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class MessageTooLarge(ServiceError):
    status, code = 413, "message_too_large"


class UriTooLong(ServiceError):
    status, code = 414, "uri_too_long"


class HeadersTooLarge(ServiceError):
    status, code = 431, "headers_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class IdempotencyKeyReused(ServiceError):
    status, code, state = 422, "idempotency_key_reused", True


class ServiceUnavailable(ServiceError):
    """The store is throttling or failing transiently; the caller should retry later."""

    status, code = 503, "service_unavailable"

    def __init__(self, message: str, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, **details)
        self.headers = {"Retry-After": str(retry_after)}


class SecretsKeyUnavailable(ServiceUnavailable):
    """A webhook endpoint's signing secret could not be encrypted or decrypted: KMS refused
    (a disabled key, a missing permission) or failed, or no key is configured
    (ENDPOINT_SECRETS_KEY_ARN). The API answers 503; the delivery function records a failed
    attempt and retries."""


class RateLimited(ServiceError):
    """Too many requests for a limit (a key's, a route's, an inbox's or a source address's).
    API Gateway answers the same code itself (GatewayResponse THROTTLED) for the limits it
    enforces."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, **details)
        self.headers = {"Retry-After": str(retry_after)}


class QuotaExceeded(ServiceError):
    """A key's daily quota is used up (GatewayResponse QUOTA_EXCEEDED on AWS)."""

    status, code = 429, "quota_exceeded"

    def __init__(self, message: str, retry_after: int = 3600, **details: Any) -> None:
        super().__init__(message, **details)
        self.headers = {"Retry-After": str(retry_after)}


class EventNotFound(ServiceError):
    status, code = 404, "event_not_found"


class EndpointNotFound(ServiceError):
    status, code = 404, "endpoint_not_found"


class EndpointExists(ServiceError):
    """Only an id the operator chose can collide; a random one never does."""

    status, code = 409, "endpoint_exists"


class EndpointLimitReached(ServiceError):
    status, code = 409, "endpoint_limit_reached"


class EndpointDisabled(ServiceError):
    """A test or replay to a disabled endpoint (its messages would be dropped): enable it first."""

    status, code = 409, "endpoint_disabled"


class PingNotFound(ServiceError):
    """No test ping of that id at that endpoint (never sent, or its record expired after 7 days)."""

    status, code = 404, "ping_not_found"


class EndpointUrlRefused(ServiceError):
    """The URL cannot receive webhooks: not https (on AWS), does not resolve, or (on AWS) an
    address inside the network (the SSRF guard, applied at registration as at delivery). What
    a URL resolves to is not in any schema, hence a state code."""

    status, code = 400, "endpoint_url_refused"
    state = True


class KeyNotFound(ServiceError):
    status, code = 404, "key_not_found"


class KeyExists(ServiceError):
    """Only a token the operator chose can collide (ensure_key); a random one never does."""
    status, code = 409, "key_exists"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotAuthenticated(ServiceError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        # RFC 6750: a bearer-token resource says how to authenticate (so does API Gateway's 401)
        self.headers = {"WWW-Authenticate": BEARER_CHALLENGE}


class AssetNotFound(ServiceError):
    status, code = 404, "asset_not_found"


class InboxExists(ServiceError):
    status, code = 409, "inbox_exists"


class InboxNotFound(ServiceError):
    status, code = 404, "inbox_not_found"


class TokenRequired(ServiceError):
    status, code = 401, "token_required"


class CaptureTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class CaptureNotFound(ServiceError):
    status, code = 404, "request_not_found"


class NotAcceptable(ServiceError):
    """The request's Accept header takes no JSON (the MCP endpoint answers JSON only)."""

    status, code = 406, "not_acceptable"


class UnsupportedProtocolVersion(ServiceError):
    """An MCP-Protocol-Version header naming a revision the MCP endpoint does not speak."""

    status, code = 400, "unsupported_protocol_version"


class InboxPaused(ServiceError):
    """A capture sent to a paused inbox: stored nowhere (resume the inbox to capture again)."""

    status, code = 410, "inbox_paused"


class InternalError(ServiceError):
    """A bug: the error boundary answers it without internals and logs the traceback."""

    status, code = 500, "internal_error"


class MethodNotAllowed(ServiceError):
    """The route exists but not with this method (`allow` lists the methods it takes)."""

    status, code = 405, "method_not_allowed"

    def __init__(self, message: str, allow: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.headers = {"Allow": allow}


def codes() -> dict[str, int]:
    """Every error code the API answers, with its status: derived from the classes above (the
    OpenAPI document's enum of `error`, and README's error table, come from here)."""
    found: dict[str, int] = {}
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls.status)
        pending.extend(cls.__subclasses__())
    return dict(sorted(found.items()))
