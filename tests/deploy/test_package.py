"""The deploy path: `chalice package` merged with infra/, linted, references resolved, small."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.package import package

ROOT = Path(__file__).resolve().parents[2]


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
    for name, function in functions.items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["TABLE_NAME"] == {"Ref": "SessionTable"}
        if name != "ApiKeyAuthorizer":
            assert env["DELIVERY_QUEUE_URL"] == {"Ref": "DeliveryQueue"}
    schedule = functions["CleanupHandler"]["Properties"]["Events"]
    assert any(e["Type"] == "Schedule" for e in schedule.values())


def test_alarms_outputs_and_json_404(template: dict) -> None:
    alarms = {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"DeadLetterQueueNotEmptyAlarm", "DeliveryBacklogAlarm", "Api5xxAlarm", "WebhookDeadLetteredAlarm",
            "WebhookSafetyNetAlarm", "DeliveryLagAlarm", "FeedbackHandlerIteratorAgeAlarm",
            "AnalyticsHandlerIteratorAgeAlarm"} <= set(alarms)
    functions = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    for name in functions:  # every function: errors and throttles
        assert alarms[f"{name}ErrorsAlarm"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": name}}]
        assert alarms[f"{name}ThrottlesAlarm"]["MetricName"] == "Throttles"
    dead = alarms["WebhookDeadLetteredAlarm"]
    assert (dead["Namespace"], dead["MetricName"]) == ("SessionService", "WebhookDeadLettered")
    assert {"Name": "Source", "Value": "delivery"} in dead["Dimensions"]
    assert alarms["DeliveryLagAlarm"]["ExtendedStatistic"] == "p99"
    assert {"EndpointURL", "TableName", "DeliveryQueueUrl", "DeadLetterQueueUrl"} <= set(template["Outputs"])
    responses = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == 404


def test_api_gateways_own_answers_carry_the_security_headers(template: dict) -> None:
    from chalicelib.api.headers import API_HEADERS

    responses = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN",
            "AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"} <= set(responses)
    for kind, response in responses.items():
        headers = response["ResponseParameters"]["Headers"]
        # static values in single quotes, the policy's own quotes inside
        assert headers["Content-Security-Policy"] == "'sandbox; default-src 'none'; frame-ancestors 'none''", kind
        assert {name: headers[name] for name in API_HEADERS} == {n: f"'{v}'" for n, v in API_HEADERS.items()}, kind
    # the catch-alls keep API Gateway's own status and body (throttled, timeout, too large...)
    assert "StatusCode" not in responses["DEFAULT_4XX"] and "ResponseTemplates" not in responses["DEFAULT_5XX"]


def test_deployment_zip_is_small_and_ships_no_local_code(packaged: Path) -> None:
    archive = packaged / "deployment.zip"
    assert archive.stat().st_size < 5 * 1024 * 1024
    names = zipfile.ZipFile(archive).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "app.py" in tops and "chalicelib" in tops
    for forbidden in ("boto3", "botocore", "moto", "infra", "local", "cli", "tools", "tests", "bench", "pytest"):
        assert forbidden not in tops, forbidden


APIGATEWAY = "arn:${AWS::Partition}:apigateway:${AWS::Region}::"


def _statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_each_function_has_its_own_least_privilege_role(template: dict) -> None:
    """No `*` action and no `*` resource: every resource is one of ours by reference (an
    index wildcard under our table, and log groups under the stack's name, at most)."""
    resources = template["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    roles = {name: f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in functions.items()}
    from app import app

    handlers = 1 + len(app.event_sources) + len(app.builtin_auth_handlers)  # API + the rest
    assert len(set(roles.values())) == len(functions) == handlers, roles
    for role_name in roles.values():
        role = resources[role_name]
        assert role["Type"] == "AWS::IAM::Role"
        for statement in _statements(role):
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in statement["Action"]), statement
            for resource in statement["Resource"]:
                assert resource != "*" and isinstance(resource, dict), statement
                text = resource.get("Fn::Sub", "")
                assert text.startswith(("${SessionTable.", "${DeliveryQueue.", "${DeadLetterQueue.",
                                        "${EndpointSecretsKey.Arn}", "arn:${AWS::Partition}:logs:",
                                        APIGATEWAY)), statement
                if "*" in text:
                    assert text in ("${SessionTable.Arn}/index/*", "arn:${AWS::Partition}:logs:"
                                    "${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-*",
                                    # the keys' own usage plans get ids only when they are made
                                    f"{APIGATEWAY}/apikeys/*", f"{APIGATEWAY}/usageplans/*"), text
                if text.startswith(APIGATEWAY):
                    assert role_name == "ApiHandlerRole", "only the API function (the keys service) manages API keys"
    authorizer = {a for s in _statements(resources[roles["ApiKeyAuthorizer"]]) for a in s["Action"]}
    assert authorizer == {"dynamodb:GetItem", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
    feedback = {a for s in _statements(resources[roles["FeedbackHandler"]]) for a in s["Action"]}
    # it reads the stream, and the webhook endpoint list (one Query, cached per instance)
    assert not any(a.startswith("dynamodb:") and a not in (
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
        "dynamodb:ListStreams", "dynamodb:Query") for a in feedback), "the feedback function never writes the table"


PURPOSE = {"kms:EncryptionContext:purpose": "webhook-endpoint-secret"}
INBOX_PURPOSE = {"kms:EncryptionContext:purpose": "inbox-signing-secret"}


def test_endpoint_secrets_key_rotates_is_kept_and_is_used_only_as_each_function_needs(template: dict) -> None:
    """The customer-managed key of the endpoints' secrets: rotated yearly, retained with the
    table, an alias; only the API encrypts any endpoint's secret, only the delivery function
    decrypts (its role alone carries the tag the key policy asks for), each only with the
    encryption context of an endpoint secret; inbox signing secrets the API alone encrypts and
    decrypts (its role tagged for them), with an inbox's context."""
    resources = template["Resources"]
    key = resources["EndpointSecretsKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    alias = resources["EndpointSecretsKeyAlias"]["Properties"]
    assert alias["TargetKeyId"] == {"Ref": "EndpointSecretsKey"}
    assert alias["AliasName"] == {"Fn::Sub": "alias/${AWS::StackName}-endpoint-secrets"}
    # the key policy: the account administers the key but uses it only as below
    policy = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    admin = policy["AdministerTheKeyButNotUseIt"]["Action"]
    assert not {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant",
                "kms:*"} & set(admin)
    # (wildcards included: kms:Create* would cover CreateGrant, which hands out Decrypt)
    assert all(not a.startswith(("kms:ReE", "kms:Gen", "kms:Dec", "kms:Enc", "kms:Create*", "kms:CreateG"))
               for a in admin), admin
    assert policy["EncryptEndpointSecretsWhereIamAllows"]["Condition"] == {"StringEquals": {
        "kms:EncryptionContext:purpose": [PURPOSE["kms:EncryptionContext:purpose"], INBOX_PURPOSE["kms:EncryptionContext:purpose"]]}}
    decrypt = policy["DecryptEndpointSecretsOnlyTheDeliveryRole"]
    assert decrypt["Action"] == "kms:Decrypt"
    tag = decrypt["Condition"]["StringEquals"]
    assert tag == {**PURPOSE, "aws:PrincipalTag/session-service:endpoint-secrets": "decrypt"}
    inbox = policy["DecryptInboxSecretsOnlyTheApiRole"]
    assert inbox["Action"] == "kms:Decrypt"
    assert inbox["Condition"] == {"StringEquals": {**INBOX_PURPOSE, "aws:PrincipalTag/session-service:inbox-secrets": "decrypt"}}
    assert set(policy) == {"AdministerTheKeyButNotUseIt", "EncryptEndpointSecretsWhereIamAllows",
                           "DecryptEndpointSecretsOnlyTheDeliveryRole", "DecryptInboxSecretsOnlyTheApiRole"}

    def tagged(tag: str) -> list[str]:
        return [name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"
                and {"Key": tag, "Value": "decrypt"} in r["Properties"].get("Tags", [])]

    assert tagged("session-service:endpoint-secrets") == ["DeliveryHandlerRole"]
    assert tagged("session-service:inbox-secrets") == ["ApiHandlerRole"]
    # the roles: who may call what on the key, and under which conditions
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    roles = {name: f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in functions.items()}
    uses: dict[str, list[dict]] = {}
    for name, role in roles.items():
        uses[name] = [st for st in _statements(resources[role]) if any(a.startswith("kms:") for a in st["Action"])]
        for statement in uses[name]:
            assert statement["Resource"] == [{"Fn::Sub": "${EndpointSecretsKey.Arn}"}], statement
            purpose = statement["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"]
            owner = {PURPOSE["kms:EncryptionContext:purpose"]: "endpoint_id",
                     INBOX_PURPOSE["kms:EncryptionContext:purpose"]: "inbox_id"}[purpose]
            assert statement["Condition"]["ForAllValues:StringEquals"] == {
                "kms:EncryptionContextKeys": ["purpose", owner]}
            assert purpose == PURPOSE["kms:EncryptionContext:purpose"] or name == "APIHandler", (name, statement)
    actions = {name: sorted({a for st in found for a in st["Action"]}) for name, found in uses.items() if found}
    assert actions == {"APIHandler": ["kms:Decrypt", "kms:Encrypt"], "DeliveryHandler": ["kms:Decrypt", "kms:Encrypt"]}
    # the API decrypts inbox secrets only
    assert all(st["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"] == INBOX_PURPOSE[
        "kms:EncryptionContext:purpose"] for st in uses["APIHandler"] if "kms:Decrypt" in st["Action"])
    encrypt = next(st for st in uses["DeliveryHandler"] if st["Action"] == ["kms:Encrypt"])
    assert encrypt["Condition"]["StringEquals"]["kms:EncryptionContext:endpoint_id"] == "default"
    # the key's ARN reaches those two functions only
    told = {name for name, f in functions.items() if "ENDPOINT_SECRETS_KEY_ARN" in f["Properties"]["Environment"]["Variables"]}
    assert told == {"APIHandler", "DeliveryHandler"}
    assert functions["DeliveryHandler"]["Properties"]["Environment"]["Variables"]["ENDPOINT_SECRETS_KEY_ARN"] == {
        "Fn::GetAtt": ["EndpointSecretsKey", "Arn"]}
    assert template["Outputs"]["EndpointSecretsKeyArn"] == {"Value": {"Fn::GetAtt": ["EndpointSecretsKey", "Arn"]}}


def test_api_key_authorizer_and_its_error_bodies(template: dict) -> None:
    from chalicelib.api import auth

    responses = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert responses["UNAUTHORIZED"]["StatusCode"] == 401
    assert json.loads(responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"]) == json.loads(auth.UNAUTHORIZED_BODY)
    assert json.loads(responses["ACCESS_DENIED"]["ResponseTemplates"]["application/json"])["error"] == "forbidden"
    assert responses["AUTHORIZER_FAILURE"]["StatusCode"] == 503
    env = template["Resources"]["ApiKeyAuthorizer"]["Properties"]["Environment"]["Variables"]
    assert "WEBHOOK_SECRET" not in env and env["TABLE_NAME"] == {"Ref": "SessionTable"}, "no secrets"
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    scheme = body["securityDefinitions"]["api_key_authorizer"]
    assert scheme["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == auth.AUTH_TTL_SECONDS
    secured = {(path, method) for path, ops in body["paths"].items() for method, op in ops.items()
               if isinstance(op, dict) and op.get("security")}
    assert ("/v1/sessions", "post") in secured and ("/health", "get") not in secured


def test_the_dashboard_shows_the_metrics_the_functions_emit(template: dict) -> None:
    from chalicelib import observability

    board = template["Resources"]["OperationsDashboard"]["Properties"]
    body = json.loads(board["DashboardBody"]["Fn::Sub"])
    rows = [row for widget in body["widgets"] for row in widget["properties"]["metrics"]]
    ours = {row[1] for row in rows if row[0] == observability.NAMESPACE}
    assert ours >= {observability.WEBHOOK_ATTEMPTS, observability.WEBHOOK_LATENCY, observability.WEBHOOK_LAG,
                    observability.WEBHOOK_DEAD_LETTERED, observability.PROGRESS_ACCEPTED,
                    observability.PROGRESS_REPLAYED, observability.SESSIONS_ABANDONED,
                    observability.STREAM_BATCH_FAILURES}
    assert any("ProgressRejected" in json.dumps(row) for row in rows)  # by error code, via SEARCH
    # every ${...} in the body names a resource of the stack or a pseudo parameter
    import re

    names = set(re.findall(r"\$\{([^}.]+)", board["DashboardBody"]["Fn::Sub"]))
    assert names <= set(template["Resources"]) | {"AWS::Region"}, names


def test_functions_log_and_emit_metrics_under_one_service(template: dict) -> None:
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    for name, function in functions.items():
        if name == "ApiKeyAuthorizer":
            continue
        env = function["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "session-service", name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "SessionService", name


def test_limits_usage_plan_stage_throttles_429s_and_reserved_concurrency(template: dict) -> None:
    from app import app
    from chalicelib.domain import limits
    from infra.package import RESERVED_CONCURRENCY

    resources, parameters = template["Resources"], template["Parameters"]
    api = resources["RestAPI"]["Properties"]
    # per key: API keys from the authorizer, required on every keyed route, one default plan
    assert api["ApiKeySourceType"] == "AUTHORIZER"
    assert api["DefinitionBody"]["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
    for path, ops in api["DefinitionBody"]["paths"].items():
        for method, op in ops.items():
            keyed = app.routes[path][method.upper()].authorizer is not None
            assert ({"api_key": []} in op.get("security", [])) == keyed, (path, method)
    plan = resources["DefaultUsagePlan"]
    assert plan["Type"] == "AWS::ApiGateway::UsagePlan"
    assert plan["Properties"]["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
    assert plan["Properties"]["Throttle"] == {"RateLimit": {"Ref": "KeyRateLimit"}, "BurstLimit": {"Ref": "KeyBurstLimit"}}
    assert plan["Properties"]["Quota"] == {"Limit": {"Ref": "KeyDailyQuota"}, "Period": "DAY"}
    assert (parameters["KeyRateLimit"]["Default"], parameters["KeyBurstLimit"]["Default"],
            parameters["KeyDailyQuota"]["Default"]) == (limits.KEY_RATE_PER_SECOND, limits.KEY_BURST, limits.KEY_DAILY_QUOTA)
    # the keys service finds that plan by the name the template gives it
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["USAGE_PLAN_NAME"] == plan["Properties"]["UsagePlanName"]
    # per route: a stage default, stricter on every write method and on every capture method
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in api["MethodSettings"]}
    assert settings[("/*", "*")]["ThrottlingRateLimit"] == {"Ref": "StageRateLimit"}
    for path, methods in app.routes.items():
        for method in methods:
            setting = settings.get(("/" + path.replace("/", "~1"), method))
            if path.startswith("/health"):
                assert setting["ThrottlingRateLimit"] == {"Ref": "HealthRateLimit"}, (path, method)
            elif path == "/v1/hooks/{inbox_id}":
                assert setting["ThrottlingBurstLimit"] == {"Ref": "CaptureBurstLimit"}, method
            elif method in ("POST", "PUT", "PATCH", "DELETE"):
                assert setting["ThrottlingRateLimit"] == {"Ref": "WriteRateLimit"}, (path, method)
            else:
                assert setting is None, (path, method)
    assert parameters["CaptureRateLimit"]["Default"] <= parameters["WriteRateLimit"]["Default"] \
        <= parameters["StageRateLimit"]["Default"]
    # over a limit: our JSON, 429, Retry-After
    responses = api["GatewayResponses"]
    for kind, body in (("THROTTLED", limits.THROTTLED_BODY), ("QUOTA_EXCEEDED", limits.QUOTA_BODY)):
        assert responses[kind]["StatusCode"] == 429
        assert json.loads(responses[kind]["ResponseTemplates"]["application/json"]) == json.loads(body)
        assert int(responses[kind]["ResponseParameters"]["Headers"]["Retry-After"].strip("'")) >= 1
    # reserved concurrency: every function, a parameter each (-1: none)
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert set(RESERVED_CONCURRENCY) == functions
    for name in functions:
        reserved = resources[name]["Properties"]["ReservedConcurrentExecutions"]
        condition, value, otherwise = reserved["Fn::If"]
        assert value == {"Ref": f"{name}ReservedConcurrency"} and otherwise == {"Ref": "AWS::NoValue"}
        assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": f"{name}ReservedConcurrency"}, -1]}]}
    assert sum(parameters[f"{n}ReservedConcurrency"]["Default"] for n in functions) <= 900, "AWS keeps 100 unreserved"


def test_health_routes_are_exempt_from_the_stage_limit_and_in_no_usage_plan(template: dict) -> None:
    from app import app

    api = template["Resources"]["RestAPI"]["Properties"]
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in api["MethodSettings"]}
    health = [(path, method) for path in app.routes if path.startswith("/health") for method in app.routes[path]]
    assert {p for p, _ in health} == {"/health", "/health/live", "/health/ready"}
    parameters = template["Parameters"]
    # the account-level default throttle of a region (10,000/s, burst 5,000), far above the stage's
    assert (parameters["HealthRateLimit"]["Default"], parameters["HealthBurstLimit"]["Default"]) == (10_000, 5_000)
    assert parameters["HealthRateLimit"]["Default"] > parameters["StageRateLimit"]["Default"]
    for path, method in health:
        setting = settings["/" + path.replace("/", "~1"), method]
        assert (setting["ThrottlingRateLimit"], setting["ThrottlingBurstLimit"]) == (
            {"Ref": "HealthRateLimit"}, {"Ref": "HealthBurstLimit"}), (path, method)
        # no API key on them, so no usage plan counts them (plans apply to keyed methods only)
        operation = api["DefinitionBody"]["paths"][path][method.lower()]
        assert not operation.get("security"), (path, method)
    # a key in no usage plan (minted before them) gets our JSON 403 naming the upgrade step
    invalid = api["GatewayResponses"]["INVALID_API_KEY"]
    body = json.loads(invalid["ResponseTemplates"]["application/json"])
    assert invalid["StatusCode"] == 403 and body["error"] == "forbidden" and "sync-usage-plans" in body["message"]


def test_the_optional_capture_waf_limits_captures_per_source_address_on_the_stage(template: dict) -> None:
    from chalicelib.api.headers import API_HEADERS
    from chalicelib.domain import limits

    parameters, resources = template["Parameters"], template["Resources"]
    # off unless asked for (it costs money), and then per source address over 5 minutes, at the
    # function's own per-address rate
    assert parameters["CaptureWafEnabled"]["Default"] == "false"
    assert parameters["CaptureWafRequestsPer5Minutes"]["Default"] == limits.SOURCE_RATE_PER_SECOND * 300
    assert template["Conditions"]["CaptureWaf"] == {"Fn::Equals": [{"Ref": "CaptureWafEnabled"}, "true"]}
    acl, association = resources["CaptureWebAcl"], resources["CaptureWebAclAssociation"]
    assert acl["Type"] == "AWS::WAFv2::WebACL" and association["Type"] == "AWS::WAFv2::WebACLAssociation"
    assert acl["Condition"] == association["Condition"] == "CaptureWaf"
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    (rule,) = props["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP" and rate["Limit"] == {"Ref": "CaptureWafRequestsPer5Minutes"}
    assert rate["EvaluationWindowSec"] == 300
    match = rate["ScopeDownStatement"]["ByteMatchStatement"]
    assert (match["FieldToMatch"], match["PositionalConstraint"], match["SearchString"]) == (
        {"UriPath": {}}, "CONTAINS", "/v1/hooks/")
    # over it: the same 429 JSON as API Gateway's THROTTLED, with Retry-After and our headers
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = props["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON" and json.loads(body["Content"]) == json.loads(limits.THROTTLED_BODY)
    sent = {h["Name"]: h["Value"] for h in response["ResponseHeaders"]}
    assert int(sent["Retry-After"]) >= 1 and {k: sent[k] for k in API_HEADERS} == API_HEADERS
    # on the API's stage
    arn = association["Properties"]["ResourceArn"]["Fn::Join"][1]
    assert {"Ref": "RestAPI"} in arn and {"Ref": "RestAPI.Stage"} in arn and "/stages/" in arn
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["CaptureWebAcl", "Arn"]}
