"""Deploy infra/resources.json with CloudFormation (into moto for tests and `make run`).

The same file is merged into the SAM template by `chalice package`: one source of truth.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESOURCES = Path(__file__).with_name("resources.json")


@dataclass(frozen=True)
class Stack:
    name: str
    table_name: str
    stream_arn: str
    delivery_queue_url: str
    dead_letter_queue_url: str
    outputs: dict[str, str]

    def environment(self) -> dict[str, str]:
        """What the functions read, as the packaged template sets it by Ref."""
        return {"TABLE_NAME": self.table_name, "DELIVERY_QUEUE_URL": self.delivery_queue_url,
                "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
                "ENDPOINT_SECRETS_KEY_ARN": self.outputs["EndpointSecretsKeyArn"]}


def stack_parameters(schedule: tuple[int, ...] | None = None) -> dict[str, str]:
    """The stack's parameters that follow from configuration: the delivery queue's
    maxReceiveCount is derived from the retry schedule (WEBHOOK_RETRY_SCHEDULE), never set
    by hand, so the safety net always stays out of reach of the attempt budget."""
    from chalicelib.config import retry_schedule_from_env
    from chalicelib.domain.delivery_policy import safety_net_receive_count

    return {"MaxReceiveCount": str(safety_net_receive_count(schedule or retry_schedule_from_env()))}


def deploy(session: Any, stack_name: str = "session-service-local",
           parameters: dict[str, str] | None = None) -> Stack:
    """Create the stack, wait for it, and finish what moto's CloudFormation ignores (TTL).
    `parameters` override the derived ones (tests force SQS's own limit with them)."""
    cfn = session.client("cloudformation")
    template = RESOURCES.read_text()
    merged = {**stack_parameters(), **(parameters or {})}
    cfn.create_stack(StackName=stack_name, TemplateBody=template, Parameters=[
        {"ParameterKey": k, "ParameterValue": str(v)} for k, v in merged.items()])
    deadline = time.monotonic() + 60
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        if stack["StackStatus"] == "CREATE_COMPLETE":
            break
        if stack["StackStatus"].endswith("FAILED") or time.monotonic() > deadline:
            raise RuntimeError(f"stack {stack_name}: {stack['StackStatus']}")
        time.sleep(0.2)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    ttl = json.loads(template)["Resources"]["SessionTable"]["Properties"]["TimeToLiveSpecification"]
    session.client("dynamodb").update_time_to_live(
        TableName=outputs["TableName"],
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
    return Stack(stack_name, outputs["TableName"], outputs["TableStreamArn"],
                 outputs["DeliveryQueueUrl"], outputs["DeadLetterQueueUrl"], outputs)
