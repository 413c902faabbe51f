"""The deploy path, rehearsed offline: `make rehearse` (python -m infra.rehearsal [OUT_DIR]).

1. Package (infra/package.py) and translate the SAM template with aws-sam-translator, as
   CloudFormation's transform would, after rewriting CodeUri as `aws cloudformation package`
   does; cfn-lint the translated template.
2. Check the inventory and wiring in the translated template against the Chalice app: one
   function per handler, each event source of the app bound the way the code relies on, the
   API's authorizer, gateway responses and stage, least-privilege roles, the retained table.
3. Create the stack in moto's CloudFormation (moto server on 127.0.0.1, the zip in a moto S3
   bucket) and check what it made against the template: functions, resolved environments,
   mappings on the created stream and queue, the schedule and its permission.
4. Run every function from the zip as Lambda would (infra/rehearsal/lambda_run.py): a whole session
   through API Gateway proxy events and the authorizer, the stream batches, the queue batch
   posting signed webhooks to a receiver on 127.0.0.1, and the scheduled cleanup.
5. Print a short report, with what moto could not check.

Where moto falls short of CloudFormation the rehearsal works around it in `for_moto()` and
`honour_disabled_stream_mappings()`, each gap named there; the real template is not changed.
Everything listens on 127.0.0.1 and stops at the end. Nothing here ships to Lambda.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
LAMBDA_PYTHON = ROOT / ".venv-lambda" / "bin" / "python"
STACK = "session-service-rehearsal"
BUCKET = "rehearsal-artifacts"
STAGE = "api"
MAX_ZIP_BYTES = 5 * 1024 * 1024
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}
# What this rehearsal cannot show; README.md's deploy section carries the same list.
NOT_CHECKED = (
    "API Gateway routing and authorizer caching (routes are matched here from the RestApi body, "
    "and every request asks the authorizer)",
    "IAM enforcement (moto allows every call; tests/deploy/test_iam.py checks each call against the "
    "policy files)",
    "event-source filtering and retries (filters are applied here by a matcher of our own; "
    "bisect, retry and record-age limits never trigger)",
    "the analytics mapping's tumbling window (the shard id and window are passed here as Lambda "
    "documents them and the state answer is checked; Lambda's end-of-window invocation is not made)",
    "alarms (moto's CloudFormation skips AWS::CloudWatch::Alarm)",
    "TTL (moto stores the setting and never expires an item)",
    "the security headers of API Gateway's own answers as it sends them (the GatewayResponses' "
    "values, the CSP's inner quotes included, are checked as the template writes them)",
    "request limits (moto stores usage plans, their API keys and stage throttles, and enforces "
    "none of them; the local stack enforces the same numbers)",
    "the capture WAF (moto's CloudFormation cannot create AWS::WAFv2 resources: the stack is made "
    "with CaptureWafEnabled=false, the web ACL is checked in the template only)",
)


class RehearsalFailed(AssertionError):
    pass


def check(condition: Any, message: str) -> None:
    if not condition:
        raise RehearsalFailed(message)


@dataclass
class Report:
    started: float = field(default_factory=time.monotonic)
    lines: list[tuple[str, str]] = field(default_factory=list)
    workarounds: list[str] = field(default_factory=list)

    def add(self, topic: str, text: str) -> None:
        self.lines.append((topic, text))
        print(f"  ok  {topic} ({time.monotonic() - self.started:.1f} s)", flush=True)

    def render(self) -> str:
        width = max(len(t) for t, _ in self.lines)
        out = [f"Deploy rehearsal passed in {time.monotonic() - self.started:.1f} s"]
        for topic, text in self.lines:
            first, *more = text.splitlines()
            out.append(f"  {topic:<{width}}  {first}")
            out += [f"  {'':<{width}}  {line}" for line in more]
        out.append("  moto gaps worked around (rehearsal only; the template is unchanged):")
        out += [f"    - {w}" for w in self.workarounds]
        out.append("  not checked here (check on the first deploy):")
        out += [f"    - {n}" for n in NOT_CHECKED]
        return "\n".join(out)


# ---- template helpers ----------------------------------------------------------------------


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def attribute_ref(node: Any) -> tuple[str, str] | None:
    """(logical id, attribute) that `node` stands for: Ref (attribute "Ref"), GetAtt, or a Sub
    that is nothing but one ${X.Attr}."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    (kind, value), = node.items()
    if kind == "Ref":
        return value, "Ref"
    if kind == "Fn::GetAtt":
        return tuple(value) if isinstance(value, list) else tuple(value.split(".", 1))  # type: ignore[return-value]
    if kind == "Fn::Sub" and isinstance(value, str):
        match = re.fullmatch(r"\$\{([\w:]+)(?:\.(\w+))?\}", value)
        if match:
            return match.group(1), match.group(2) or "Ref"
    return None


def sub_names(text: str) -> set[str]:
    return {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}


# ---- 1. package and translate --------------------------------------------------------------


