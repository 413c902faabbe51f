"""Build the deployable template: `chalice package` merged with infra/.

The merge template is made here from two parts, so nothing is written twice:
  - infra/resources.json: the table, queues and parameters (the very file tests and
    `make run` deploy into moto);
  - the wiring below: each function's environment (by Ref), its event source bound to the
    real stream or queue (with partial batch responses, filters, retries), alarms, the JSON
    404 for unknown routes, the request limits (see `limits()`), and outputs.

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
from chalicelib.domain import limits as defaults
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
    "ENDPOINT_DISABLE_AFTER_DAYS": {"Ref": "EndpointDisableAfterDays"},
}
FUNCTIONS = ("APIHandler", "FeedbackHandler", "AnalyticsHandler", "DeliveryHandler", "CleanupHandler",
             "DeadLetterHandler")
SECRETS_KEY_USERS = ("APIHandler", "DeliveryHandler")  # encrypts / decrypts (chalicelib/sealing.py)
# the principal tag the key policy asks of whoever decrypts (infra/resources.json)
DECRYPT_TAG = {"Key": "session-service:endpoint-secrets", "Value": "decrypt"}
# and of whoever decrypts inbox signing secrets (the API function: the capture route checks signatures)
INBOX_DECRYPT_TAG = {"Key": "session-service:inbox-secrets", "Value": "decrypt"}
# the authorizer reads keys only: it gets the table's name and no secret
AUTHORIZER = "ApiKeyAuthorizer"
# API Gateway's answer (GatewayResponse, 503) when the authorizer fails or cannot run; the
# local gateway (local/gateway.py) answers the same
AUTHORIZER_FAILURE_BODY = json.dumps({
    "error": "service_unavailable", "message": "The API key could not be checked; retry shortly."})


ANALYTICS_WINDOW_SECONDS = 900  # Lambda's longest tumbling window


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


def _gateway_429(body: str, retry_after: int) -> dict[str, Any]:
    response = _gateway_response(429, body)
    response["ResponseParameters"]["Headers"]["Retry-After"] = f"'{retry_after}'"
    return response


# Reserved concurrency per function (-1: none). The API's share is also its ceiling, so a
# flooded API cannot take the instances the pipeline needs; the stream functions need about
# one instance per shard each. Together 164 of the account's default 1,000 (AWS keeps 100
# unreserved: an account with a lower limit sets these to -1).
RESERVED_CONCURRENCY = {"APIHandler": 100, "ApiKeyAuthorizer": 20, "DeliveryHandler": 20,
                        "FeedbackHandler": 10, "AnalyticsHandler": 10, "CleanupHandler": 2,
                        "DeadLetterHandler": 2}


def _number(default: float, description: str, minimum: float = 0) -> dict[str, Any]:
    return {"Type": "Number", "Default": default, "MinValue": minimum, "Description": description}


DEFAULT_PLAN_NAME = {"Fn::Sub": "${AWS::StackName}-default"}
# API Gateway's account-level throttle per region (its default quota): the health routes' own
# method throttle, so the stage's read limit does not apply to them
HEALTH_RATE_PER_SECOND, HEALTH_BURST = 10_000, 5_000
# the in-function per-address limit (chalicelib/domain/limits.py), over WAF's 5-minute window
WAF_WINDOW_SECONDS = 300
WAF_CAPTURE_LIMIT = int(defaults.SOURCE_RATE_PER_SECOND * WAF_WINDOW_SECONDS)
# how long a client WAF refused should wait: WAF re-evaluates an address's rate about every
# minute, over the window
WAF_RETRY_AFTER = 60
# API Gateway's answer when the authorizer names an API key no usage plan of the stage holds:
# a key minted before usage plans, until `python -m cli keys sync-usage-plans` runs
INVALID_API_KEY_BODY = json.dumps({
    "error": "forbidden", "message": "This API key is not in a usage plan at API Gateway yet (a key "
    "minted before usage plans): an operator runs `python -m cli keys sync-usage-plans`."})


def limit_parameters() -> dict[str, Any]:
    """Every limit of the stack, a parameter with its default (chalicelib/domain/limits.py,
    which the local stack enforces too)."""
    params = {
        "KeyRateLimit": _number(defaults.KEY_RATE_PER_SECOND,
                                "Default usage plan: requests per second per API key (steady rate).", 1),
        "KeyBurstLimit": _number(defaults.KEY_BURST, "Default usage plan: burst per API key.", 1),
        "KeyDailyQuota": _number(defaults.KEY_DAILY_QUOTA, "Default usage plan: requests per API key per day.", 1),
        "StageRateLimit": _number(defaults.ROUTE_RATE_PER_SECOND,
                                  "Per method of the stage, all callers: requests per second.", 1),
        "StageBurstLimit": _number(defaults.ROUTE_BURST, "Per method of the stage, all callers: burst.", 1),
        "WriteRateLimit": _number(defaults.WRITE_RATE_PER_SECOND,
                                  "Per write method (POST, PUT, PATCH, DELETE): requests per second.", 1),
        "WriteBurstLimit": _number(defaults.WRITE_BURST, "Per write method: burst.", 1),
        "CaptureRateLimit": _number(defaults.HOOK_RATE_PER_SECOND,
                                    "Per method of the public capture route /v1/hooks/{inbox_id}: "
                                    "requests per second.", 1),
        "CaptureBurstLimit": _number(defaults.HOOK_BURST, "Per method of the capture route: burst.", 1),
        # health routes: exempt from the stage's read limit, up to the account's own throttle
        "HealthRateLimit": _number(HEALTH_RATE_PER_SECOND, "Per method of /health*: requests per second "
                                   "(default: API Gateway's account-level limit per region, i.e. no limit "
                                   "of the stage's own).", 1),
        "HealthBurstLimit": _number(HEALTH_BURST, "Per method of /health*: burst (default: the "
                                    "account-level burst).", 1),
        # the capture route's global per-address limit (AWS WAF; costs money, hence off by default)
        "CaptureWafEnabled": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
                              "Description": "Put an AWS WAF web ACL on the stage that limits captures "
                                             "(/v1/hooks/*) per source address across all Lambda instances "
                                             "(WAF is billed per web ACL, rule and request)."},
        "CaptureWafRequestsPer5Minutes": _number(WAF_CAPTURE_LIMIT, "With CaptureWafEnabled: captures "
                                                 "per source address in any 5 minutes before WAF answers 429.", 10),
    }
    for function, reserved in RESERVED_CONCURRENCY.items():
        params[f"{function}ReservedConcurrency"] = _number(
            reserved, f"Reserved concurrency of {function} (-1: none).", -1)
    return params


def _stage_path(path: str) -> str:
    return "/" + path.replace("/", "~1")  # API Gateway: /v1/keys -> /~1v1~1keys


def method_settings() -> list[dict[str, Any]]:
    """Stage throttling: a default per method, stricter on every write method and on every
    method of the public capture route, and the health routes exempt from it (up to the
    account's own limit); the Chalice routes, as API Gateway names them."""
    from app import app

    def throttle(path: str, method: str, kind: str) -> dict[str, Any]:
        return {"ResourcePath": path, "HttpMethod": method,
                "ThrottlingRateLimit": {"Ref": f"{kind}RateLimit"},
                "ThrottlingBurstLimit": {"Ref": f"{kind}BurstLimit"}}

    settings = [throttle("/*", "*", "Stage")]
    for path in sorted(app.routes):
        for method in sorted(app.routes[path]):
            if defaults.route_limit(method, path) is None:  # health: the stage's limit does not apply
                settings.append(throttle(_stage_path(path), method, "Health"))
            elif path == defaults.HOOK_ROUTE:
                settings.append(throttle(_stage_path(path), method, "Capture"))
            elif method in defaults.WRITE_METHODS:
                settings.append(throttle(_stage_path(path), method, "Write"))
    return settings


def limits(template: dict[str, Any]) -> None:
    """The request limits, enforced by API Gateway before our code runs:

    - per key: usage plans. The API takes API keys from the authorizer (ApiKeySourceType
      AUTHORIZER, also as the body's x-amazon-apigateway-api-key-source), every keyed route
      requires one (Chalice's api_key_required), the authorizer names the caller's
      (usageIdentifierKey: auth.UsageAuthResponse, since Chalice's AuthResponse has no such
      field) and the keys service puts each key in DefaultUsagePlan or a plan of its own
      (chalicelib/services/usage_plans.py, given USAGE_PLAN_NAME). None of this is expressible
      in Chalice's config, hence here.
    - per route: stage method throttling (MethodSettings);
    - over a limit: 429 in our JSON error shape with Retry-After (GatewayResponses);
    - per function: reserved concurrency.
    """
    resources = template["Resources"]
    template["Parameters"].update(limit_parameters())
    api = resources["RestAPI"]["Properties"]
    api["ApiKeySourceType"] = "AUTHORIZER"
    api["DefinitionBody"] = {"x-amazon-apigateway-api-key-source": "AUTHORIZER"}
    api["MethodSettings"] = method_settings()
    api["GatewayResponses"].update({
        "THROTTLED": _gateway_429(defaults.THROTTLED_BODY, defaults.THROTTLED_RETRY_AFTER),
        "QUOTA_EXCEEDED": _gateway_429(defaults.QUOTA_BODY, defaults.QUOTA_RETRY_AFTER),
        "INVALID_API_KEY": _gateway_response(403, INVALID_API_KEY_BODY),
    })
    resources["DefaultUsagePlan"] = {"Type": "AWS::ApiGateway::UsagePlan", "Properties": {
        "UsagePlanName": DEFAULT_PLAN_NAME,
        "Description": "Limits of every API key without limits of its own.",
        "ApiStages": [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}],
        "Throttle": {"RateLimit": {"Ref": "KeyRateLimit"}, "BurstLimit": {"Ref": "KeyBurstLimit"}},
        "Quota": {"Limit": {"Ref": "KeyDailyQuota"}, "Period": "DAY"},
    }}
    # by name: a Ref would make a cycle (plan -> stage -> API -> API function -> plan)
    resources["APIHandler"]["Properties"]["Environment"]["Variables"]["USAGE_PLAN_NAME"] = DEFAULT_PLAN_NAME
    conditions = template.setdefault("Conditions", {})
    for function in RESERVED_CONCURRENCY:
        condition = f"{function}HasReservedConcurrency"
        conditions[condition] = {"Fn::Not": [{"Fn::Equals": [{"Ref": f"{function}ReservedConcurrency"}, -1]}]}
        resources[function]["Properties"]["ReservedConcurrentExecutions"] = {
            "Fn::If": [condition, {"Ref": f"{function}ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    template["Outputs"]["UsagePlanId"] = {"Value": {"Ref": "DefaultUsagePlan"}}
    capture_waf(template)


def capture_waf(template: dict[str, Any]) -> None:
    """The capture route's per-source-address limit across every Lambda instance (the function's
    own bucket is per instance): an AWS WAF web ACL on the stage, only with CaptureWafEnabled,
    whose one rate-based rule counts captures (/v1/hooks/... in the path, whatever the stage
    or base path) per client IP and answers 429 in our JSON shape. Everything else passes."""
    template.setdefault("Conditions", {})["CaptureWaf"] = {"Fn::Equals": [{"Ref": "CaptureWafEnabled"}, "true"]}
    retry = {"Name": "Retry-After", "Value": str(WAF_RETRY_AFTER)}
    # the security headers every answer carries (WAF sets Content-Type from the body's type)
    secure = [{"Name": name, "Value": value} for name, value in headers.API_HEADERS.items()]
    resources = template["Resources"]
    resources["CaptureWebAcl"] = {"Type": "AWS::WAFv2::WebACL", "Condition": "CaptureWaf", "Properties": {
        "Name": {"Fn::Sub": "${AWS::StackName}-captures"},
        "Description": "Limits inbox captures per source address, see parameter CaptureWafRequestsPer5Minutes.",
        "Scope": "REGIONAL",
        "DefaultAction": {"Allow": {}},
        "CustomResponseBodies": {"rate_limited": {"ContentType": "APPLICATION_JSON",
                                                  "Content": defaults.THROTTLED_BODY}},
        "Rules": [{
            "Name": "captures-per-source-address",
            "Priority": 0,
            "Statement": {"RateBasedStatement": {
                "Limit": {"Ref": "CaptureWafRequestsPer5Minutes"},
                "EvaluationWindowSec": WAF_WINDOW_SECONDS,
                "AggregateKeyType": "IP",
                "ScopeDownStatement": {"ByteMatchStatement": {
                    "FieldToMatch": {"UriPath": {}}, "PositionalConstraint": "CONTAINS",
                    "SearchString": defaults.HOOK_ROUTE.split("{", 1)[0],
                    "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}}},
            "Action": {"Block": {"CustomResponse": {"ResponseCode": 429, "CustomResponseBodyKey": "rate_limited",
                                                    "ResponseHeaders": [retry, *secure]}}},
            "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                 "MetricName": "CapturesPerSourceAddress"},
        }],
        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                             "MetricName": "CaptureWebAcl"},
    }}
    resources["CaptureWebAclAssociation"] = {"Type": "AWS::WAFv2::WebACLAssociation", "Condition": "CaptureWaf",
                                             "Properties": {
        "ResourceArn": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"},
                                          "::/restapis/", {"Ref": "RestAPI"}, "/stages/", {"Ref": "RestAPI.Stage"}]]},
        "WebACLArn": {"Fn::GetAtt": ["CaptureWebAcl", "Arn"]}}}


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
        "WebhookUrl": {"Type": "String", "Default": "",
                       "Description": "The URL of the webhook endpoint `default` (others: /v1/webhook-endpoints)."},
        "WebhookSecret": {"Type": "String", "NoEcho": True, "Default": "",
                          "Description": "whsec_... signing secret for webhooks."},
        "LogLevel": {"Type": "String", "Default": "INFO", "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"],
                     "Description": "Level of the functions' JSON logs."},
        # a String (a Number Ref reaches the environment as a number in moto's CloudFormation)
        "EndpointDisableAfterDays": {"Type": "String", "Default": "5", "AllowedPattern": r"^[0-9]+(\.[0-9]+)?$",
                                     "Description": "A webhook endpoint failing every attempt this long is disabled."},
        "DeliveryLagAlarmSeconds": {"Type": "Number", "Default": 900,
                                    "Description": "Alarm when webhooks reach receivers later than this (p99)."},
    })
    environment = {**ENVIRONMENT, "WEBHOOK_RETRY_SCHEDULE": ",".join(str(d) for d in schedule)}
    resources = template["Resources"]
    for name in FUNCTIONS:
        resources[name] = {"Properties": {"Environment": {"Variables": dict(environment)}}}
    # the endpoints' secrets key: only the functions that encrypt (the API) or decrypt (the
    # delivery function, which signs) are told it; the key policy lets only the role tagged
    # here decrypt (infra/resources.json), each role's policy file says what it may do
    for name in SECRETS_KEY_USERS:
        resources[name]["Properties"]["Environment"]["Variables"]["ENDPOINT_SECRETS_KEY_ARN"] = {
            "Fn::GetAtt": ["EndpointSecretsKey", "Arn"]}
    resources["DeliveryHandlerRole"] = {"Properties": {"Tags": [DECRYPT_TAG]}}
    resources["ApiHandlerRole"] = {"Properties": {"Tags": [INBOX_DECRYPT_TAG]}}
    resources[AUTHORIZER] = {"Properties": {"Environment": {"Variables": {
        "TABLE_NAME": {"Ref": "SessionTable"},
        **{k: v for k, v in ENVIRONMENT.items() if k.startswith("POWERTOOLS_")}}}}}
    resources["FeedbackHandler"]["Properties"]["Events"] = {"FeedbackHandlerDynamodbEventSource": {
        "Properties": _stream_source([
            {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["event"]}}}},
            # inbox captures to forward (chalicelib/inbox/forwarding.py)
            {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["capture"]},
                                                                "forwarding": {"BOOL": [True]}}}}])}}
    resources["AnalyticsHandler"]["Properties"]["Events"] = {"AnalyticsHandlerDynamodbEventSource": {
        "Properties": {**_stream_source([
            {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["event", "message", "manual"]}}}},
            {"eventName": ["REMOVE"], "dynamodb": {"OldImage": {"type": {"S": ["message", "manual", "session"]}}}},
            # a delivery status moving into or out of `failed` (the failed-deliveries count)
            {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"type": {"S": ["event"]},
                                                                "delivery_status": {"S": ["failed"]}}}},
            {"eventName": ["MODIFY", "REMOVE"], "dynamodb": {"OldImage": {"type": {"S": ["event"]},
                                                                          "delivery_status": {"S": ["failed"]}}}},
        ]),
            # Only for the shard id Lambda then passes (the function's checkpoint is per shard:
            # chalicelib/jobs/analytics.py); the window's state is unused. The longest window:
            # the fewest extra end-of-window invocations.
            "TumblingWindowInSeconds": ANALYTICS_WINDOW_SECONDS}}}
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
    limits(template)
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
