"""Running the deployed functions as Lambda would, for infra/rehearsal/rehearse.py.

- `Function`: one function's process (infra/rehearsal/lambda_harness.py under the interpreter that has
  only what the runtime provides), importing its template Handler from the read-only unzipped
  package, with the environment moto holds for it. One cold start, then warm invocations.
- `Gateway`: what API Gateway does in front of the API function, read from the RestApi body of
  the translated template: route matching on its paths, the TOKEN authorizer and its policy,
  the proxy event, and the gateway responses for 401/403/404/503. Authorizer answers are not
  cached (API Gateway caches them for the TTL): every request asks the authorizer.
- `StreamSource` and `QueueSource`: what an event source mapping does: read the real stream or
  queue in moto, apply the mapping's filters, hand Lambda-shaped batches to the function and
  honour its partial batch response.
- `Receiver`: a webhook receiver on 127.0.0.1 that records what it is sent.
Nothing here ships to Lambda.
"""

from __future__ import annotations

import fnmatch
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local.runner import lambda_sqs_record, lambda_stream_record, windowed

HARNESS = Path(__file__).with_name("lambda_harness.py")
REGION = "us-east-1"


class InvocationFailed(AssertionError):
    """A function answered with an error where the rehearsal expected a result."""


# ---- functions -----------------------------------------------------------------------------


def read_only_command(task_root: Path, argv: list[str]) -> list[str]:
    """`argv`, run where `task_root` is read-only, as Lambda's /var/task is. Files are made
    non-writable in any case; root ignores that, so as root the directory is also mounted
    read-only in a mount namespace of the process's own (gone when it exits)."""
    subprocess.run(["chmod", "-R", "a-w", str(task_root)], check=True)
    if os.geteuid() != 0:
        return argv
    if shutil.which("unshare") is None:
        raise RuntimeError("as root the code directory is made read-only with unshare(1), "
                           "which is missing: run as another user or install util-linux")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
            str(task_root), *argv]


def lambda_environment(configuration: dict[str, Any], endpoint: str) -> dict[str, str]:
    """The variables Lambda sets for a function, its own (as moto holds them), and moto's
    endpoint; nothing inherited from this process."""
    name = configuration["FunctionName"]
    return {
        **configuration.get("Environment", {}).get("Variables", {}),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration["MemorySize"]),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "rehearsal",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{configuration['Runtime']}",
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_SESSION_TOKEN": "rehearsal",
        # no profile or config file of the machine running this may leak in
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL": endpoint,
        "REHEARSAL_FUNCTION_ARN": configuration["FunctionArn"],
        "_HANDLER": configuration["Handler"],
        "TZ": ":UTC", "LANG": "en_US.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


