"""Steps 3 and 4 of the rehearsal (infra/rehearsal/rehearse.py): the stack created in moto, then a whole
session life driven through every function, each run from the read-only unzipped package.

What a user of the deployed service would notice is what is asserted: status codes, the
authorizer's 401/403, a session completed and another abandoned by the schedule, counters the
analytics function kept, and the webhooks the receiver got, each with a valid signature.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from chalicelib.api.headers import API_HEADERS
from infra.rehearsal.lambda_run import Function, Gateway, QueueSource, Receiver, StreamSource, drain
from infra.rehearsal.rehearse import (
    LAMBDA_PYTHON,
    ROOT,
    STACK,
    STAGE,
    Report,
    Stack,
    Wiring,
    check,
    create_stack,
    honour_disabled_stream_mappings,
    of_type,
    rehearsal_overrides,
)


def rehearse_functions(out: Path, archive: Path, translated: dict[str, Any], wiring: Wiring,
                       report: Report) -> None:
    import boto3

    from local.moto_server import AtomicMotoServer

    with ExitStack() as cleanup, warnings.catch_warnings():
        # moto says, once per alarm and call, that it skips AWS::CloudWatch::Alarm: the
        # report says it once
        warnings.filterwarnings("ignore", message="Tried to parse AWS::CloudWatch::Alarm")
        logging.getLogger("moto").setLevel(logging.ERROR)
        honour_disabled_stream_mappings()
        moto = AtomicMotoServer("127.0.0.1", 0).start()
        cleanup.callback(moto.stop)
        receiver = Receiver()
        cleanup.callback(receiver.stop)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        session = boto3.Session(region_name="us-east-1")
        stack = create_stack(session, moto.url, archive, translated,
                             {"WebhookUrl": receiver.url, "WebhookSecret": secret}, report)
        _apply_overrides(session, moto.url, stack, rehearsal_overrides(wiring), report)
        task = cleanup.enter_context(_unzipped(archive))
        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        functions: dict[str, Function] = {}
        for function_id in sorted(wiring.functions):
            functions[function_id] = Function.start(
                function_id, stack.configurations[function_id], LAMBDA_PYTHON, task, moto.url, logs)
            cleanup.callback(functions[function_id].stop)
        check(all(f.read_only for f in functions.values()), "the code directory was writable")
        _run_session(session, moto.url, translated, stack, wiring, functions, receiver, secret, report)
        _check_imports(functions, report)


def _apply_overrides(session: Any, endpoint: str, stack: Stack,
                     overrides: dict[str, dict[str, str]], report: Report) -> None:
    lam = session.client("lambda", endpoint_url=endpoint)
    for function_id, extra in overrides.items():
        config = stack.configurations[function_id]
        variables = {**config.get("Environment", {}).get("Variables", {}), **extra}
        lam.update_function_configuration(FunctionName=config["FunctionName"],
                                          Environment={"Variables": variables})
        stack.configurations[function_id] = lam.get_function_configuration(
            FunctionName=config["FunctionName"])
    report.add("overrides", "; ".join(f"{f}: {', '.join(f'{k}={v}' for k, v in e.items())}"
                                      for f, e in sorted(overrides.items())) + " (rehearsal only)")


@contextmanager
def _unzipped(archive: Path) -> Iterator[Path]:
    """The package as Lambda lays it out in /var/task (made read-only by Function.start)."""
    with tempfile.TemporaryDirectory(prefix="rehearsal-task-") as scratch:
        task = Path(scratch) / "task"
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(task)
        try:
            yield task
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(task)], check=False)


def _bootstrap_admin_key(endpoint: str) -> str:
    """The first admin key, as an operator makes it for a new deployment."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    run = subprocess.run([sys.executable, "-m", "cli", "keys", "bootstrap", "--stack", STACK,
                          "--endpoint-url", endpoint], capture_output=True, text=True, env=env, cwd=ROOT)
    check(run.returncode == 0 and run.stdout.strip(), f"keys bootstrap failed:\n{run.stderr}")
    return run.stdout.strip()