def package_and_translate(out: Path, report: Report) -> tuple[Path, dict[str, Any]]:
    from infra.package import package

    packaged = package(out)
    archive = packaged / "deployment.zip"
    size = archive.stat().st_size
    check(size <= MAX_ZIP_BYTES, f"deployment.zip is {size / 1e6:.2f} MB (limit 5 MB)")
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
    sources = [n for n in names if n.endswith(".py")]
    missing = [n for n in sources if _pyc_name(n) not in set(names)]
    check(not missing, f"modules without bytecode in the zip: {missing[:5]}")
    report.add("package", f"deployment.zip {size / 1e6:.2f} MB (limit 5 MB), "
                          f"{len(sources)} modules, each with cpython-311 bytecode")

    # As `aws cloudformation package` does: the code goes to S3, CodeUri becomes its URI.
    sam = json.loads((packaged / "sam.json").read_text())
    key = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()  # the CLI names it so
    for function in of_type(sam, "AWS::Serverless::Function").values():
        function["Properties"]["CodeUri"] = f"s3://{BUCKET}/{key}"
    uploaded = out / "sam-uploaded.json"
    uploaded.write_text(json.dumps(sam, indent=2))
    translated_path = out / "translated.json"
    env = {"AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ.get("PATH", ""),
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    run = subprocess.run([str(SAM_PYTHON), str(Path(__file__).with_name("sam_translate.py")),
                          str(uploaded), str(translated_path)],
                         capture_output=True, text=True, env=env)
    check(run.returncode == 0, f"SAM translation failed:\n{run.stderr[-3000:]}")
    lint = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(translated_path)],
                          capture_output=True, text=True)
    check(lint.returncode == 0, f"cfn-lint on the translated template:\n{lint.stdout}{lint.stderr}")
    translated = json.loads(translated_path.read_text())
    kinds = collections.Counter(r["Type"] for r in translated["Resources"].values())
    report.add("translated", f"{len(sam['Resources'])} SAM resources -> "
                             f"{len(translated['Resources'])} CloudFormation resources; cfn-lint clean")
    report.add("resources", ", ".join(f"{n} {k.split('::', 1)[1]}" for k, n in sorted(kinds.items())))
    return archive, translated


def _pyc_name(source: str) -> str:
    parent, _, name = source.rpartition("/")
    return f"{parent + '/' if parent else ''}__pycache__/{name[:-3]}.{sys.implementation.cache_tag}.pyc"


# ---- 2. inventory and wiring ---------------------------------------------------------------


@dataclass
class Wiring:
    """What the translated template says runs where."""

    functions: dict[str, str]  # logical id -> Handler
    stream_mappings: dict[str, str] = field(default_factory=dict)  # mapping id -> function id
    queue_mappings: dict[str, str] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)  # rule id -> function id
    api_function: str = ""
    authorizers: dict[str, str] = field(default_factory=dict)  # authorizer name -> function id


def app_handlers() -> tuple[Any, set[str]]:
    """The Chalice app and the handler strings its functions need, as Chalice derives them:
    the REST API (app.app), each authorizer, each event source, each plain Lambda function."""
    import app as app_module

    app = app_module.app
    handlers = {f"app.{_app_variable(app_module)}"} if app.routes else set()
    handlers |= {a.handler_string for a in app.builtin_auth_handlers}
    handlers |= {e.handler_string for e in app.event_sources}
    handlers |= {f.handler_string for f in app.pure_lambda_functions}
    return app, handlers


def _app_variable(module: Any) -> str:
    return next(name for name, value in vars(module).items() if value is module.app)


def inventory(template: dict[str, Any], report: Report) -> Wiring:
    app, handlers = app_handlers()
    functions = {k: v["Properties"] for k, v in of_type(template, "AWS::Lambda::Function").items()}
    by_handler = collections.defaultdict(list)
    for logical_id, props in functions.items():
        by_handler[props["Handler"]].append(logical_id)
    check(set(by_handler) == handlers,
          f"handlers in the template {sorted(by_handler)} != the app's {sorted(handlers)}")
    check(all(len(ids) == 1 for ids in by_handler.values()), f"one function per handler: {dict(by_handler)}")
    wiring = Wiring({k: p["Handler"] for k, p in functions.items()})
    function_of = {h: ids[0] for h, ids in by_handler.items()}
    _event_sources(template, app, function_of, wiring)
    _api(template, app, function_of, wiring)
    _roles(template, functions)
    _table(template)
    _limits(template, app, functions)
    report.add("limits", "usage plan on the stage, API keys from the authorizer and required on "
                         "every keyed route; stage throttles (default, writes, captures; health "
                         "exempt); 429 gateway responses with Retry-After; a JSON 403 for a key in "
                         "no plan; the optional capture WAF on the stage; reserved concurrency per "
                         "function")
    report.add("wiring", f"{len(functions)} functions, one per handler; "
                         f"{len(wiring.stream_mappings)} stream and {len(wiring.queue_mappings)} "
                         f"queue mappings, {len(wiring.schedules)} schedule, "
                         f"{len(wiring.authorizers)} authorizer, stage '{STAGE}'; "
                         "every role scoped to the stack's resources; table retained, PITR on")
    return wiring


