"""Signing secrets, encrypted at rest with the stack's KMS key: webhook endpoints' (which sign
our webhooks) and inboxes' (which check the signatures of what an inbox captures).

A signature (Standard Webhooks: an HMAC) needs the secret itself, so it cannot be hashed:
the table stores it encrypted instead, as

    {"scheme": "kms-v1", "ciphertext": "<base64 of KMS Encrypt's CiphertextBlob>"}

under the endpoint's `secret` (and, during a rotation's grace, `previous_secret`). One KMS
`Encrypt` per secret (they are far below KMS's 4 KB, so no envelope/data key is needed),
under the key ENDPOINT_SECRETS_KEY_ARN names, with the encryption context
{"purpose": PURPOSE, "endpoint_id": <id>}: the ciphertext opens only for that endpoint (a
ciphertext copied onto another endpoint's item does not decrypt), and the functions' IAM
policies and the key policy allow the key's use only with that purpose.

Who may do what (.chalice/policy-*.json, the key policy in infra/resources.json):
  - the API function encrypts (create, rotate, the default endpoint from WEBHOOK_SECRET) and
    never decrypts: a rotation moves the old ciphertext to `previous_secret` unopened;
  - the delivery function decrypts (it signs every request), and may encrypt only the
    default endpoint's secret (the WEBHOOK_SECRET of its own environment: it stores the
    default endpoint when it is the first to run, see targets.ensure_default).

The delivery side opens each ciphertext once per process and keeps the plaintext in memory
for CACHE_SECONDS (5 minutes), keyed by the ciphertext and the context it opened under (a
copy on another item is not a hit: KMS decides): a rotation writes a new
ciphertext (a miss: decrypted at once, never a stale secret), the secret it replaces keeps
its ciphertext (still a hit), and a key disabled in KMS stops signing within the lifetime.

An inbox's signing secret is stored the same way under its `signing_secret`, with the
context {"purpose": INBOX.name, "inbox_id": <id>}: the API function encrypts it (create) and
decrypts it (the capture route checks signatures), only with that purpose, its role tagged
for it in the key policy as the delivery role is for endpoint secrets.

A plain string is a secret stored by a version before this one (or the default endpoint's,
read from the environment in memory): it is used as it is, and
`python -m cli endpoints encrypt-secrets` re-encrypts what is stored.

No key configured (ENDPOINT_SECRETS_KEY_ARN empty): nothing is stored in the clear; storing
a secret fails (503 service_unavailable). The packaged template always sets the key; the
local stack and the tests create one in moto.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.config import get_settings
from chalicelib.domain import endpoints as rules
from chalicelib.domain.errors import SecretsKeyUnavailable
from chalicelib.observability import logger

SCHEME = "kms-v1"
PURPOSE = "webhook-endpoint-secret"
CACHE_SECONDS = 300.0
CACHE_ENTRIES = 4 * rules.MAX_ENDPOINTS  # two secrets per endpoint, and room for churn (inboxes share it)


@dataclass(frozen=True)
class Purpose:
    """What a secret is for: the encryption context's `purpose` and the name of the id it
    is bound to (a ciphertext opens only for the item it was made for)."""

    name: str
    id_name: str
    label: str  # in log lines and errors


ENDPOINT = Purpose(PURPOSE, "endpoint_id", "webhook endpoint")
INBOX = Purpose("inbox-signing-secret", "inbox_id", "inbox")

_client: Any = None
_clock = time.monotonic  # the cache's clock (a test moves it past CACHE_SECONDS)
_lock = threading.Lock()
# (purpose, owner id, ciphertext) -> (plaintext, monotonic expiry); insertion order = age
# (oldest dropped first)
_opened: dict[tuple[str, str, str], tuple[str, float]] = {}


def get_client() -> Any:
    global _client
    if _client is None:
        import boto3  # lazily: boto3 dominates cold-start time
        from botocore.config import Config

        _client = boto3.client("kms", config=Config(
            retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5))
    return _client


def reset() -> None:
    """Forget the client and every opened secret (tests, a new environment)."""
    global _client
    _client = None
    with _lock:
        _opened.clear()


def context(owner_id: str, purpose: Purpose = ENDPOINT) -> dict[str, str]:
    return {"purpose": purpose.name, purpose.id_name: owner_id}


def is_sealed(stored: Any) -> bool:
    return isinstance(stored, dict) and stored.get("scheme") == SCHEME


def _key(purpose: Purpose = ENDPOINT) -> str:
    key = get_settings().endpoint_secrets_key_arn
    if not key:
        logger.error(f"ENDPOINT_SECRETS_KEY_ARN is not set: {purpose.label} secrets cannot be stored")
        raise SecretsKeyUnavailable(f"{purpose.label.capitalize()} signing secrets cannot be stored: no "
                                    "encryption key is configured (ENDPOINT_SECRETS_KEY_ARN).")
    return key


def seal(owner_id: str, secret: str, purpose: Purpose = ENDPOINT) -> dict[str, str]:
    """The stored form of `secret` (one KMS Encrypt). 503 when KMS refuses or fails."""
    from botocore.exceptions import BotoCoreError, ClientError

    key = _key(purpose)
    try:
        answer = get_client().encrypt(KeyId=key, Plaintext=secret.encode(),
                                      EncryptionContext=context(owner_id, purpose))
    except (ClientError, BotoCoreError) as exc:
        logger.error(f"KMS Encrypt of a signing secret ({purpose.label}) failed",
                     extra={purpose.id_name: owner_id, "error": _reason(exc)})
        raise SecretsKeyUnavailable("The signing secret could not be encrypted (KMS); retry shortly.",
                                    retry_after=5) from exc
    return {"scheme": SCHEME, "ciphertext": base64.b64encode(answer["CiphertextBlob"]).decode()}


def reseal(owner_id: str, stored: Any, purpose: Purpose = ENDPOINT) -> Any:
    """`stored` in the stored form: a plain secret (an older version's) is encrypted; an
    encrypted one (or none) is kept as it is, unopened."""
    return seal(owner_id, stored, purpose) if isinstance(stored, str) and stored else stored


def open_secret(owner_id: str, stored: Any, purpose: Purpose = ENDPOINT) -> str:
    """The plaintext of a stored secret: from the cache, or one KMS Decrypt. Raises
    SecretsKeyUnavailable when KMS refuses (a disabled key, a missing grant) or fails."""
    if isinstance(stored, str):
        return stored
    if not is_sealed(stored):
        raise SecretsKeyUnavailable(f"The {purpose.label}'s secret is stored in an unknown form ({stored!r:.40}).")
    ciphertext: str = stored["ciphertext"]
    cached = (purpose.name, owner_id, ciphertext)
    now = _clock()
    with _lock:
        hit = _opened.get(cached)
    if hit is not None and hit[1] > now:
        return hit[0]
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = get_client().decrypt(CiphertextBlob=base64.b64decode(ciphertext), KeyId=_key(purpose),
                                      EncryptionContext=context(owner_id, purpose))
    except (ClientError, BotoCoreError, ValueError) as exc:
        logger.error(f"KMS Decrypt of a signing secret ({purpose.label}) failed",
                     extra={purpose.id_name: owner_id, "error": _reason(exc)})
        raise SecretsKeyUnavailable(f"the signing secret could not be decrypted ({_reason(exc)})") from exc
    plaintext: str = answer["Plaintext"].decode()
    with _lock:
        _opened.pop(cached, None)
        _opened[cached] = (plaintext, now + CACHE_SECONDS)
        while len(_opened) > CACHE_ENTRIES:
            del _opened[next(iter(_opened))]
    return plaintext


def signing_secrets(endpoint: dict[str, Any], now_epoch: float) -> list[str]:
    """The plaintext secrets that sign a request to `endpoint` now (the current one, and the
    previous one during its grace period)."""
    return [open_secret(endpoint["endpoint_id"], stored) for stored in rules.signing_secrets(endpoint, now_epoch)]


def _reason(exc: Exception) -> str:
    """KMS's error code (DisabledException, AccessDeniedException...) or the exception's kind."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(exc).__name__)[:100]
