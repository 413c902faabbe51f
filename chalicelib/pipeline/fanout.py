"""Fan-out: one event -> one message per webhook endpoint that wants it (the feedback
function), and the messages of the operator actions that target one endpoint (redeliver,
replay, a test ping).

Each message is its own SQS FIFO message: group (endpoint, session), deduplication id
(endpoint, event), and the endpoint's id as a message attribute. A failing or slow endpoint
then holds back only its own groups, and each endpoint still gets a session's events in
order. The body is the webhook payload itself (what is signed and POSTed).
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.domain import endpoints as rules
from chalicelib.pipeline import queue, webhooks

ENDPOINT = "endpoint"  # message attribute: the endpoint a message goes to (absent: the default one)
ROUND = "round"  # message attribute: the delivery round (see delivery.py)


def messages_for(event: dict[str, Any], every: list[dict[str, Any]]) -> list[queue.Message]:
    """The messages of one event: one per enabled endpoint whose filter takes it."""
    body = webhooks.dumps(webhooks.payload(event))
    return [message(e["endpoint_id"], event["session_id"], event["event_id"], body)
            for e in every if e.get("enabled", True) and rules.matches(e.get("event_types"), event)]


def message(endpoint_id: str, session_id: str, event_id: str, body: str,
            round_id: str | None = None) -> queue.Message:
    attributes = {ENDPOINT: endpoint_id}
    dedup = rules.dedup_for(endpoint_id, event_id)
    if round_id is not None:
        attributes[ROUND] = round_id
        dedup = f"{dedup}:{round_id}"
    return queue.Message(body=body, group=rules.group_for(endpoint_id, session_id), dedup_id=dedup,
                         attributes=attributes)


def new_round() -> str:
    return f"r{time.time_ns():x}"


def enqueue(item: queue.Message) -> None:
    queue.enqueue(item.body, group=item.group, dedup_id=item.dedup_id, attributes=item.attributes)
