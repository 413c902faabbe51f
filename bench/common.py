"""Shared set-up for benchmarks: fake AWS, moto with the stack from infra/, call counting."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
})
os.environ.pop("AWS_ENDPOINT_URL", None)
BENCH_KEY = "ssk_bench_admin_key_0001"
AUTH = {"Authorization": f"Bearer {BENCH_KEY}"}


@contextmanager
def stack(parameters: dict[str, str] | None = None) -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    from chalicelib import runtime
    from infra.deploy import deploy
    from local.moto_server import serialize_in_process_moto

    serialize_in_process_moto()
    with mock_aws():
        deployed = deploy(boto3.Session(), parameters=parameters)
        runtime.bootstrap(deployed.environment())
        from chalicelib.api import auth
        from chalicelib.services import keys
        from local import gateway

        gateway.install()
        keys.ensure_key(BENCH_KEY, ["admin"], name="bench")
        auth.authenticate(AUTH["Authorization"])  # a known key: cached, as in the common case
        yield deployed


class ReadMeter:
    """Counts DynamoDB round trips and items read (what read capacity is billed on)."""

    def __init__(self) -> None:
        from chalicelib.db import table as store

        self.calls: Counter = Counter()
        self.items_read = 0
        client = store.get_client()
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, event_name: str, **_: Any) -> None:
        self.calls[event_name.rsplit(".", 1)[-1]] += 1

    def _after(self, event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        if operation in ("Query", "Scan"):
            self.items_read += parsed.get("ScannedCount", 0)
        elif operation == "GetItem":
            self.items_read += 1 if parsed.get("Item") else 0
        elif operation == "BatchGetItem":
            self.items_read += sum(len(v) for v in parsed.get("Responses", {}).values())

    def reset(self) -> None:
        self.calls.clear()
        self.items_read = 0


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{datetime.now(UTC):%Y-%m-%d}, commit {commit}")
