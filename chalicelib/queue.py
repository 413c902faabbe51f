"""The one access layer for SQS: the FIFO delivery queue and its dead-letter queue."""

from __future__ import annotations

from typing import Any

from .config import get_settings

_client: Any = None


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


def enqueue(body: str, *, group: str, dedup_id: str, queue_url: str | None = None) -> None:
    """Send one message; FIFO keeps a group's (a session's) messages in order and drops a
    repeated dedup id within SQS's 5-minute window."""
    get_client().send_message(QueueUrl=queue_url or get_settings().delivery_queue_url,
                              MessageBody=body, MessageGroupId=group,
                              MessageDeduplicationId=dedup_id[:128])


def delay(receipt_handle: str, seconds: int) -> None:
    """Hide a message for `seconds` (the retry back-off), at most SQS's 12 hours."""
    get_client().change_message_visibility(
        QueueUrl=get_settings().delivery_queue_url, ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(int(seconds), 43_200)))


def receive(queue_url: str, max_messages: int = 10, wait_seconds: int = 0,
            visibility_timeout: int | None = None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MaxNumberOfMessages": max_messages,
                              "WaitTimeSeconds": wait_seconds, "AttributeNames": ["All"],
                              "MessageSystemAttributeNames": ["All"],
                              "MessageAttributeNames": ["All"]}
    if visibility_timeout is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout
    return get_client().receive_message(**kwargs).get("Messages", [])


def delete(queue_url: str, receipt_handle: str) -> None:
    get_client().delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)


def depth(queue_url: str) -> int:
    attributes = get_client().get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"])
