"""Build the deployable template: `chalice package` merged with infra/.

The merge template is made here from two parts, so nothing is written twice:
  - infra/resources.json: the table, queues and parameters (the very file tests and
    `make run` deploy into moto);
  - the wiring below: each function's environment (by Ref), its event source bound to the
    real stream or queue (with partial batch responses, filters, retries), alarms, the JSON
    404 for unknown routes, and outputs.

    python -m infra.package [OUT_DIR]      (make package)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib import observability
from chalicelib.api import auth, headers
from chalicelib.config import retry_schedule_from_env
from chalicelib.domain.delivery_policy import safety_net_receive_count
from chalicelib.domain.errors import BEARER_CHALLENGE
from infra.artifact import finish_package
from infra.monitoring import alarms, dashboard

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "infra" / "resources.json"

ENVIRONMENT = {
    "TABLE_NAME": {"Ref": "SessionTable"},
    "DELIVERY_QUEUE_URL": {"Ref": "DeliveryQueue"},
    "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue"},
    "WEBHOOK_URL": {"Ref": "WebhookUrl"},
    "WEBHOOK_SECRET": {"Ref": "WebhookSecret"},
    "POWERTOOLS_SERVICE_NAME": observability.SERVICE,
    "POWERTOOLS_METRICS_NAMESPACE": observability.NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
}
FUNCTIONS = ("APIHandler", "FeedbackHandler", "AnalyticsHandler", "DeliveryHandler", "CleanupHandler",
             "DeadLetterHandler")
# the authorizer reads keys only: it gets the table's name and no secret
AUTHORIZER = "ApiKeyAuthorizer"
# API Gateway's answer (GatewayResponse, 503) when the authorizer fails or cannot run; the
# local gateway (local/gateway.py) answers the same
AUTHORIZER_FAILURE_BODY = json.dumps({
    "error": "service_unavailable", "message": "The API key could not be checked; retry shortly."})


def _stream_source(patterns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Stream": {"Fn::GetAtt": ["SessionTable", "StreamArn"]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 1000,
        "MaximumRecordAgeInSeconds": 86400,
        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]},
    }


def _gateway_response(status: int | None, body: str | None, **extra: str) -> dict[str, Any]:
    """A GatewayResponse with the security headers (chalicelib/api/headers.py) and `extra`,
    as static values, each in single quotes (the CSP's own quotes stay inside). Without a
    status and body, API Gateway's own are kept (DEFAULT_4XX, DEFAULT_5XX: throttling,
    timeouts, too large...)."""
    values = {**headers.API_HEADERS, **extra}
    if status is not None and body is not None:
        values["Content-Type"] = "application/json"
    response: dict[str, Any] = {"ResponseParameters": {"Headers": {
        name: f"'{value}'" for name, value in values.items()}}}
    if status is not None and body is not None:
        response["StatusCode"] = status
        response["ResponseTemplates"] = {"application/json": body}
    return response


def _resolve_policies(template: dict[str, Any]) -> None:
    """The policy files in .chalice/ name our resources as `${SessionTable.Arn}` etc.;
    chalice copies them verbatim, so each such string becomes an Fn::Sub here."""
    def sub(value: Any) -> Any:
        if isinstance(value, str) and "${" in value:
            return {"Fn::Sub": value}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                statement["Resource"] = sub(statement["Resource"])


def merge_template(schedule: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The merge template. The retry schedule (WEBHOOK_RETRY_SCHEDULE at package time, the
    one setting) is baked in twice from one value: the functions' attempt budget and, derived
    from it, the delivery queue's maxReceiveCount safety net (no parameter to keep in step)."""
    schedule = schedule or retry_schedule_from_env()
    template = json.loads(RESOURCES.read_text())
    del template["Parameters"]["MaxReceiveCount"]
    template["Resources"]["DeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] = (
        safety_net_receive_count(schedule))
    template["Parameters"].update({
        "WebhookUrl": {"Type": "String", "Default": "", "Description": "Where webhooks are POSTed."},
        "WebhookSecret": {"Type": "String", "NoEcho": True, "Default": "",
                          "Description": "whsec_... signing secret for webhooks."},
        "LogLevel": {"Type": "String", "Default": "INFO", "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"],
                     "Description": "Level of the functions' JSON logs."},
        "DeliveryLagAlarmSeconds": {"Type": "Number", "Default": 900,
                                    "Description": "Alarm when webhooks reach receivers later than this (p99)."},
    })
    environment = {**ENVIRONMENT, "WEBHOOK_RETRY_SCHEDULE": ",".join(str(d) for d in schedule)}
    resources = template["Resources"]
    for name in FUNCTIONS:
        resources[name] = {"Properties": {"Environment": {"Variables": dict(environment)}}}
    resources[AUTHORIZER] = {"Properties": {"Environment": {"Variables": {
        "TABLE_NAME": {"Ref": "SessionTable"},
        **{k: v for k, v in ENVIRONMENT.items() if k.startswith("POWERTOOLS_")}}}}}
    resources["FeedbackHandler"]["Properties"]["Events"] = {"FeedbackHandlerDynamodbEventSource": {
        "Properties": _stream_source([
            {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["event"]}}}}])}}
    resources["AnalyticsHandler"]["Properties"]["Events"] = {"AnalyticsHandlerDynamodbEventSource": {
        "Properties": _stream_source([
            {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["event", "message", "manual"]}}}},
            {"eventName": ["REMOVE"], "dynamodb": {"OldImage": {"type": {"S": ["message", "manual", "session"]}}}},
            # a delivery status moving into or out of `failed` (the failed-deliveries count)
            {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"type": {"S": ["event"]},
                                                                "delivery_status": {"S": ["failed"]}}}},
            {"eventName": ["MODIFY", "REMOVE"], "dynamodb": {"OldImage": {"type": {"S": ["event"]},
                                                                          "delivery_status": {"S": ["failed"]}}}},
        ])}}
    resources["DeliveryHandler"]["Properties"]["Events"] = {"DeliveryHandlerSqsEventSource": {
        "Properties": {"Queue": {"Fn::Sub": "${DeliveryQueue.Arn}"},
                       "FunctionResponseTypes": ["ReportBatchItemFailures"]}}}
    # Each function's role comes from its policy file in .chalice/ (see _resolve_policies).
    # API Gateway's own answers in our error shape: unknown routes (403 "Missing
    # Authentication Token") are a JSON 404; the authorizer's 401/403 carry auth's bodies.
    # All of them carry the security headers the function adds to its own answers.
    resources["RestAPI"] = {"Properties": {"GatewayResponses": {
        "MISSING_AUTHENTICATION_TOKEN": _gateway_response(
            404, '{"error": "route_not_found", "message": "No such route"}'),
        # RFC 6750's challenge (MCP clients look for it on a 401): the key is a bearer token
        "UNAUTHORIZED": _gateway_response(401, auth.UNAUTHORIZED_BODY, **{"WWW-Authenticate": BEARER_CHALLENGE}),
        "ACCESS_DENIED": _gateway_response(403, auth.FORBIDDEN_BODY),
        "AUTHORIZER_FAILURE": _gateway_response(503, AUTHORIZER_FAILURE_BODY),
        "AUTHORIZER_CONFIGURATION_ERROR": _gateway_response(503, AUTHORIZER_FAILURE_BODY),
        # every other answer of API Gateway's own keeps its status and body, with our headers
        "DEFAULT_4XX": _gateway_response(None, None),
        "DEFAULT_5XX": _gateway_response(None, None),
    }}}
    # Without it SAM's Deployment also makes a stage named "Stage" next to ours ("api").
    resources["RestAPI"]["Properties"]["OpenApiVersion"] = "2.0"
    resources.update(alarms(FUNCTIONS + (AUTHORIZER,)))
    resources["OperationsDashboard"] = dashboard(FUNCTIONS + (AUTHORIZER,))
    template["Outputs"].update({
        "DeadLetterQueueName": {"Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}},
        "DashboardName": {"Value": {"Ref": "OperationsDashboard"}},
    })
    return template


def package(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "merge-template.json"
    merge.write_text(json.dumps(merge_template(), indent=2))
    env = {**os.environ}
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "package",
                       "AWS_SECRET_ACCESS_KEY": "package"}.items():
        env.setdefault(key, value)
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run([str(chalice), "package", "--stage", "dev", "--pkg-format", "cloudformation",
                    "--template-format", "json", "--merge-template", str(merge), str(out / "package")],
                   cwd=ROOT, env=env, check=True)
    sam = out / "package" / "sam.json"
    template = json.loads(sam.read_text())
    _resolve_policies(template)
    sam.write_text(json.dumps(template, indent=2))
    finish_package(out / "package")  # prune unused distributions, add bytecode (infra/artifact.py)
    return out / "package"


if __name__ == "__main__":
    target = package(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "out")
    print(f"Packaged: {target / 'sam.json'} and {target / 'deployment.zip'}")