@dataclass
class Function:
    """A running function: `invoke()` it with an event, as Lambda's Invoke does."""

    logical_id: str
    configuration: dict[str, Any]
    process: subprocess.Popen[str]
    log: Path
    import_ms: float = 0.0
    read_only: bool = False
    invocations: int = 0
    _answers: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, logical_id: str, configuration: dict[str, Any], python: Path,
              task_root: Path, endpoint: str, logs: Path) -> Function:
        log = logs / f"{logical_id}.log"
        argv = [str(python), "-I", str(HARNESS), str(task_root), configuration["Handler"]]
        with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                read_only_command(task_root, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, text=True, env=lambda_environment(configuration, endpoint))
        function = cls(logical_id, configuration, process, log)
        threading.Thread(target=function._read, daemon=True).start()
        ready = function._answer(timeout=60)
        if not ready.get("ready"):
            function.stop()
            raise InvocationFailed(f"{logical_id}: importing {configuration['Handler']} failed: "
                                   f"{ready.get('error')}\n{function.log_tail()}")
        function.import_ms, function.read_only = ready["import_ms"], ready["read_only"]
        return function

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(json.loads(line))
        self._answers.put(None)

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise InvocationFailed(f"{self.logical_id}: no answer in {timeout:.0f} s\n"
                                   f"{self.log_tail()}") from None
        if answer is None:
            raise InvocationFailed(f"{self.logical_id}: the process exited "
                                   f"({self.process.wait()})\n{self.log_tail()}")
        return answer

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """{"result": ...} or {"error": {"errorMessage", "errorType", ...}}, as Lambda answers."""
        timeout_ms = self.configuration["Timeout"] * 1000
        self._send({"event": event, "request_id": str(uuid.uuid4()), "timeout_ms": timeout_ms})
        self.invocations += 1
        return self._answer(timeout=timeout_ms / 1000 + 5)

    def result(self, event: dict[str, Any]) -> Any:
        answer = self.invoke(event)
        if "error" in answer:
            raise InvocationFailed(f"{self.logical_id} failed: {answer['error']['errorType']}: "
                                   f"{answer['error']['errorMessage']}\n"
                                   f"{''.join(answer['error']['stackTrace'])}\n{self.log_tail()}")
        return answer["result"]

    def stats(self) -> dict[str, Any]:
        self._send({"stats": True})
        return self._answer(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text() if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()  # the harness's loop ends: the process exits
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---- API Gateway ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class _Route:
    template: str  # e.g. /v1/sessions/{session_id}
    pattern: re.Pattern[str]
    operations: dict[str, dict[str, Any]]  # method (lower case) -> swagger operation


class Gateway:
    """API Gateway's part of a request, from the RestApi body of the translated template."""

    def __init__(self, body: dict[str, Any], functions: dict[str, Function], api_id: str,
                 account: str, stage: str) -> None:
        self.functions = functions
        self.api_id, self.account, self.stage = api_id, account, stage
        self.authorizers = body.get("securityDefinitions", {})
        self.responses = body.get("x-amazon-apigateway-gateway-responses", {})
        self.routes = [
            _Route(path, re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(path)) + "$"),
                   {m: op for m, op in ops.items() if isinstance(op, dict)})
            for path, ops in body["paths"].items()]
        # most specific first: a literal segment wins over a parameter, as in API Gateway
        self.routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        self.authorized: list[tuple[str, str, str]] = []  # (key, method arn, Allow | Deny)
        self.usage_identifiers: set[str] = set()  # what the authorizer named for usage plans

    def request(self, method: str, path: str, body: Any = None, key: str | None = None,
                query: dict[str, str] | None = None) -> Response:
        route, values = self._match(path)
        operation = route.operations.get(method.lower()) if route else None
        if route is None or operation is None:  # API Gateway: 403 Missing Authentication Token
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN")
        method_arn = (f"arn:aws:execute-api:{REGION}:{self.account}:{self.api_id}/{self.stage}/"
                      f"{method.upper()}{path}")
        headers = {"Content-Type": "application/json", "Host": f"{self.api_id}.execute-api"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        authorizer_context: dict[str, Any] | None = None
        names = [name for requirement in operation.get("security", []) for name in requirement]
        for name in names:
            if "x-amazon-apigateway-authorizer" not in self.authorizers[name]:
                continue  # the API key requirement: checked below
            authorizer_context = self._authorize(name, headers, method_arn)
            if isinstance(authorizer_context, Response):
                return authorizer_context
        usage_key = authorizer_context.pop("usageIdentifierKey", None) if authorizer_context else None
        if any("x-amazon-apigateway-authorizer" not in self.authorizers[n] for n in names):
            # apiKeyRequired with the key source AUTHORIZER: API Gateway takes the key the
            # authorizer named (usageIdentifierKey) and refuses the request without one
            if not usage_key:
                raise AssertionError(f"{method} {path} requires an API key and the authorizer named none")
        function = self._integration(operation)
        event = self._proxy_event(method.upper(), path, route, values, headers, body, query,
                                  authorizer_context)
        answer = function.result(event)
        payload = answer.get("body")
        if payload and not answer.get("isBase64Encoded"):
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
        return Response(answer["statusCode"], answer.get("headers") or {}, payload)

    def _match(self, path: str) -> tuple[_Route | None, dict[str, str]]:
        for route in self.routes:
            match = route.pattern.match(path)
            if match:
                names = re.findall(r"\{([^}]+)\}", route.template)
                return route, dict(zip(names, match.groups(), strict=True))
        return None, {}

    def _function_in(self, uri: Any) -> Function:
        text = uri["Fn::Sub"] if isinstance(uri, dict) else uri
        logical_id = re.search(r"\$\{(\w+)\.Arn\}", text).group(1)  # type: ignore[union-attr]
        return self.functions[logical_id]

    def _integration(self, operation: dict[str, Any]) -> Function:
        return self._function_in(operation["x-amazon-apigateway-integration"]["uri"])

    def _authorize(self, name: str, headers: dict[str, str],
                   method_arn: str) -> dict[str, Any] | Response:
        definition = self.authorizers[name]
        settings = definition["x-amazon-apigateway-authorizer"]
        token = headers.get(definition["name"])
        if token is None:  # API Gateway answers 401 without calling the authorizer
            return self._gateway_response("UNAUTHORIZED")
        answer = self._function_in(settings["authorizerUri"]).invoke(
            {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn})
        if "error" in answer:
            unauthorized = answer["error"]["errorMessage"] == "Unauthorized"
            return self._gateway_response("UNAUTHORIZED" if unauthorized else "AUTHORIZER_FAILURE")
        result = answer["result"]
        effect = policy_effect(result["policyDocument"], method_arn)
        self.authorized.append((token, method_arn, effect))
        if "usageIdentifierKey" in result:
            self.usage_identifiers.add(result["usageIdentifierKey"])
        if effect != "Allow":
            return self._gateway_response("ACCESS_DENIED")
        return {"principalId": result["principalId"], **result.get("context", {}),
                "usageIdentifierKey": result.get("usageIdentifierKey")}

    def _gateway_response(self, kind: str) -> Response:
        response = self.responses[kind]
        # static values are quoted once: 'sandbox; default-src 'none'' keeps its inner quotes
        headers = {k.removeprefix("gatewayresponse.header."): v[1:-1]
                   for k, v in response.get("responseParameters", {}).items()}
        return Response(int(response["statusCode"]), headers,
                        json.loads(response["responseTemplates"]["application/json"]))

    def _proxy_event(self, method: str, path: str, route: _Route, values: dict[str, str],
                     headers: dict[str, str], body: Any, query: dict[str, str] | None,
                     authorizer: dict[str, Any] | None) -> dict[str, Any]:
        """A REST API (v1) proxy integration event, as API Gateway sends it."""
        now = time.time()
        return {
            "resource": route.template, "path": path, "httpMethod": method,
            "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
            "pathParameters": values or None, "stageVariables": None,
            "requestContext": {
                "resourcePath": route.template, "httpMethod": method,
                "path": f"/{self.stage}{path}", "stage": self.stage,
                "accountId": self.account, "apiId": self.api_id, "protocol": "HTTP/1.1",
                "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(now * 1000),
                "domainName": headers["Host"], "resourceId": "rehearsal",
                "identity": {"sourceIp": "127.0.0.1", "userAgent": "rehearsal"},
                **({"authorizer": authorizer} if authorizer is not None else {}),
            },
            "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
        }


def policy_effect(document: dict[str, Any], method_arn: str) -> str:
    """IAM evaluation of an authorizer's policy for one execute-api ARN: an explicit Deny
    wins, then any Allow; nothing matching is a Deny."""
    effects = set()
    for statement in document["Statement"]:
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            if fnmatch.fnmatchcase(method_arn, resource):
                effects.add(statement["Effect"])
    return "Deny" if "Deny" in effects or "Allow" not in effects else "Allow"


# ---- event sources -------------------------------------------------------------------------


def filter_matches(pattern: dict[str, Any], value: Any) -> bool:
    """Lambda's event filtering, for the patterns this template uses (nested objects and
    lists of exact values). Other rules (prefix, numeric, anything-but, exists) are refused
    rather than guessed: teach this function first."""
    if not isinstance(value, dict):
        return False
    for key, expected in pattern.items():
        if isinstance(expected, dict):
            if not filter_matches(expected, value.get(key)):
                return False
        elif isinstance(expected, list) and all(
                e is None or isinstance(e, (str, int, float, bool)) for e in expected):
            if key not in value or value[key] not in expected:
                return False
        else:
            raise NotImplementedError(f"filter rule not rehearsed: {key}: {expected!r}")
    return True


def _wanted(mapping: dict[str, Any], record: dict[str, Any]) -> bool:
    filters = (mapping.get("FilterCriteria") or {}).get("Filters", [])
    return not filters or any(filter_matches(json.loads(f["Pattern"]), record) for f in filters)


def _failures(result: Any) -> list[str]:
    return [f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])]