def _mapping_for(template: dict[str, Any], function_id: str) -> tuple[str, dict[str, Any]]:
    found = [(k, m["Properties"]) for k, m in of_type(template, "AWS::Lambda::EventSourceMapping").items()
             if m["Properties"]["FunctionName"] == {"Ref": function_id}]
    check(len(found) == 1, f"{function_id}: expected one event source mapping, found {len(found)}")
    return found[0]


def _event_sources(template: dict[str, Any], app: Any, function_of: dict[str, str],
                   wiring: Wiring) -> None:
    resources = template["Resources"]
    for source in app.event_sources:
        function_id = function_of[source.handler_string]
        kind = type(source).__name__
        if kind in ("DynamoDBEventConfig", "SQSEventConfig"):
            mapping_id, mapping = _mapping_for(template, function_id)
            target, attribute = attribute_ref(mapping["EventSourceArn"]) or ("", "")
            expected = ("AWS::DynamoDB::Table", "StreamArn") if kind == "DynamoDBEventConfig" \
                else ("AWS::SQS::Queue", "Arn")
            check((resources.get(target, {}).get("Type"), attribute) == expected,
                  f"{mapping_id}: source {mapping['EventSourceArn']} is not a {expected}")
            check(mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
                  f"{mapping_id}: partial batch responses are off")
            check(mapping.get("BatchSize") == source.batch_size,
                  f"{mapping_id}: batch size {mapping.get('BatchSize')} != the app's {source.batch_size}")
            check(mapping.get("Enabled", True) is True, f"{mapping_id}: disabled")
            if kind == "DynamoDBEventConfig":
                check(mapping.get("StartingPosition") == source.starting_position,
                      f"{mapping_id}: starting position")
                check(mapping.get("BisectBatchOnFunctionError") is True, f"{mapping_id}: no bisect")
                check(0 < mapping.get("MaximumRetryAttempts", -1) <= 10000,
                      f"{mapping_id}: retries must be bounded (a poison record blocks its shard)")
                check(60 <= mapping.get("MaximumRecordAgeInSeconds", -1) <= 604800,
                      f"{mapping_id}: the record age limit must be set")
                if mapping.get("TumblingWindowInSeconds"):  # for the shard id: a checkpoint per shard
                    check(mapping.get("ParallelizationFactor", 1) == 1 and
                          0 < mapping["TumblingWindowInSeconds"] <= 900,
                          f"{mapping_id}: a per-shard checkpoint needs one batch per shard at a time")
                filters = mapping.get("FilterCriteria", {}).get("Filters", [])
                check(filters and all(isinstance(json.loads(f["Pattern"]), dict) for f in filters),
                      f"{mapping_id}: filters missing or not JSON objects")
                wiring.stream_mappings[mapping_id] = function_id
            else:
                wiring.queue_mappings[mapping_id] = function_id
        elif kind == "ScheduledEventConfig":
            expression = source.schedule_expression
            text = expression if isinstance(expression, str) else expression.to_string()
            rules = [k for k, r in of_type(template, "AWS::Events::Rule").items()
                     if r["Properties"].get("ScheduleExpression") == text and any(
                         t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
                         for t in r["Properties"]["Targets"])]
            check(len(rules) == 1, f"{function_id}: no rule '{text}' targets it")
            permitted = [p["Properties"] for p in of_type(template, "AWS::Lambda::Permission").values()
                         if p["Properties"]["FunctionName"] == {"Ref": function_id}
                         and p["Properties"]["Principal"] == "events.amazonaws.com"
                         and attribute_ref(p["Properties"].get("SourceArn")) == (rules[0], "Arn")]
            check(permitted, f"{function_id}: EventBridge may not invoke it from {rules[0]}")
            wiring.schedules[rules[0]] = function_id
        else:
            raise RehearsalFailed(f"{source.handler_string}: the rehearsal does not know event "
                                  f"sources of kind {kind}: teach inventory() and run_session()")


