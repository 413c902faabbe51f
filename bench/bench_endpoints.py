"""Webhook endpoints (issue #18): what fan-out costs per endpoint, and whether a dead endpoint
slows the others. In-process on moto with the local event-source runner and one real
receiver per endpoint on 127.0.0.1.

For 1, 5 and 20 endpoints (every one taking every event): the progress route's DynamoDB round
trips (must not change), SQS SendMessageBatch calls of the feedback function, the delivery
function's DynamoDB calls per message, and the wall time from the last request until every
receiver has every webhook. Then 5 endpoints, one of them answering 500 (retries 30 s
apart): the time until the 4 healthy ones have everything.

    python bench/bench_endpoints.py [sessions, default 5] [steps, default 2]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any

from common import AUTH, machine, stack

os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"  # the attempts' log lines would dominate the time
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"


def run(endpoints: int, sessions: int, steps: int, failing: int = 0) -> dict[str, Any]:
    os.environ.pop("WEBHOOK_URL", None)
    os.environ["WEBHOOK_RETRY_SCHEDULE"] = "30,30"
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    os.environ["WEBHOOK_EVENT_TYPES"] = "session_created,progress_update,session_ended"
    with stack() as deployed:
        from chalice.test import Client

        import app as app_module
        from chalicelib.config import get_settings
        from chalicelib.db import table as store
        from chalicelib.pipeline import queue
        from local.runner import Runner
        from tests.receiver import Receiver, always

        get_settings.cache_clear()
        receivers = [Receiver(behaviour=always(500) if n < failing else always(200)) for n in range(endpoints)]
        client = Client(app_module.app)

        def call(method: str, path: str, body: Any = None) -> Any:
            response = client.http.request(method, path, headers={"Content-Type": "application/json", **AUTH},
                                           body=json.dumps(body) if body is not None else b"")
            return response.status_code, json.loads(response.body) if response.body else None

        for receiver in receivers:
            assert call("POST", "/v1/webhook-endpoints", {"url": receiver.url})[0] == 201
        call("POST", "/v1/manuals", {"manual_id": "m", "title": "t", "steps": [
            {"step_number": n, "title": f"s{n}"} for n in range(1, steps + 1)]})
        dynamodb: Counter = Counter()
        sqs: Counter = Counter()
        store.get_client().meta.events.register("before-call.dynamodb",
                                                lambda event_name, **_: dynamodb.update([event_name.rsplit(".", 1)[-1]]))
        queue.get_client().meta.events.register("before-call.sqs",
                                                lambda event_name, **_: sqs.update([event_name.rsplit(".", 1)[-1]]))
        progress_calls: Counter = Counter()
        for s in range(sessions):
            call("POST", "/v1/sessions", {"session_id": f"s{s}", "user_id": "u", "manual_id": "m"})
        for step in range(1, steps + 1):
            for s in range(sessions):
                before = Counter(dynamodb)
                status, _ = call("POST", f"/v1/sessions/s{s}/progress",
                                 {"user_id": "u", "current_step": step, "step_status": "DONE"})
                assert status == 200
                progress_calls[sum((dynamodb - before).values())] += 1
        events_per_endpoint = sessions * (steps + 2)
        runner = Runner(app_module, deployed.stream_arn, deployed.delivery_queue_url)
        dynamodb.clear()
        sqs.clear()
        healthy = receivers[failing:]
        started = time.perf_counter()
        while not all(len(r.delivered()) >= events_per_endpoint for r in healthy):
            if time.perf_counter() - started > 900:
                raise RuntimeError("did not settle")
            if not runner.pump():
                time.sleep(0.01)
        elapsed = time.perf_counter() - started
        messages = events_per_endpoint * endpoints
        for receiver in receivers:
            receiver.stop()
        return {"endpoints": endpoints, "failing": failing, "messages": messages,
                "progress_round_trips": dict(progress_calls), "send_batches": sqs["SendMessageBatch"],
                "dynamodb_per_message": round(sum(dynamodb.values()) / messages, 2),
                "dynamodb": dict(dynamodb), "seconds": round(elapsed, 2),
                "failing_requests": sum(len(r.requests) for r in receivers[:failing])}


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(f"Machine: {machine()}; {sessions} sessions x {steps + 2} events")
    print("| endpoints | failing | messages | progress round trips | SendMessageBatch | DynamoDB calls per message"
          " (stream + delivery) | seconds until every healthy receiver has everything |")
    print("|---|---|---|---|---|---|---|")
    for endpoints, failing in ((1, 0), (5, 0), (20, 0), (5, 1)):
        r = run(endpoints, sessions, steps, failing)
        trips = ", ".join(f"{n} x{c}" for n, c in sorted(r["progress_round_trips"].items()))
        print(f"| {r['endpoints']} | {r['failing']} | {r['messages']} | {trips} | {r['send_batches']} | "
              f"{r['dynamodb_per_message']} ({r['dynamodb']}) | {r['seconds']} |", flush=True)


if __name__ == "__main__":
    main()
