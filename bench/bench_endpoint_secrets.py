"""Webhook endpoints' secrets encrypted with KMS (issue #18): how many KMS calls, and what
they cost. In-process on moto (the stack's key created by its CloudFormation) with the local
event-source runner and one real receiver per endpoint on 127.0.0.1.

For 1, 5 and 20 endpoints (each taking every event): KMS Encrypt calls of the API (one per
created secret), Decrypt calls of the delivery function while it signs every webhook, then
after a rotation of every secret (grace: both secrets sign), then once the 5-minute cache has
expired (the cache's clock moved on). The goal: at most one Decrypt per secret per process
per cache lifetime. Also: the cost of a cache hit, and whether importing the module loads
boto3 (it must not: cold start).

    python bench/bench_endpoint_secrets.py [sessions, default 4] [steps, default 2]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from common import AUTH, ROOT, machine, stack

os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
KMS_PER_10K = 0.03  # USD, symmetric Encrypt/Decrypt (us-east-1)
KEY_PER_MONTH = 1.0  # USD, one customer-managed key (rotation: +1 for each of its first two)


def run(endpoints: int, sessions: int, steps: int) -> dict[str, Any]:
    os.environ.pop("WEBHOOK_URL", None)
    os.environ["WEBHOOK_RETRY_SCHEDULE"] = "0,0"
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    os.environ["WEBHOOK_EVENT_TYPES"] = "session_created,progress_update,session_ended"
    with stack() as deployed:
        from chalice.test import Client

        import app as app_module
        from chalicelib import sealing
        from chalicelib.config import get_settings
        from local.runner import Runner
        from tests.receiver import Receiver

        get_settings.cache_clear()
        kms: Counter = Counter()
        sealing.get_client().meta.events.register(
            "before-call.kms", lambda event_name, **_: kms.update([event_name.rsplit(".", 1)[-1]]))
        client = Client(app_module.app)

        def call(method: str, path: str, body: Any = None) -> Any:
            response = client.http.request(method, path, headers={"Content-Type": "application/json", **AUTH},
                                           body=json.dumps(body) if body is not None else b"")
            return response.status_code, json.loads(response.body) if response.body else None

        receivers = []
        for _ in range(endpoints):
            receiver = Receiver()
            status, created = call("POST", "/v1/webhook-endpoints", {"url": receiver.url})
            assert status == 201
            receiver.secret = created["secret"]
            receivers.append((receiver, created["endpoint_id"]))
        call("POST", "/v1/manuals", {"manual_id": "m", "title": "t", "steps": [
            {"step_number": n, "title": f"s{n}"} for n in range(1, steps + 1)]})
        runner = Runner(app_module, deployed.stream_arn, deployed.delivery_queue_url)
        rounds = iter(range(1000))

        def traffic() -> int:
            """`sessions` sessions to their end; returns the webhooks delivered."""
            r = next(rounds)
            for s in range(sessions):
                call("POST", "/v1/sessions", {"session_id": f"s{r}-{s}", "user_id": "u", "manual_id": "m"})
                for step in range(1, steps + 1):
                    assert call("POST", f"/v1/sessions/s{r}-{s}/progress",
                                {"user_id": "u", "current_step": step, "step_status": "DONE"})[0] == 200
            wanted = (r + 1) * sessions * (steps + 2)
            started = time.monotonic()
            while not all(len(rc.delivered()) >= wanted for rc, _ in receivers):
                if time.monotonic() - started > 600:
                    raise RuntimeError("did not settle")
                if not runner.pump():
                    time.sleep(0.01)
            return sessions * (steps + 2) * endpoints

        created_encrypts = kms["Encrypt"]
        row: dict[str, Any] = {"endpoints": endpoints, "encrypt_create": created_encrypts}
        kms.clear()
        row["webhooks_1"] = traffic()
        row["decrypt_1"] = kms["Decrypt"]
        for _, endpoint_id in receivers:
            assert call("POST", f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
                        {"grace_seconds": 3600})[0] == 200
        row["encrypt_rotate"] = kms["Encrypt"]
        kms.clear()
        row["webhooks_2"] = traffic()
        row["decrypt_2"] = kms["Decrypt"]
        kms.clear()
        sealing._clock = lambda: time.monotonic() + sealing.CACHE_SECONDS + 1  # 5 minutes later
        row["webhooks_3"] = traffic()
        row["decrypt_3"] = kms["Decrypt"]
        sealing._clock = time.monotonic
        row["verified"] = all(r.verified for rc, _ in receivers for r in rc.requests)
        # a cache hit: what signing costs on top of the HMAC once the secret is open
        from chalicelib.db import endpoints as records

        endpoint = records.get(receivers[0][1])
        assert endpoint is not None
        n = 20_000
        started = time.perf_counter()
        for _ in range(n):
            sealing.signing_secrets(endpoint, time.time())
        row["hit_us"] = round((time.perf_counter() - started) / n * 1e6, 2)
        for rc, _ in receivers:
            rc.stop()
        return row


def boto3_at_import() -> bool:
    code = "import sys; import chalicelib.sealing, chalicelib.pipeline.delivery; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(f"Machine: {machine()}; per round {sessions} sessions x {steps + 2} events to every endpoint")
    print(f"boto3 imported by importing sealing + delivery: {boto3_at_import()}")
    print("| endpoints | Encrypt (create) | webhooks, Decrypt | Encrypt (rotate all) | webhooks, Decrypt (grace:"
          " 2 secrets) | webhooks, Decrypt (cache expired) | all verified | cache hit (us per request) |")
    print("|---|---|---|---|---|---|---|---|")
    for endpoints in (1, 5, 20):
        r = run(endpoints, sessions, steps)
        print(f"| {r['endpoints']} | {r['encrypt_create']} | {r['webhooks_1']}, {r['decrypt_1']} | "
              f"{r['encrypt_rotate']} | {r['webhooks_2']}, {r['decrypt_2']} | {r['webhooks_3']}, {r['decrypt_3']} | "
              f"{r['verified']} | {r['hit_us']} |", flush=True)
    for endpoints, instances in ((20, 1), (20, 5), (20, 20)):
        worst = endpoints * 2 * instances * 12 * 24 * 30  # two secrets each, every 5 minutes, all month
        print(f"worst case, {endpoints} endpoints in a grace (2 secrets), {instances} delivery instance(s) busy all "
              f"month: {worst:,} Decrypts = ${worst / 10_000 * KMS_PER_10K:.2f} + key ${KEY_PER_MONTH:.2f}")


if __name__ == "__main__":
    main()
