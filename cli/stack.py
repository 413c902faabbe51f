"""A deployed stack's outputs, for the commands that work straight on its resources with the
operator's AWS credentials (keys bootstrap / sync-usage-plans, the endpoints' migrations)."""

from __future__ import annotations

import os


def outputs(stack: str, endpoint_url: str | None = None) -> dict[str, str]:
    """The stack's CloudFormation outputs by key; `endpoint_url` (e.g. the local moto server)
    is exported as AWS_ENDPOINT_URL for every client made afterwards."""
    import boto3

    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