def _run_session(session: Any, endpoint: str, translated: dict[str, Any], stack: Stack,
                 wiring: Wiring, functions: dict[str, Function], receiver: Receiver, secret: str,
                 report: Report) -> None:
    from standardwebhooks.webhooks import Webhook

    api = next(iter(of_type(translated, "AWS::ApiGateway::RestApi")))
    account = stack.configurations[wiring.api_function]["FunctionArn"].split(":")[4]
    gateway = Gateway(translated["Resources"][api]["Properties"]["Body"], functions,
                      stack.physical[api], account, STAGE)
    streams = session.client("dynamodbstreams", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    sources: list[StreamSource | QueueSource] = [
        StreamSource(stack.mappings[m], functions[f], streams) for m, f in sorted(wiring.stream_mappings.items())]
    for mapping_id, function_id in sorted(wiring.queue_mappings.items()):
        mapping = stack.mappings[mapping_id]
        queue_url = sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[1])["QueueUrl"]
        sources.append(QueueSource(mapping, functions[function_id], sqs, queue_url))

    def expect(response: Any, status: int, what: str) -> Any:
        check(response.status == status, f"{what}: {response.status} {response.body}")
        answered = {k.lower(): v for k, v in response.headers.items()}
        for name, value in API_HEADERS.items():  # the function's answers and the gateway's own
            check(answered.get(name.lower()) == value, f"{what}: {name} is {answered.get(name.lower())!r}")
        return response.body

    admin = _bootstrap_admin_key(endpoint)
    minted = expect(gateway.request("POST", "/v1/keys", {"scopes": ["agent"], "name": "rehearsal"},
                                    key=admin), 201, "admin creates an agent key")
    agent = minted["key"]
    _check_usage_plan(session, endpoint, stack, minted["key_id"])
    _check_usage_plan(session, endpoint, stack, hashlib.sha256(admin.encode()).hexdigest()[:16])  # bootstrap's
    # the authorizer: a valid key is let through to the routes of its scopes only
    expect(gateway.request("GET", "/v1/sessions", key="ssk_" + "x" * 43), 401, "unknown key")
    expect(gateway.request("GET", "/v1/sessions"), 401, "no key")
    expect(gateway.request("POST", "/v1/manuals", {}, key=agent), 403, "agent key on an admin route")
    expect(gateway.request("GET", "/v1/no-such-route", key=agent), 404, "unknown route")
    authorizer = functions[next(iter(wiring.authorizers.values()))]
    bad = authorizer.invoke({"type": "TOKEN", "authorizationToken": "Bearer ssk_wrong",
                             "methodArn": f"arn:aws:execute-api:us-east-1:{account}:x/{STAGE}/GET/v1/sessions"})
    check(bad.get("error", {}).get("errorMessage") == "Unauthorized", f"bad key: {bad}")
    check(any(effect == "Allow" for _, _, effect in gateway.authorized), "no key was allowed")
    # the authorizer names the caller's API Gateway key: the usage plan that limits it
    check(f"ssk-usage-{minted['key_id']}" in gateway.usage_identifiers,
          f"the authorizer did not name the agent key's usage identifier: {gateway.usage_identifiers}")

    steps = [{"step_number": n, "title": f"Step {n}", "content": f"Do {n}."} for n in (1, 2)]
    expect(gateway.request("POST", "/v1/manuals", {"manual_id": "rehearsal-manual", "title": "Rehearsal",
                                                   "steps": steps}, key=admin), 201, "create a manual")
    for session_id in ("rehearsal-done", "rehearsal-idle"):
        expect(gateway.request("POST", "/v1/sessions", {"session_id": session_id, "user_id": "learner",
                                                        "manual_id": "rehearsal-manual"}, key=agent),
               201, f"start {session_id}")
    expect(gateway.request("POST", "/v1/sessions/rehearsal-done/messages",
                           {"user_id": "learner", "sender": "user", "message": "Hello"}, key=agent),
           201, "store a message")
    for step in (1, 2):
        result = expect(gateway.request("POST", "/v1/sessions/rehearsal-done/progress",
                                        {"user_id": "learner", "current_step": step, "step_status": "DONE"},
                                        key=agent), 200, f"step {step} DONE")
    check(result["session"]["status"] == "completed", f"not completed: {result}")
    expect(gateway.request("GET", "/health/ready"), 200, "readiness (table and queue reachable)")
    drain(sources)

    for function_id in sorted(set(wiring.schedules.values())):  # what EventBridge sends
        functions[function_id].result({
            "version": "0", "id": "rehearsal", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": account, "region": "us-east-1",
            "time": "2026-01-01T00:00:00Z", "resources": [], "detail": {}})
    idle = expect(gateway.request("GET", "/v1/sessions/rehearsal-idle", key=agent), 200, "idle session")
    check(idle["status"] == "abandoned", f"idle session is {idle['status']}")
    drain(sources)

    overview = expect(gateway.request("GET", "/v1/analytics/overview", key=agent), 200, "analytics")
    check(overview["sessions"]["by_status"].get("completed") == 1 and overview["messages"] == 1,
          f"the analytics function did not count the session: {overview}")
    events = expect(gateway.request("GET", "/v1/sessions/rehearsal-done/events", key=agent), 200, "events")
    statuses = [(e["event_type"], e.get("delivery_status")) for e in events["items"]]
    check(len(statuses) == 4 and all(s == "delivered" for _, s in statuses),
          f"the delivery function did not record its deliveries: {statuses}")

    verifier = Webhook(secret)
    received = [verifier.verify(w.body, w.headers) for w in receiver.received]  # raises if forged
    kinds = sorted((w["session_id"], w["event_type"], w.get("reason")) for w in received)
    expected = sorted([("rehearsal-done", "session_created", None),
                       ("rehearsal-done", "progress_update", None),
                       ("rehearsal-done", "progress_update", None),
                       ("rehearsal-done", "session_ended", "completed"),
                       ("rehearsal-idle", "session_created", None),
                       ("rehearsal-idle", "session_ended", "idle_timeout")])
    check(kinds == expected, f"webhooks received {kinds}, expected {expected}")
    filtered = sum(s.filtered_out for s in sources if isinstance(s, StreamSource))
    report.add("session", f"{len(gateway.authorized)} authorized API requests (401, 403, 404 as the "
                          f"gateway answers them); 2 sessions: one completed, one abandoned by the "
                          f"schedule; {sum(s.delivered for s in sources)} records and messages through "
                          f"the mappings ({filtered} filtered out); {len(received)} webhooks to "
                          f"{receiver.url}, every signature verified")