@dataclass
class StreamSource:
    """One DynamoDB stream event source mapping: its own position in each shard."""

    mapping: dict[str, Any]
    function: Function
    streams: Any  # a dynamodbstreams client
    iterators: dict[str, str | None] = field(default_factory=dict)
    delivered: int = 0
    filtered_out: int = 0

    def poll(self) -> int:
        """One read of every shard; returns how many records the function was handed."""
        arn = self.mapping["EventSourceArn"]
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            if shard["ShardId"] not in self.iterators:
                self.iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"],
                    ShardIteratorType=self.mapping["StartingPosition"])["ShardIterator"]
        handed = 0
        for shard_id, iterator in self.iterators.items():
            if iterator is None:
                continue
            page = self.streams.get_records(ShardIterator=iterator, Limit=self.mapping["BatchSize"])
            self.iterators[shard_id] = page.get("NextShardIterator")
            records = [lambda_stream_record(r, arn) for r in page.get("Records", [])]
            batch = [r for r in records if _wanted(self.mapping, r)]
            self.filtered_out += len(records) - len(batch)
            if batch:
                event: dict[str, Any] = {"Records": batch}
                window = self.mapping.get("TumblingWindowInSeconds")
                if window:  # Lambda adds the shard and the window, and wants a state back
                    event.update(windowed(shard_id, arn, window))
                answer = self.function.result(event)
                if window and not isinstance((answer or {}).get("state"), dict):
                    raise InvocationFailed(f"{self.function.logical_id}: a tumbling window's "
                                           f"invocation answered no state: {answer}")
                failed = _failures(answer)
                if failed:
                    raise InvocationFailed(f"{self.function.logical_id}: batch items failed: {failed}")
                handed += len(batch)
        self.delivered += handed
        return handed


@dataclass
class QueueSource:
    """One SQS event source mapping: receive, invoke, delete what succeeded."""

    mapping: dict[str, Any]
    function: Function
    sqs: Any
    queue_url: str
    delivered: int = 0

    def poll(self) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.mapping["BatchSize"],
            WaitTimeSeconds=0, AttributeNames=["All"], MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [lambda_sqs_record(m, self.mapping["EventSourceArn"]) for m in messages]}
        failed = _failures(self.function.result(event))
        if failed:
            raise InvocationFailed(f"{self.function.logical_id}: messages failed: {failed}\n"
                                   f"{self.function.log_tail()}")
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.delivered += len(messages)
        return len(messages)


def drain(sources: list[StreamSource | QueueSource], rounds: int = 50) -> None:
    """Poll every source until none has anything left (stream -> queue -> receiver)."""
    for _ in range(rounds):
        if sum(source.poll() for source in sources) == 0:
            return
    raise InvocationFailed(f"event sources still busy after {rounds} rounds")


# ---- webhook receiver ----------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers 200 to every POST on 127.0.0.1 and keeps what it was sent."""

    def __init__(self) -> None:
        received: list[Webhook] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(Webhook({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
