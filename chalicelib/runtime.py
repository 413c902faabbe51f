"""The process's state, in one place: what a Lambda instance keeps between invocations.

Clients are built lazily on first use (cold starts stay short, and moto can intercept them);
settings are read from the environment once; caches remember immutable things (manual steps,
a session's manual binding) and API-key lookups for a short while. `reset()` forgets all of
it: tests, benchmarks and the local stack call it after they change the environment (a fresh
moto, another table), instead of each knowing the modules' globals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def reset() -> None:
    """Forget cached clients, settings and per-process caches."""
    from chalicelib import config, sealing
    from chalicelib.db import table
    from chalicelib.inbox import captures
    from chalicelib.pipeline import queue, targets, webhooks
    from chalicelib.services import keys, manuals, sessions, usage_plans

    config.get_settings.cache_clear()
    table.reset_client()
    queue.reset_client()
    webhooks.reset_transports()
    manuals.forget_steps()
    sessions.forget_bindings()
    keys.forget_cached_keys()
    usage_plans.reset_client()
    captures.forget_inboxes()
    targets.forget()
    sealing.reset()
    delivery = sys.modules.get("chalicelib.pipeline.delivery")  # not imported for this alone
    if delivery is not None:
        delivery.forget_ring_positions()


def bootstrap(environment: Mapping[str, str] | None = None) -> None:
    """Set the service's environment (table, queues, webhook target...) and start from a clean
    process state, as a new Lambda instance would."""
    if environment:
        os.environ.update(environment)
    reset()