def _api(template: dict[str, Any], app: Any, function_of: dict[str, str], wiring: Wiring) -> None:
    apis = of_type(template, "AWS::ApiGateway::RestApi")
    if not app.routes:
        check(not apis, "a RestApi without routes")
        return
    check(len(apis) == 1, f"one RestApi expected, found {sorted(apis)}")
    api_id, api = next(iter(apis.items()))
    body = api["Properties"]["Body"]
    wiring.api_function = function_of[f"app.{_app_variable(sys.modules['app'])}"]
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            operation = body["paths"].get(path, {}).get(method.lower())
            check(operation, f"{method} {path} is not in the RestApi body")
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            check(f"${{{wiring.api_function}.Arn}}" in uri, f"{method} {path} is not sent to the API function")
            secured = bool(operation.get("security"))
            check(secured == (entry.authorizer is not None), f"{method} {path}: authorizer {secured}")
    for authorizer in app.builtin_auth_handlers:
        function_id = function_of[authorizer.handler_string]
        settings = body["securityDefinitions"][authorizer.name]["x-amazon-apigateway-authorizer"]
        check(settings["type"] == "token", f"{authorizer.name}: not a TOKEN authorizer")
        check(settings["authorizerResultTtlInSeconds"] == authorizer.ttl_seconds,
              f"{authorizer.name}: TTL {settings['authorizerResultTtlInSeconds']}")
        check(f"${{{function_id}.Arn}}" in settings["authorizerUri"]["Fn::Sub"],
              f"{authorizer.name}: authorizerUri does not name {function_id}")
        wiring.authorizers[authorizer.name] = function_id
    for function_id in {wiring.api_function, *wiring.authorizers.values()}:
        check(any(p["Properties"]["Principal"] == "apigateway.amazonaws.com"
                  and api_id in json.dumps(p["Properties"].get("SourceArn"))
                  for p in of_type(template, "AWS::Lambda::Permission").values()
                  if attribute_ref(p["Properties"]["FunctionName"])[0] == function_id),  # type: ignore[index]
              f"{function_id}: API Gateway may not invoke it")
    responses = body.get("x-amazon-apigateway-gateway-responses", {})
    for kind, status in (("UNAUTHORIZED", 401), ("ACCESS_DENIED", 403),
                         ("MISSING_AUTHENTICATION_TOKEN", 404), ("AUTHORIZER_FAILURE", 503)):
        response = responses.get(kind, {})
        check(response.get("statusCode") == str(status), f"gateway response {kind} is not {status}")
        check("error" in json.loads(response["responseTemplates"]["application/json"]),
              f"gateway response {kind}: not our JSON error body")
        check(response["responseParameters"].get("gatewayresponse.header.Content-Type")
              == "'application/json'", f"gateway response {kind}: not JSON")
    from chalicelib.api.headers import API_HEADERS

    for kind in ("UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "AUTHORIZER_FAILURE",
                 "DEFAULT_4XX", "DEFAULT_5XX"):
        parameters = responses.get(kind, {}).get("responseParameters", {})
        for name, value in API_HEADERS.items():
            check(parameters.get(f"gatewayresponse.header.{name}") == f"'{value}'",
                  f"gateway response {kind}: no {name}: {value}")
    # stages come from Stage resources and from a Deployment's StageName (SAM's "Stage")
    stages = [r["Properties"]["StageName"] for r in template["Resources"].values()
              if r["Type"] in ("AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment")
              and r["Properties"]["RestApiId"] == {"Ref": api_id} and "StageName" in r["Properties"]]
    check(stages == [STAGE], f"the API's stages are {stages}, not just '{STAGE}'")
    check(f"/{STAGE}/" in json.dumps(template["Outputs"].get("EndpointURL")), "EndpointURL is not the stage's")


