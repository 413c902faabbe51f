"""Write (and read) units per inbox capture: without a key, with a webhook-id (first
arrival, duplicate, conflict), and the forwarding a capture costs per destination.

In-process: the API through chalice.test.Client on moto, the stream and the delivery queue
driven by the local runner, destinations on 127.0.0.1. Units are computed from the items'
sizes by DynamoDB's published rules (bench_cost.Meter: 1 WRU per KB written, an update
billed on the item's size, a refused conditional write 1; 1 RRU per 4 KB read).

    python bench/bench_inbox.py [captures per case, default 50] [body bytes, default 1000]
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench_cost import Meter
from common import AUTH, machine, stack


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    import os

    os.environ["WEBHOOK_RETRY_SCHEDULE"] = "0,0"
    from chalice.test import Client

    import app as app_module
    from chalicelib.config import get_settings
    from local.runner import Runner
    from tests.receiver import Receiver

    get_settings.cache_clear()
    destinations = [Receiver(), Receiver()]
    results: dict[str, dict[str, float]] = {}
    with stack() as deployed, Client(app_module.app) as client:
        meter = Meter()
        meter.install()

        def post(path: str, body: Any) -> dict[str, Any]:
            response = client.http.post(path, headers={**AUTH, "Content-Type": "application/json"},
                                        body=json.dumps(body))
            assert response.status_code == 201, response.body
            return dict(json.loads(response.body))

        plain = post("/v1/inboxes", {"name": "plain"})
        relay = post("/v1/inboxes", {"name": "relay", "forward_to": [d.url for d in destinations]})
        body = b"x" * size

        def case(label: str, box: dict[str, Any], headers: Any) -> None:
            meter.label = label
            started = time.perf_counter()
            for i in range(n):
                response = client.http.post(f"/v1/hooks/{box['inbox_id']}", headers=headers(i), body=body)
                assert response.status_code == 200, response.body
            results[label] = {"wru": meter.wru[label] / n, "rru": meter.rru[label] / n,
                              "calls": sum(meter.calls.get(label, {}).values()) / n,
                              "ms": (time.perf_counter() - started) * 1000 / n}

        client.http.post(f"/v1/hooks/{plain['inbox_id']}", body=b"warm")  # the inbox read, cached
        client.http.post(f"/v1/hooks/{relay['inbox_id']}", body=b"warm")
        case("no key", plain, lambda i: {})
        case("webhook-id, first", plain, lambda i: {"webhook-id": f"msg_{i}"})
        case("webhook-id, duplicate", plain, lambda i: {"webhook-id": f"msg_{i}"})
        body_before, body = body, b"y" * size
        case("webhook-id, conflict", plain, lambda i: {"webhook-id": f"msg_{i}"})
        body = body_before
        case("no key, 2 destinations (API)", relay, lambda i: {})
        meter.label = "forwarding (stream + delivery)"
        runner = Runner(app_module, deployed.stream_arn, deployed.delivery_queue_url)
        deadline = time.monotonic() + 120
        while sum(len(d.delivered()) for d in destinations) < 2 * (n + 1):
            assert time.monotonic() < deadline, "forwards did not settle"
            if not runner.pump():
                time.sleep(0.02)
        label = meter.label
        results[label] = {"wru": meter.wru[label] / n, "rru": meter.rru[label] / n,
                          "calls": sum(meter.calls.get(label, {}).values()) / n, "ms": 0.0}
        print(dict(meter.calls.get(label, {})), dict(meter.sqs))
    for d in destinations:
        d.stop()
    print(f"inbox captures: {n} per case, body {size} bytes; {machine()}")
    print(f"{'case':34} {'WRU/capture':>12} {'RRU/capture':>12} {'DynamoDB calls':>15} {'ms (moto)':>10}")
    for label, r in results.items():
        print(f"{label:34} {r['wru']:12.2f} {r['rru']:12.2f} {r['calls']:15.2f} {r['ms']:10.1f}")


if __name__ == "__main__":
    main()
