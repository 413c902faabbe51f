"""Configuration from the environment, read on first use (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    table_name: str
    idempotency_ttl_seconds: int
    max_update_attempts: int


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "session-service"),
        idempotency_ttl_seconds=int(os.environ.get("IDEMPOTENCY_TTL_SECONDS", "86400")),
        max_update_attempts=int(os.environ.get("MAX_UPDATE_ATTEMPTS", "10")),
    )