def _limits(template: dict[str, Any], app: Any, functions: dict[str, dict[str, Any]]) -> None:
    """The request limits API Gateway enforces before our code (infra/package.py `limits`)."""
    from chalicelib.domain.limits import HOOK_ROUTE, WRITE_METHODS, route_limit

    api_id, api = next(iter(of_type(template, "AWS::ApiGateway::RestApi").items()))
    check(api["Properties"].get("ApiKeySourceType") == "AUTHORIZER", "API keys are not taken from the authorizer")
    body = api["Properties"]["Body"]
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            keyed = {"api_key": []} in body["paths"][path][method.lower()].get("security", [])
            check(keyed == (entry.authorizer is not None), f"{method} {path}: apiKeyRequired is {keyed}")
    stages = of_type(template, "AWS::ApiGateway::Stage")
    check(len(stages) == 1, f"one stage expected: {sorted(stages)}")
    stage_id, stage = next(iter(stages.items()))
    plans = of_type(template, "AWS::ApiGateway::UsagePlan")
    check(len(plans) == 1, f"one usage plan expected: {sorted(plans)}")
    plan = next(iter(plans.values()))["Properties"]
    check(plan["ApiStages"] == [{"ApiId": {"Ref": api_id}, "Stage": {"Ref": stage_id}}],
          f"the usage plan is not on the stage: {plan['ApiStages']}")
    check(plan["Throttle"].keys() == {"RateLimit", "BurstLimit"} and plan["Quota"]["Period"] == "DAY",
          "the usage plan has no per-key rate, burst and daily quota")
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in stage["Properties"].get("MethodSettings", [])}
    check(("/*", "*") in settings, "no stage-wide throttle")
    for path, methods in app.routes.items():
        for method in methods:
            if path == HOOK_ROUTE or method in WRITE_METHODS:
                setting = settings.get(("/" + path.replace("/", "~1"), method), {})
                check({"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(setting),
                      f"{method} {path}: no throttle of its own")
            if route_limit(method, path) is None:  # health: exempt from the stage's read limit
                setting = settings.get(("/" + path.replace("/", "~1"), method), {})
                check({"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(setting),
                      f"{method} {path}: the stage's read limit applies to a health route")
    responses = body.get("x-amazon-apigateway-gateway-responses", {})
    for kind in ("THROTTLED", "QUOTA_EXCEEDED"):
        response = responses.get(kind, {})
        check(response.get("statusCode") == "429", f"gateway response {kind} is not 429")
        check("error" in json.loads(response["responseTemplates"]["application/json"]), f"{kind}: not our JSON")
        check(response["responseParameters"].get("gatewayresponse.header.Retry-After"), f"{kind}: no Retry-After")
    check(responses.get("INVALID_API_KEY", {}).get("statusCode") == "403",
          "a key in no usage plan (minted before them) does not get our JSON 403")
    _capture_waf(template, stage_id, HOOK_ROUTE)
    for function_id, props in functions.items():
        reserved = props.get("ReservedConcurrentExecutions")
        check(isinstance(reserved, dict) and "Fn::If" in reserved, f"{function_id}: no reserved concurrency")


def _capture_waf(template: dict[str, Any], stage_id: str, hook_route: str) -> None:
    """The optional WAF web ACL (CaptureWafEnabled): only under its condition, one rate-based
    rule per client IP scoped to the capture path, answering 429, associated with the stage."""
    acls, associations = of_type(template, "AWS::WAFv2::WebACL"), of_type(template, "AWS::WAFv2::WebACLAssociation")
    check(len(acls) == 1 and len(associations) == 1, f"one capture web ACL expected: {sorted(acls)}")
    (acl_id, acl), = acls.items()
    association = next(iter(associations.values()))
    condition = template.get("Conditions", {}).get(acl.get("Condition", ""))
    check(condition == {"Fn::Equals": [{"Ref": "CaptureWafEnabled"}, "true"]}
          and association.get("Condition") == acl["Condition"], "the web ACL is not optional (CaptureWafEnabled)")
    (rule,) = acl["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    match = rate["ScopeDownStatement"]["ByteMatchStatement"]
    check(rate["AggregateKeyType"] == "IP" and match["FieldToMatch"] == {"UriPath": {}}
          and match["SearchString"] == hook_route.split("{", 1)[0], "the WAF rule does not count captures per IP")
    check(rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429, "the WAF rule does not answer 429")
    arn = json.dumps(association["Properties"]["ResourceArn"])
    check(json.dumps({"Ref": stage_id}) in arn and "/stages/" in arn
          and association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]},
          f"the web ACL is not on the stage: {arn}")


def _roles(template: dict[str, Any], functions: dict[str, dict[str, Any]]) -> None:
    """Each function has a role of its own, assumable by Lambda only, whose every statement
    names resources of this stack by reference: no `*`, no literal ARN."""
    known = set(template["Resources"]) | PSEUDO
    roles = {}
    for function_id, props in functions.items():
        role, attribute = attribute_ref(props.get("Role")) or ("", "")
        check(attribute == "Arn" and template["Resources"][role]["Type"] == "AWS::IAM::Role",
              f"{function_id}: no explicit role of the stack's (the managed-policy map is empty)")
        roles[function_id] = role
    check(len(set(roles.values())) == len(roles), f"functions share roles: {roles}")
    for role_id in roles.values():
        props = template["Resources"][role_id]["Properties"]
        principals = [s["Principal"] for s in props["AssumeRolePolicyDocument"]["Statement"]]
        check(principals == [{"Service": "lambda.amazonaws.com"}], f"{role_id}: assumed by {principals}")
        check(not props.get("ManagedPolicyArns"), f"{role_id}: managed policies attached")
        for policy in props["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                check(all("*" not in a for a in statement["Action"]), f"{role_id}: wildcard action")
                for resource in statement["Resource"]:
                    text = resource.get("Fn::Sub") if isinstance(resource, dict) else None
                    check(isinstance(text, str) and sub_names(text) and sub_names(text) <= known,
                          f"{role_id}: resource {resource} is not one of the stack's")
                    check("*" not in text or re.search(
                        r"(\}/index/|\$\{AWS::StackName\}-|::/apikeys/|::/usageplans/)\*$", text),  # type: ignore[arg-type]
                          f"{role_id}: wildcard beyond an index, the stack's log groups or API keys and "
                          f"usage plans (whose ids exist only once made): {text}")


def _table(template: dict[str, Any]) -> None:
    for table_id, table in of_type(template, "AWS::DynamoDB::Table").items():
        check(table.get("DeletionPolicy") == "Retain" and table.get("UpdateReplacePolicy") == "Retain",
              f"{table_id}: deleting or replacing the stack would delete every session")
        pitr = table["Properties"].get("PointInTimeRecoverySpecification", {})
        check(pitr.get("PointInTimeRecoveryEnabled") is True, f"{table_id}: PITR is off")


# ---- 3. the stack in moto ------------------------------------------------------------------


def for_moto(template: dict[str, Any], report: Report) -> dict[str, Any]:
    """The translated template with moto 5.2's CloudFormation gaps worked around."""
    moto = json.loads(json.dumps(template))
    resources = moto["Resources"]
    for api in of_type(moto, "AWS::ApiGateway::RestApi").values():
        # gap: a RestApi without Name makes create_stack answer 500 (AWS takes the name from
        # the Body's info.title)
        api["Properties"].setdefault("Name", api["Properties"]["Body"]["info"]["title"])
    report.workarounds.append("RestApi without Name -> moto answers 500: Name set to the body's title")
    dropped = [k for k, r in resources.items()
               if r["Type"] in ("AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage")]
    for logical_id in dropped:
        # gap: moto ignores the RestApi Body, so the Deployment fails with "doesn't contain any
        # methods" (and the Stage needs the Deployment); both are left out
        del resources[logical_id]
    report.workarounds.append(f"RestApi Body ignored -> Deployment fails 'doesn't contain any "
                              f"methods': {', '.join(sorted(dropped))} left out")
    for mapping in of_type(moto, "AWS::Lambda::EventSourceMapping").values():
        # gap: an enabled mapping makes moto run the function itself (in Docker): on every
        # stream write, then emptying the shard, and on every SQS send. The rehearsal is the
        # poller here, so moto's mappings are created disabled (see below for streams).
        mapping["Properties"]["Enabled"] = False
    report.workarounds.append("event source mappings make moto invoke the function in Docker "
                              "(and empty the stream's shard): created disabled, moto made to "
                              "honour that for streams, the rehearsal polls instead")
    report.workarounds.append("AWS::CloudWatch::Alarm is not supported: moto skips the alarms")
    waf = [k for k, r in resources.items() if r["Type"].startswith("AWS::WAFv2::")]
    for logical_id in waf:
        # gap: moto's CloudFormation has no AWS::WAFv2 resources. They exist only with
        # CaptureWafEnabled=true; the rehearsal runs with the default (false), as CloudFormation
        # would then create neither, and checks them in the template (_capture_waf)
        check(resources[logical_id].get("Condition") == "CaptureWaf", f"{logical_id}: not optional")
        del resources[logical_id]
    if waf:
        report.workarounds.append(f"AWS::WAFv2 is not supported by moto's CloudFormation: rehearsed with "
                                  f"CaptureWafEnabled=false (the default), {', '.join(sorted(waf))} "
                                  "checked in the template only")
    for logical_id in list(of_type(moto, "AWS::ApiGateway::UsagePlan")):
        # gap: moto's CloudFormation has no AWS::ApiGateway::UsagePlan (its API Gateway API has
        # usage plans): the rehearsal makes it through the API once the stack is up
        del resources[logical_id]
        for output_id, output in list(moto.get("Outputs", {}).items()):
            if attribute_ref(output["Value"]) == (logical_id, "Ref"):
                del moto["Outputs"][output_id]
        report.workarounds.append(f"AWS::ApiGateway::UsagePlan is not supported by moto's "
                                  f"CloudFormation: {logical_id} made through moto's API Gateway API")
    return moto


def create_usage_plans(session: Any, endpoint: str, template: dict[str, Any], stack: Stack,
                       parameters: dict[str, str]) -> dict[str, str]:
    """What CloudFormation would make of each usage plan (see for_moto): logical id -> id."""
    apigw = session.client("apigateway", endpoint_url=endpoint)
    made = {}
    for logical_id, resource in of_type(template, "AWS::ApiGateway::UsagePlan").items():
        props = resource["Properties"]
        value = lambda v: _resolve(template, stack, parameters, v)
        made[logical_id] = apigw.create_usage_plan(
            name=value(props["UsagePlanName"]), description=props.get("Description", ""),
            apiStages=[{"apiId": value(s["ApiId"]), "stage": STAGE} for s in props["ApiStages"]],
            throttle={"rateLimit": float(value(props["Throttle"]["RateLimit"])),
                      "burstLimit": int(value(props["Throttle"]["BurstLimit"]))},
            quota={"limit": int(value(props["Quota"]["Limit"])), "period": props["Quota"]["Period"]})["id"]
    return made


def honour_disabled_stream_mappings() -> None:
    """gap: moto honours Enabled=false for SQS mappings but not for DynamoDB stream mappings,
    which it invokes on every write, then drops the shard's records. Skip disabled ones."""
    from moto.dynamodb.models.table import StreamShard

    if getattr(StreamShard.add, "rehearsal", False):
        return
    original = StreamShard.add

    def add(self: Any, old: Any, new: Any) -> None:
        mappings = self.table.lambda_event_source_mappings
        self.table.lambda_event_source_mappings = {a: m for a, m in mappings.items() if m.enabled}
        try:
            original(self, old, new)
        finally:
            self.table.lambda_event_source_mappings = mappings

    add.rehearsal = True  # type: ignore[attr-defined]
    StreamShard.add = add  # type: ignore[method-assign]


@dataclass
class Stack:
    outputs: dict[str, str]
    physical: dict[str, str]  # logical id -> physical id
    configurations: dict[str, dict[str, Any]]  # function logical id -> its configuration
    mappings: dict[str, dict[str, Any]]  # mapping logical id -> moto's mapping
    concurrency: dict[str, int | None] = field(default_factory=dict)  # function -> reserved
    usage_plans: dict[str, str] = field(default_factory=dict)  # logical id -> id (see for_moto)


def create_stack(session: Any, endpoint: str, archive: Path, translated: dict[str, Any],
                 parameters: dict[str, str], report: Report) -> Stack:
    from botocore.config import Config

    s3 = session.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=BUCKET)
    function = next(iter(of_type(translated, "AWS::Lambda::Function").values()))
    s3.upload_file(str(archive), BUCKET, function["Properties"]["Code"]["S3Key"])
    cfn = session.client("cloudformation", endpoint_url=endpoint)
    moto_template = for_moto(translated, report)
    started = time.monotonic()
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(moto_template),
                     Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    while (stack := cfn.describe_stacks(StackName=STACK)["Stacks"][0])["StackStatus"] == "CREATE_IN_PROGRESS":
        check(time.monotonic() - started < 60, "stack creation did not finish in 60 s")
        time.sleep(0.2)
    check(stack["StackStatus"] == "CREATE_COMPLETE",
          f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                for r in cfn.describe_stack_resources(StackName=STACK)["StackResources"]
                if "LogicalResourceId" in r}
    expected = {k for k, r in moto_template["Resources"].items() if r["Type"] != "AWS::CloudWatch::Alarm"}
    check(expected <= set(physical), f"not created by moto: {sorted(expected - set(physical))}")
    lam = session.client("lambda", endpoint_url=endpoint)
    configurations = {k: lam.get_function_configuration(FunctionName=physical[k])
                      for k in of_type(translated, "AWS::Lambda::Function")}
    concurrency = {k: lam.get_function_concurrency(FunctionName=physical[k]).get("ReservedConcurrentExecutions")
                   for k in configurations}
    mappings = {k: lam.get_event_source_mapping(UUID=physical[k])
                for k in of_type(translated, "AWS::Lambda::EventSourceMapping")}
    created = Stack(outputs, physical, configurations, mappings, concurrency)
    _check_functions(translated, created, parameters)
    _check_mappings(translated, created)
    _check_schedules(session, endpoint, translated, created)
    _check_secrets_key(session, endpoint, created)
    created.usage_plans = create_usage_plans(session, endpoint, translated, created, parameters)
    report.add("stack", f"{STACK}: CREATE_COMPLETE in moto in {time.monotonic() - started:.1f} s, "
                        f"{len(physical)} resources; functions, environments, mappings and "
                        "schedule as the template says")
    return created


def _check_secrets_key(session: Any, endpoint: str, created: Stack) -> None:
    """The webhook endpoints' secrets key as KMS holds it: enabled, symmetric, rotating, its
    alias, and the ARN the API and delivery functions were given (moto's CloudFormation
    creates AWS::KMS::Key and AWS::KMS::Alias; it does not enforce the key policy)."""
    kms = session.client("kms", endpoint_url=endpoint)
    arn = created.outputs["EndpointSecretsKeyArn"]
    key_id = arn.rsplit("/", 1)[1]
    # moto's CloudFormation keeps the KeyPolicy as an object, and DescribeKey then fails (500):
    # the key is checked by using it, as the functions do, instead
    context = {"purpose": "webhook-endpoint-secret", "endpoint_id": "default"}
    blob = kms.encrypt(KeyId=arn, Plaintext=b"rehearsal", EncryptionContext=context)["CiphertextBlob"]
    opened = kms.decrypt(CiphertextBlob=blob, KeyId=arn, EncryptionContext=context)["Plaintext"]
    check(opened == b"rehearsal", "the secrets key does not decrypt what it encrypted")
    check(kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"], "the secrets key does not rotate")
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    check(aliases.get(f"alias/{STACK}-endpoint-secrets") == key_id, f"the secrets key's aliases: {aliases}")
    told = {name for name, c in created.configurations.items()
            if c.get("Environment", {}).get("Variables", {}).get("ENDPOINT_SECRETS_KEY_ARN") == arn}
    check(told == {"APIHandler", "DeliveryHandler"}, f"functions given the secrets key: {sorted(told)}")


def _resolve(template: dict[str, Any], stack: Stack, parameters: dict[str, str], value: Any) -> str:
    """A template value as CloudFormation resolves it: literal, parameter, a resource's Ref,
    or an attribute the stack also outputs."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str) and not attribute_ref(value):
        text = value["Fn::Sub"].replace("${AWS::StackName}", STACK).replace("${AWS::Region}", "us-east-1")
        check("${" not in text, f"cannot resolve {value}")
        return text
    ref = attribute_ref(value)
    check(ref is not None, f"cannot resolve {value}")
    name, attribute = ref  # type: ignore[misc]
    if attribute == "Ref" and name in template.get("Parameters", {}):
        return parameters.get(name, str(template["Parameters"][name].get("Default", "")))
    if attribute == "Ref":
        return stack.physical[name]
    for output_id, output in template.get("Outputs", {}).items():
        if attribute_ref(output["Value"]) == ref:
            return stack.outputs[output_id]
    raise RehearsalFailed(f"{name}.{attribute} is used but no stack output shows its value")


def _check_functions(template: dict[str, Any], stack: Stack, parameters: dict[str, str]) -> None:
    for function_id, resource in of_type(template, "AWS::Lambda::Function").items():
        props, config = resource["Properties"], stack.configurations[function_id]
        for key in ("Handler", "Runtime", "MemorySize", "Timeout"):
            check(config[key] == props[key], f"{function_id}: {key} {config[key]} != {props[key]}")
        check(config["Role"].endswith("/" + stack.physical[attribute_ref(props["Role"])[0]]),  # type: ignore[index]
              f"{function_id}: role {config['Role']}")
        expected = {k: _resolve(template, stack, parameters, v)
                    for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        actual = config.get("Environment", {}).get("Variables", {})
        check(actual == expected, f"{function_id}: environment {actual} != {expected}")
        condition, reserved, _ = props["ReservedConcurrentExecutions"]["Fn::If"]
        check(condition in template.get("Conditions", {}), f"{function_id}: no condition {condition}")
        wanted = int(_resolve(template, stack, parameters, reserved))
        check(stack.concurrency.get(function_id) == wanted,
              f"{function_id}: reserved concurrency {stack.concurrency.get(function_id)} != {wanted}")


def _check_mappings(template: dict[str, Any], stack: Stack) -> None:
    for mapping_id, resource in of_type(template, "AWS::Lambda::EventSourceMapping").items():
        props, created = resource["Properties"], stack.mappings[mapping_id]
        source = attribute_ref(props["EventSourceArn"])
        outputs = [k for k, o in template["Outputs"].items() if attribute_ref(o["Value"]) == source]
        check(outputs, f"{mapping_id}: no stack output shows its source {source}")
        check(created["EventSourceArn"] == stack.outputs[outputs[0]],
              f"{mapping_id}: reads {created['EventSourceArn']}, not {outputs[0]}")
        function_id = attribute_ref(props["FunctionName"])[0]  # type: ignore[index]
        check(created["FunctionArn"] == stack.configurations[function_id]["FunctionArn"],
              f"{mapping_id}: invokes {created['FunctionArn']}")
        for key, value in props.items():
            if key not in ("EventSourceArn", "FunctionName", "Enabled"):
                check(created.get(key) == value, f"{mapping_id}: {key} {created.get(key)} != {value}")


def _check_schedules(session: Any, endpoint: str, template: dict[str, Any], stack: Stack) -> None:
    events = session.client("events", endpoint_url=endpoint)
    lam = session.client("lambda", endpoint_url=endpoint)
    for rule_id, resource in of_type(template, "AWS::Events::Rule").items():
        rule = events.describe_rule(Name=stack.physical[rule_id])
        check(rule["ScheduleExpression"] == resource["Properties"]["ScheduleExpression"],
              f"{rule_id}: schedule {rule['ScheduleExpression']}")
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            function_id = attribute_ref(next(t["Arn"] for t in resource["Properties"]["Targets"]
                                             if t["Id"] == target["Id"]))[0]  # type: ignore[index]
            config = stack.configurations[function_id]
            check(target["Arn"] == config["FunctionArn"], f"{rule_id}: targets {target['Arn']}")
            policy = json.loads(lam.get_policy(FunctionName=config["FunctionName"])["Policy"])
            check(any(s["Principal"] == {"Service": "events.amazonaws.com"} and
                      s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") == rule["Arn"]
                      for s in policy["Statement"]), f"{function_id}: the rule may not invoke it")


# ---- 4. the functions, run from the zip ----------------------------------------------------


def rehearsal_overrides(wiring: Wiring) -> dict[str, dict[str, str]]:
    """Environment set for the rehearsal only, through moto's UpdateFunctionConfiguration:
    the receiver is on 127.0.0.1, which the SSRF guard refuses on AWS; the scheduled cleanup
    gets an idle timeout of 0 so that its run has an idle session to close."""
    overrides: dict[str, dict[str, str]] = {}
    for function_id in wiring.queue_mappings.values():
        overrides.setdefault(function_id, {})["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    for function_id in wiring.schedules.values():
        overrides.setdefault(function_id, {})["SESSION_IDLE_TIMEOUT_SECONDS"] = "0"
    return overrides


def main(out: Path) -> int:
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "rehearsal",
                       "AWS_SECRET_ACCESS_KEY": "rehearsal"})
    for python in (SAM_PYTHON, LAMBDA_PYTHON):
        if not python.exists():
            print(f"{python.parent.parent.name} is missing: run `make rehearse-envs`", file=sys.stderr)
            return 2
    from infra.rehearsal.lambda_run import InvocationFailed

    report = Report()
    out.mkdir(parents=True, exist_ok=True)
    print("Rehearsing the deploy path (package, translate, moto CloudFormation, run the zip):")
    try:
        archive, translated = package_and_translate(out, report)
        wiring = inventory(translated, report)
        from infra.rehearsal.rehearse_session import rehearse_functions

        rehearse_functions(out, archive, translated, wiring, report)
    except (RehearsalFailed, InvocationFailed) as failed:
        print(f"\nREHEARSAL FAILED: {failed}", file=sys.stderr)
        return 1
    print("\n" + report.render())
    return 0
