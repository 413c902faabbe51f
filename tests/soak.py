"""A soak of the webhook pipeline as a user meets it: `make run`'s stack (a subprocess) over
HTTP, its webhooks going to a receiver on 127.0.0.1 that fails at random (500s, resets,
timeouts, 429 with Retry-After). Used by tests/pipeline/test_soak.py (bounded) and
bench/bench_soak.py (longer, with numbers).

The promise checked, as an invariant over every event:
  - every event is delivered at least once, or listed by GET /v1/deliveries?status=failed
    with its spent attempts (both, when the receiver's 2xx came after our timeout: at least
    once), never neither;
  - each session's first deliveries arrive in the session's order;
  - the dead-letter queue holds exactly the listed events (nothing sits there unlisted);
  - a redrive, once the receiver is healthy, delivers every listed event.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import LOCAL_ADMIN_KEY, SECRET, StackProcess
from tests.receiver import Receiver, always, chaos


@dataclass
class SoakResult:
    sessions: int
    events: int
    attempts_per_event: int
    requests: int = 0  # requests the receiver got before the redrive
    failed_answers: int = 0  # of those, answered with anything but a 2xx in time
    delivered: int = 0
    failed: int = 0
    drain_seconds: float = 0.0
    redrive_seconds: float = 0.0
    lag_p50: float = 0.0
    lag_p99: float = 0.0
    delivered_late: int = 0  # answered 2xx after the sender had given up: delivered and listed
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.failed_answers / self.requests if self.requests else 0
        return (f"{self.sessions} sessions, {self.events} events, {self.requests} webhook requests "
                f"({rate:.0%} failed answers), {self.attempts_per_event} attempts per event: "
                f"{self.delivered} delivered, {self.failed} listed as failed ({self.delivered_late} of them "
                f"answered after the sender's timeout); drained in "
                f"{self.drain_seconds:.1f} s; first-delivery lag p50 {self.lag_p50:.2f} s, p99 "
                f"{self.lag_p99:.2f} s; redrive delivered the failed ones in {self.redrive_seconds:.1f} s; "
                f"violations: {len(self.violations)}")


class Http:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.base}/{path}", data=json.dumps(body).encode() if body is not None else None,
            method=method, headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def all(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            status, page = self(("GET"), path + ("&" if "?" in path else "?") + "limit=100"
                                + (f"&cursor={cursor}" if cursor else ""))
            assert status == 200, page
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def run_soak(sessions: int = 12, steps: int = 9, seed: int = 7, ok: float = 0.5,
             schedule: str = "0,1,0,1", timeout: float = 0.5, threads: int = 4,
             settle_seconds: float = 120) -> SoakResult:
    """Run the soak; returns what happened and every violation of the invariants."""
    import boto3

    receiver = Receiver(chaos(seed, ok), secret=SECRET)
    receiver.slow_seconds = timeout * 2
    stack = StackProcess({
        "WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET, "WEBHOOK_RETRY_SCHEDULE": schedule,
        "WEBHOOK_TIMEOUT_SECONDS": str(timeout), "SCHEDULE_INTERVAL_SECONDS": "2",
        "WEBHOOK_EVENT_TYPES": "session_created,progress_update,session_ended"})
    result = SoakResult(sessions, sessions * (steps + 2), schedule.count(",") + 2)
    try:
        http = Http(stack.urls["api"] + "/v1", LOCAL_ADMIN_KEY)
        assert http("POST", "manuals", {"manual_id": "soak", "title": "Soak", "steps": [
            {"step_number": n, "title": f"Step {n}"} for n in range(1, steps + 1)]})[0] == 201
        ids = [f"soak-{n:03d}" for n in range(sessions)]
        errors: list[str] = []

        def learner(chunk: list[str]) -> None:
            for sid in chunk:
                status, body = http("POST", "sessions", {"session_id": sid, "user_id": "u", "manual_id": "soak"})
                if status != 201:
                    errors.append(f"{sid}: start answered {status} {body}")
                for step in range(1, steps + 1):
                    status, body = http("POST", f"sessions/{sid}/progress",
                                        {"user_id": "u", "current_step": step, "step_status": "DONE"})
                    if status != 200:
                        errors.append(f"{sid} step {step}: {status} {body}")

        begin = time.monotonic()
        workers = [threading.Thread(target=learner, args=(ids[n::threads],)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        result.violations += errors

        def events() -> dict[str, list[dict[str, Any]]]:
            return {sid: http.all(f"sessions/{sid}/events?x=1") for sid in ids}

        deadline = time.monotonic() + settle_seconds
        while True:
            trail = events()
            if all(e["delivery_status"] in ("delivered", "failed") for es in trail.values() for e in es):
                break
            if time.monotonic() > deadline:
                stuck = [(e["event_id"], e["delivery_status"]) for es in trail.values() for e in es
                         if e["delivery_status"] not in ("delivered", "failed")]
                result.violations.append(f"not settled after {settle_seconds} s: {stuck[:10]}")
                break
            time.sleep(0.5)
        result.drain_seconds = time.monotonic() - begin
        requests = list(receiver.requests)
        result.requests = len(requests)
        result.failed_answers = sum(1 for r in requests if not 200 <= r.status < 300)
        first: dict[str, Any] = {}
        order: dict[str, list[int]] = defaultdict(list)
        for request in requests:
            if request.verified is not True:  # checked on arrival: signed, untampered, fresh
                result.violations.append(f"{request.headers.get('webhook-id')}: signature not verified")
            if 200 <= request.status < 300 and request.headers["webhook-id"] not in first:
                first[request.headers["webhook-id"]] = request
                order[request.json["session_id"]].append(request.json["sequence"])
        failed = {f["event_id"]: f for f in http.all("deliveries?status=failed")}
        all_events = {e["event_id"]: e for es in trail.values() for e in es}
        result.delivered, result.failed = len(first), len(failed)
        from chalicelib.domain.clock import from_iso

        lag_values = []  # change -> first delivery, from the event's own delivery log
        for event in all_events.values():
            done = [a for a in event["delivery_attempts"] if a["outcome"] == "delivered"]
            if done:
                lag_values.append((from_iso(done[0]["at"]) - from_iso(event["occurred_at"])).total_seconds())
        result.lag_p50, result.lag_p99 = _percentile(lag_values, 0.5), _percentile(lag_values, 0.99)
        for event_id in all_events:
            if event_id not in first and event_id not in failed:
                result.violations.append(f"{event_id}: neither delivered nor listed as failed")
            if event_id in first and event_id in failed:
                # the receiver answered 2xx after our timeout had already counted the attempt
                # as failed: at least once, as Standard Webhooks says (receivers de-duplicate)
                result.delivered_late += 1
            if event_id in failed:
                log = failed[event_id]["delivery_attempts"]
                if [a["attempt"] for a in log] != list(range(1, result.attempts_per_event + 1)):
                    result.violations.append(f"{event_id}: failed after attempts {[a['attempt'] for a in log]}")
        for sid, sequences in order.items():
            if sequences != sorted(sequences):
                t0 = requests[0].at if requests else 0.0
                timeline = [(round(r.at - t0, 2), r.json["sequence"], r.status, r.headers.get("webhook-id", "")[-4:])
                            for r in requests if r.json["session_id"] == sid]
                attempts = {e["sequence"]: [(a["attempt"], a["round"], a["outcome"], a["at"][11:23])
                                            for a in e["delivery_attempts"]] for e in trail[sid]}
                result.violations.append(f"{sid}: first deliveries out of order: {sequences}; "
                                         f"arrivals (s, seq, status, id): {timeline}; attempts: {attempts}")
        if set(all_events) != {e for es in trail.values() for e in (x["event_id"] for x in es)} or \
                len(all_events) != result.events:
            result.violations.append(f"{len(all_events)} events stored, {result.events} expected")
        # the dead-letter queue holds exactly the listed ones
        moto = next(line.split()[1] for line in stack.lines if line.strip().startswith("moto"))
        sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
        dlq = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("-dlq.fifo"))
        def dead_letters() -> set[str]:
            held, dead = [], set()
            for _ in range(100):
                batch = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
                if not batch:
                    break
                held += [m["ReceiptHandle"] for m in batch]
                dead |= {json.loads(m["Body"])["event_id"] for m in batch}
            for start in range(0, len(held), 10):
                sqs.change_message_visibility_batch(QueueUrl=dlq, Entries=[
                    {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0} for n, h in enumerate(held[start:start + 10])])
            return dead

        # The stack's scheduled dead-letter sweep hides the messages it walks (for up to a
        # minute, then releases them all): look again until it is out of the way.
        deadline = time.monotonic() + 90
        dead = dead_letters()
        while dead != set(failed) and time.monotonic() < deadline:
            time.sleep(2)
            dead = dead_letters()
        if dead != set(failed):
            result.violations.append(f"DLQ holds {len(dead)}, {len(failed)} listed; unlisted: "
                                     f"{sorted(dead - set(failed))[:5]}, listed but not there: "
                                     f"{sorted(set(failed) - dead)[:5]}")
        # a redrive, with the receiver healthy, delivers every listed one
        receiver.behaviour = always(200)
        begin = time.monotonic()
        moved = 0
        for _ in range(100):
            status, step = http("POST", "deliveries/redrive")
            if status != 200:
                result.violations.append(f"redrive answered {status} {step}")
                break
            moved += step["moved"]
            if step["remaining"] == 0:
                break
        if moved != len(failed):
            result.violations.append(f"redrive moved {moved} of {len(failed)}")
        deadline = time.monotonic() + settle_seconds
        while time.monotonic() < deadline:
            got = {r.headers["webhook-id"] for r in receiver.requests if 200 <= r.status < 300}
            if set(failed) <= got and not http("GET", "deliveries?status=failed")[1]["items"]:
                break
            time.sleep(0.3)
        else:
            result.violations.append("redriven webhooks were not all delivered")
        result.redrive_seconds = time.monotonic() - begin
    finally:
        exit_code = stack.stop()
        receiver.stop()
    if exit_code != 0:
        result.violations.append(f"the stack exited {exit_code}: {stack.output[-2000:]}")
    return result