def _check_usage_plan(session: Any, endpoint: str, stack: Stack, key_id: str) -> None:
    """The key minted through the API function (from the zip) has its API Gateway key, in the
    stack's default usage plan: the keys service found the plan by its name and attached it."""
    apigw = session.client("apigateway", endpoint_url=endpoint)
    (plan_id,) = stack.usage_plans.values()
    values = {k["value"] for k in apigw.get_usage_plan_keys(usagePlanId=plan_id)["items"]}
    check(f"ssk-usage-{key_id}" in values, f"key {key_id} has no API Gateway key in the default usage plan: {values}")


def _check_imports(functions: dict[str, Function], report: Report) -> None:
    """Each function ran from bytecode alone, and leant on nothing of the runtime but boto3."""
    site = next((LAMBDA_PYTHON.parent.parent / "lib").glob("python3.*/site-packages"))
    provided = {p.name.removesuffix(".py") for p in site.iterdir()
                if not p.name.endswith(".dist-info") and p.name != "__pycache__"}
    rows, runtime_used = [], set()
    for function_id, function in sorted(functions.items()):
        stats = function.stats()
        runtime_used |= set(stats["outside"]) - {"__main__"}  # __main__: the harness itself
        check(not stats["compiled_from_source"],
              f"{function_id} compiled from source: {stats['compiled_from_source'][:5]}")
        check(runtime_used <= provided,
              f"{function_id} imported from outside the zip: {sorted(runtime_used - provided)}")
        check(function.invocations > 0, f"{function_id} was never invoked: give the session "
                                        "in infra/rehearsal/rehearse_session.py a step that needs it")
        rows.append(f"{function_id} ({function.configuration['Handler']}): cold import "
                    f"{function.import_ms:.0f} ms, {function.invocations} invocations")
    report.add("functions", "\n".join(rows))
    report.add("imports", "every handler imported from the read-only package with no module "
                          "compiled at run time; from the runtime only: "
                          + ", ".join(sorted(runtime_used)))
