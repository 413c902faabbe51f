"""Operator commands (python -m infra.cli ...). Not shipped to Lambda.

    redrive   move dead-lettered webhook messages back to the delivery queue

Queues are found from the CloudFormation stack's outputs (--stack) or given directly;
--endpoint-url points at the local moto server (make run) instead of AWS.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click


def _stack_queues(stack: str) -> tuple[str, str]:
    import boto3

    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return outputs["DeadLetterQueueUrl"], outputs["DeliveryQueueUrl"]


@click.group()
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (the local moto server, e.g. http://127.0.0.1:5055).")
def cli(endpoint_url: str | None) -> None:
    """Session service operator commands."""
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        for key, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            os.environ.setdefault(key, value)


@cli.command()
@click.option("--stack", default="session-service-local", show_default=True,
              help="CloudFormation stack whose queues to use.")
@click.option("--dlq-url", default=None, help="Dead-letter queue URL (instead of --stack).")
@click.option("--queue-url", default=None, help="Delivery queue URL (instead of --stack).")
def redrive(stack: str, dlq_url: str | None, queue_url: str | None) -> None:
    """Move every dead-lettered webhook back to the delivery queue, in order."""
    from chalicelib import delivery, queue

    if not (dlq_url and queue_url):
        dlq_url, queue_url = _stack_queues(stack)
    waiting = queue.depth(dlq_url)
    if not waiting:
        click.echo("Dead-letter queue is empty: nothing to redrive.")
        return
    with click.progressbar(length=waiting, label="Redriving", file=sys.stderr) as bar:
        last = [0]

        def advance(moved: int) -> None:
            bar.update(moved - last[0])
            last[0] = moved

        moved = delivery.redrive(dlq_url, queue_url, progress=advance)
    click.echo(f"Redrove {moved} message(s) to {queue_url}.")


def main() -> Any:
    return cli(prog_name="python -m infra.cli")


if __name__ == "__main__":
    main()
