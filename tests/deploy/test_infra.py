"""infra/resources.json agrees with the code that relies on it."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.config import DEFAULT_RETRY_SCHEDULE
from chalicelib.domain.delivery_policy import safety_net_receive_count

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = json.loads((ROOT / "infra" / "resources.json").read_text())
CHALICE = json.loads((ROOT / ".chalice" / "config.json").read_text())


def test_max_receive_count_default_is_the_safety_net_of_the_default_schedule() -> None:
    default = TEMPLATE["Parameters"]["MaxReceiveCount"]["Default"]
    assert default == safety_net_receive_count(DEFAULT_RETRY_SCHEDULE)


def test_visibility_timeout_covers_six_function_timeouts() -> None:
    visibility = TEMPLATE["Parameters"]["DeliveryVisibilityTimeout"]["Default"]
    assert visibility >= 6 * CHALICE["stages"]["dev"]["lambda_timeout"]


def test_queues_are_fifo_with_a_fifo_dead_letter_queue() -> None:
    resources = TEMPLATE["Resources"]
    assert resources["DeliveryQueue"]["Properties"]["FifoQueue"] is True
    assert resources["DeadLetterQueue"]["Properties"]["FifoQueue"] is True
    redrive = resources["DeliveryQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_the_table_is_defined_once() -> None:
    # one source of truth: no other file creates a table
    offenders = [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and p != Path(__file__)
                 and "create_table(" in p.read_text()]
    assert offenders == []
    tables = [r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 1
    assert tables[0]["Properties"]["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
