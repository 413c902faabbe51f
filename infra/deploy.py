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
                "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url}


def deploy(session: Any, stack_name: str = "session-service-local",
           parameters: dict[str, str] | None = None) -> Stack:
    """Create the stack, wait for it, and finish what moto's CloudFormation ignores (TTL)."""
    cfn = session.client("cloudformation")
    template = RESOURCES.read_text()
    cfn.create_stack(StackName=stack_name, TemplateBody=template, Parameters=[
        {"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()])
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
