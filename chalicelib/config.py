"""Configuration from the environment, read on first use (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import NamedTuple

from chalicelib.domain.delivery_policy import max_attempts

# Standard Webhooks / Svix spirit: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_EVENT_TYPES = ("session_created", "progress_update:DONE", "session_ended")


class Settings(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    table_name: str
    idempotency_ttl_seconds: int
    max_update_attempts: int  # 0: no cap, update_retry_seconds decides
    update_retry_seconds: float
    webhook_url: str
    webhook_secret: str
    webhook_timeout_seconds: float
    webhook_allow_private_targets: bool  # only the local stack and tests: off on AWS
    retry_schedule: tuple[int, ...]
    event_types: tuple[str, ...]
    delivery_queue_url: str
    dead_letter_queue_url: str
    idle_timeout_seconds: int
    retention_days: int
    usage_plan_name: str  # API Gateway's default usage plan (set on AWS; empty: no API Gateway keys)
    endpoint_disable_after_days: float = 5.0  # a webhook endpoint failing every attempt this long is disabled
    endpoint_secrets_key_arn: str = ""  # the KMS key webhook endpoint secrets are encrypted with

    @property
    def max_attempts(self) -> int:
        """Deliveries tried in all: the first plus one per retry delay."""
        return max_attempts(self.retry_schedule)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_schedule(value: str) -> tuple[int, ...]:
    """`5,300,1800` -> (5, 300, 1800): seconds before each retry (non-negative integers)."""
    schedule = tuple(int(s) for s in _csv(value))
    if any(delay < 0 for delay in schedule):
        raise ValueError(f"WEBHOOK_RETRY_SCHEDULE has a negative delay: {value!r}")
    return schedule


def retry_schedule_from_env() -> tuple[int, ...]:
    """The one setting that drives the retry schedule, read where the stack is built (make
    run, the tests, make package) and by the functions."""
    value = os.environ.get("WEBHOOK_RETRY_SCHEDULE")
    return parse_schedule(value) if value else DEFAULT_RETRY_SCHEDULE


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ.get
    return Settings(
        table_name=env("TABLE_NAME", "session-service"),
        idempotency_ttl_seconds=int(env("IDEMPOTENCY_TTL_SECONDS", "86400")),
        max_update_attempts=int(env("MAX_UPDATE_ATTEMPTS", "0")),
        update_retry_seconds=float(env("UPDATE_RETRY_SECONDS", "20")),
        webhook_url=env("WEBHOOK_URL", ""),
        webhook_secret=env("WEBHOOK_SECRET", ""),
        webhook_timeout_seconds=float(env("WEBHOOK_TIMEOUT_SECONDS", "10")),
        webhook_allow_private_targets=env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "") == "1",
        retry_schedule=retry_schedule_from_env(),
        event_types=_csv(env("WEBHOOK_EVENT_TYPES", "")) or DEFAULT_EVENT_TYPES,
        delivery_queue_url=env("DELIVERY_QUEUE_URL", ""),
        dead_letter_queue_url=env("DEAD_LETTER_QUEUE_URL", ""),
        idle_timeout_seconds=int(env("SESSION_IDLE_TIMEOUT_SECONDS", "1800")),
        retention_days=int(env("RETENTION_DAYS", "0")),
        usage_plan_name=env("USAGE_PLAN_NAME", ""),
        endpoint_disable_after_days=float(env("ENDPOINT_DISABLE_AFTER_DAYS", "5")),
        endpoint_secrets_key_arn=env("ENDPOINT_SECRETS_KEY_ARN", ""),
    )
