"""The one access layer for SQS: the FIFO delivery queue and its dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.config import get_settings

_client: Any = None
MAX_VISIBILITY = 43_200  # 12 hours, SQS's ceiling


def get_client() -> Any:
    global _client
    if _client is None:
        import boto3  # lazily: boto3 dominates cold-start time
        from botocore.config import Config

        _client = boto3.client("sqs", config=Config(
            retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=10))
    return _client


def reset_client() -> None:
    global _client
    _client = None


def _attributes(values: dict[str, str] | None) -> dict[str, Any]:
    return {k: {"DataType": "String", "StringValue": v} for k, v in (values or {}).items()}


def enqueue(body: str, *, group: str, dedup_id: str, queue_url: str | None = None,
            attributes: dict[str, str] | None = None) -> None:
    """Send one message; FIFO keeps a group's (a session's) messages in order and drops a
    repeated dedup id within SQS's 5-minute window. `attributes` travel with the message
    (string message attributes) without being part of the webhook body."""
    kwargs: dict[str, Any] = {
        "QueueUrl": queue_url or get_settings().delivery_queue_url, "MessageBody": body,
        "MessageGroupId": group, "MessageDeduplicationId": dedup_id[:128]}
    if attributes:
        kwargs["MessageAttributes"] = _attributes(attributes)
    get_client().send_message(**kwargs)


@dataclass(frozen=True)
class Message:
    """A message to send: its body, FIFO group and deduplication id."""

    body: str
    group: str
    dedup_id: str
    attributes: dict[str, str] | None = None


def enqueue_batch(messages: list[Message], queue_url: str | None = None) -> set[str]:
    """Send up to ten messages in one request; returns the dedup ids of those SQS refused
    (the rest are stored). A request that fails altogether raises."""
    if not messages:
        return set()
    entries = []
    for n, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(n), "MessageBody": message.body, "MessageGroupId": message.group,
                                 "MessageDeduplicationId": message.dedup_id[:128]}
        if message.attributes:
            entry["MessageAttributes"] = _attributes(message.attributes)
        entries.append(entry)
    response = get_client().send_message_batch(
        QueueUrl=queue_url or get_settings().delivery_queue_url, Entries=entries)
    return {messages[int(f["Id"])].dedup_id for f in response.get("Failed", [])}


BATCH = 10  # the most entries SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch take


def change_visibility(entries: list[tuple[str, int]], queue_url: str | None = None) -> list[str]:
    """Hide each received message (receipt handle, seconds) for its seconds (0: visible at
    once; at most SQS's 12 hours), ten per ChangeMessageVisibilityBatch. Returns the receipt
    handles SQS refused: those keep their visibility timeout, so the message comes back then."""
    url = queue_url or get_settings().delivery_queue_url
    refused: list[str] = []
    for start in range(0, len(entries), BATCH):
        chunk = entries[start:start + BATCH]
        response = get_client().change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": max(0, min(int(seconds), MAX_VISIBILITY))}
            for n, (handle, seconds) in enumerate(chunk)])
        refused += [chunk[int(f["Id"])][0] for f in response.get("Failed", [])]
    return refused


def release(receipt_handles: list[str], queue_url: str | None = None) -> list[str]:
    """Make received messages visible again at once, ten per request (see change_visibility)."""
    return change_visibility([(handle, 0) for handle in receipt_handles], queue_url)


def receive(queue_url: str, max_messages: int = 10, wait_seconds: int = 0,
            visibility_timeout: int | None = None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MaxNumberOfMessages": max_messages,
                              "WaitTimeSeconds": wait_seconds, "AttributeNames": ["All"],
                              "MessageSystemAttributeNames": ["All"],
                              "MessageAttributeNames": ["All"]}
    if visibility_timeout is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout
    messages: list[dict[str, Any]] = get_client().receive_message(**kwargs).get("Messages", [])
    return messages


def attribute(message: dict[str, Any], name: str) -> str | None:
    """A string message attribute, from ReceiveMessage's shape or a Lambda record's."""
    found = (message.get("MessageAttributes") or message.get("messageAttributes") or {}).get(name)
    if not found:
        return None
    value = found.get("StringValue", found.get("stringValue"))
    return value if isinstance(value, str) else None


def delete(queue_url: str, receipt_handle: str) -> None:
    get_client().delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)


def delete_batch(queue_url: str, receipt_handles: list[str]) -> list[str]:
    """Delete received messages, ten per DeleteMessageBatch; returns the receipt handles SQS
    refused (those messages come back after their visibility timeout)."""
    refused: list[str] = []
    for start in range(0, len(receipt_handles), BATCH):
        chunk = receipt_handles[start:start + BATCH]
        response = get_client().delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(chunk)])
        refused += [chunk[int(f["Id"])] for f in response.get("Failed", [])]
    return refused


def depth(queue_url: str) -> int:
    attributes = get_client().get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"])
