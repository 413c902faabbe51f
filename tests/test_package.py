"""The deploy path: `chalice package` merged with infra/, linted, references resolved, small."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.package import package

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    return package(tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def template(packaged: Path) -> dict:
    return json.loads((packaged / "sam.json").read_text())


def test_cfn_lint_passes(packaged: Path) -> None:
    lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(lint), str(packaged / "sam.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _references(node, found: list[str]) -> list[str]:
    """Every logical id a Ref, GetAtt or Sub inside `node` points at."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.append(value)
            elif key == "Fn::GetAtt":
                found.append(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                import re

                found += [m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)]
            else:
                _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)
    return found


def test_event_sources_reference_real_resources(template: dict) -> None:
    # cfn-lint does not look inside SAM Events: resolve them here
    known = set(template["Resources"]) | set(template.get("Parameters", {})) | {
        "AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert set(functions) >= {"APIHandler", "FeedbackHandler", "AnalyticsHandler", "DeliveryHandler", "CleanupHandler"}
    for name, function in functions.items():
        refs = _references(function["Properties"].get("Events", {}), [])
        refs += _references(function["Properties"].get("Environment", {}), [])
        assert set(refs) <= known, (name, set(refs) - known)
    feedback = functions["FeedbackHandler"]["Properties"]["Events"]["FeedbackHandlerDynamodbEventSource"]["Properties"]
    assert feedback["Stream"] == {"Fn::GetAtt": ["SessionTable", "StreamArn"]}
    assert feedback["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert feedback["BisectBatchOnFunctionError"] is True and feedback["MaximumRetryAttempts"] > 0
    assert json.loads(feedback["FilterCriteria"]["Filters"][0]["Pattern"])["eventName"] == ["INSERT"]
    delivery = functions["DeliveryHandler"]["Properties"]["Events"]["DeliveryHandlerSqsEventSource"]["Properties"]
    assert delivery["Queue"] == {"Fn::Sub": "${DeliveryQueue.Arn}"}
    assert delivery["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for function in functions.values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["TABLE_NAME"] == {"Ref": "SessionTable"}
        assert env["DELIVERY_QUEUE_URL"] == {"Ref": "DeliveryQueue"}
    schedule = functions["CleanupHandler"]["Properties"]["Events"]
    assert any(e["Type"] == "Schedule" for e in schedule.values())


def test_alarms_outputs_and_json_404(template: dict) -> None:
    alarms = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    assert {"DeadLetterQueueNotEmptyAlarm", "DeliveryBacklogAlarm", "Api5xxAlarm"} <= set(alarms)
    assert {"EndpointURL", "TableName", "DeliveryQueueUrl", "DeadLetterQueueUrl"} <= set(template["Outputs"])
    responses = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == 404


def test_deployment_zip_is_small_and_ships_no_local_code(packaged: Path) -> None:
    archive = packaged / "deployment.zip"
    assert archive.stat().st_size < 5 * 1024 * 1024
    names = zipfile.ZipFile(archive).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "app.py" in tops and "chalicelib" in tops
    for forbidden in ("boto3", "botocore", "moto", "infra", "tests", "bench", "pytest"):
        assert forbidden not in tops, forbidden


def test_role_allows_what_the_code_calls_on_our_resources_only(template: dict) -> None:
    import ast

    statements = [s for p in template["Resources"]["DefaultRole"]["Properties"]["Policies"]
                  for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in s["Action"]}
    for statement in statements:
        assert all("*" not in a for a in statement["Action"]), statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, statement
    # every DynamoDB and SQS operation the shipped code calls is allowed
    called = set()
    for path in [ROOT / "app.py", *(ROOT / "chalicelib").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                called.add(node.value)
    needed = {
        "get_item": "dynamodb:GetItem", "batch_get_item": "dynamodb:BatchGetItem",
        "query": "dynamodb:Query", "put_item": "dynamodb:PutItem", "update_item": "dynamodb:UpdateItem",
        "delete_item": "dynamodb:DeleteItem", "batch_write_item": "dynamodb:BatchWriteItem",
        "send_message": "sqs:SendMessage", "change_message_visibility": "sqs:ChangeMessageVisibility",
        "receive_message": "sqs:ReceiveMessage", "delete_message": "sqs:DeleteMessage",
        "get_queue_attributes": "sqs:GetQueueAttributes",
    }
    missing = {action for op, action in needed.items() if op in called and action not in actions}
    assert missing == set()
