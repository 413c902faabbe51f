"""Faults injected at the DynamoDB client, before moto sees the request: the client's own
retry logic runs as it would against AWS."""

from __future__ import annotations

import json

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from chalicelib.db import table as store


def fail_with(code: str, operation: str, times: int | None = None):
    """Answer `operation` with an HTTP error from "DynamoDB" (before moto sees it), so the
    client's own retry logic runs as it would against AWS."""
    calls = {"n": 0}

    def handler(request, **_: object):
        calls["n"] += 1
        if times is not None and calls["n"] > times:
            return None
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"})
        status = 500 if code == "InternalServerError" else 400
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0"},
                           MockRawResponse(body.encode()))

    store.get_client().meta.events.register_first(f"before-send.dynamodb.{operation}", handler,
                                                  unique_id=f"fault-{operation}")
    return calls


def heal(operation: str) -> None:
    store.get_client().meta.events.unregister(f"before-send.dynamodb.{operation}",
                                              unique_id=f"fault-{operation}")
