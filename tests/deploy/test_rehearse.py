"""The deploy rehearsal (`make rehearse`, infra/rehearsal/) passes, and its parts catch what
they are there to catch: a module missing from the zip, a zip without bytecode, a route the
key may not call, a record the filter refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.rehearsal.lambda_run import Function, InvocationFailed, filter_matches, policy_effect
from infra.rehearsal.rehearse import LAMBDA_PYTHON, NOT_CHECKED, ROOT, RehearsalFailed, Report, inventory

ARN = "arn:aws:execute-api:us-east-1:123456789012:api1/api"


@pytest.fixture(scope="module")
def environments() -> None:
    # the SAM translator's and the runtime's environments (cached: a no-op once built)
    subprocess.run(["make", "-s", "rehearse-envs"], cwd=ROOT, check=True)


@pytest.fixture(scope="module")
def rehearsal(environments: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("rehearsal")
    run = subprocess.run([sys.executable, "-m", "infra.rehearsal", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    return run, out


def test_the_deploy_rehearsal_passes(rehearsal: tuple[Any, Path]) -> None:
    run, _ = rehearsal
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-6000:]
    assert "Deploy rehearsal passed" in run.stdout
    for line in NOT_CHECKED:
        assert line in run.stdout


def _break_mapping(template: dict) -> None:
    mapping = next(r for r in template["Resources"].values()
                   if r["Type"] == "AWS::Lambda::EventSourceMapping" and "StartingPosition" in r["Properties"])
    del mapping["Properties"]["BisectBatchOnFunctionError"]


def _widen_a_role(template: dict) -> None:
    role = next(r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Resource"] = ["*"]


def _drop_a_function(template: dict) -> None:
    del template["Resources"][next(k for k, r in template["Resources"].items()
                                   if r["Type"] == "AWS::Lambda::Function")]


def _unretain_the_table(template: dict) -> None:
    table = next(r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")
    del table["DeletionPolicy"]


def _add_a_stage(template: dict) -> None:
    deployment = next(r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Deployment")
    deployment["Properties"]["StageName"] = "Stage"


def _limit_health_by_the_stage(template: dict) -> None:
    stage = next(r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage")
    settings = stage["Properties"]["MethodSettings"]
    settings[:] = [m for m in settings if not m["ResourcePath"].startswith("/~1health")]


def _make_the_waf_unconditional(template: dict) -> None:
    for resource in template["Resources"].values():
        if resource["Type"].startswith("AWS::WAFv2::"):
            del resource["Condition"]


@pytest.mark.parametrize("mistake, message", [
    (_break_mapping, "no bisect"), (_widen_a_role, "is not one of the stack's"),
    (_drop_a_function, "handlers in the template"), (_unretain_the_table, "would delete every session"),
    (_add_a_stage, "not just 'api'"), (_limit_health_by_the_stage, "read limit applies to a health route"),
    (_make_the_waf_unconditional, "not optional")])
def test_the_wiring_checks_catch_a_mistake_in_the_translated_template(
        rehearsal: tuple[Any, Path], mistake: Any, message: str) -> None:
    # GIVEN the template the rehearsal translated, with one thing wrong
    template = json.loads((rehearsal[1] / "translated.json").read_text())
    inventory(json.loads(json.dumps(template)), Report())  # as translated: it passes
    mistake(template)
    # THEN the inventory step says what
    with pytest.raises(RehearsalFailed, match=message):
        inventory(template, Report())


def test_the_readme_lists_what_the_rehearsal_cannot_check() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    for line in NOT_CHECKED:
        assert line in readme, line


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    task = tmp_path / "task"
    for name, text in files.items():
        (task / name).parent.mkdir(parents=True, exist_ok=True)
        (task / name).write_text(text)
    return task


def _configuration(handler: str) -> dict:
    return {"FunctionName": "probe", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:probe",
            "Handler": handler, "Runtime": "python3.11", "MemorySize": 128, "Timeout": 5,
            "Environment": {"Variables": {"GREETING": "hello"}}}


def test_an_import_the_zip_lacks_fails_the_cold_start(environments: None, tmp_path: Path) -> None:
    # pydantic is installed where the tests run, but not in Lambda's runtime
    task = _package(tmp_path, {"app.py": "import pydantic\n\ndef handler(event, context):\n    return 1\n"})
    with pytest.raises(InvocationFailed, match="No module named 'pydantic'"):
        Function.start("Probe", _configuration("app.handler"), LAMBDA_PYTHON, task,
                       "http://127.0.0.1:9", tmp_path)
    subprocess.run(["chmod", "-R", "u+w", str(task)], check=True)


def test_a_function_runs_read_only_with_its_environment_and_sources_without_bytecode_show(
        environments: None, tmp_path: Path) -> None:
    task = _package(tmp_path, {"app.py": "import os\n\ndef handler(event, context):\n"
                                         "    return [os.environ['GREETING'], event['n'] + 1,\n"
                                         "            context.get_remaining_time_in_millis() > 0]\n"})
    function = Function.start("Probe", _configuration("app.handler"), LAMBDA_PYTHON, task,
                              "http://127.0.0.1:9", tmp_path)
    try:
        assert function.read_only
        assert function.result({"n": 41}) == ["hello", 42, True]
        assert function.invoke({})["error"]["errorType"] == "KeyError"
        # no bytecode in this package: the rehearsal's check sees the compile
        assert function.stats()["compiled_from_source"] == ["app.py"]
    finally:
        function.stop()
        subprocess.run(["chmod", "-R", "u+w", str(task)], check=True)


def test_an_authorizer_policy_allows_only_its_routes() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke",
                             "Resource": [f"{ARN}/GET/v1/sessions/*", f"{ARN}/POST/v1/keys"]}]}
    assert policy_effect(policy, f"{ARN}/GET/v1/sessions/s-1") == "Allow"
    assert policy_effect(policy, f"{ARN}/POST/v1/manuals") == "Deny"
    denied = {"Statement": policy["Statement"] + [
        {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": f"{ARN}/POST/*"}]}
    assert policy_effect(denied, f"{ARN}/POST/v1/keys") == "Deny"


def test_event_filters_match_as_lambda_matches_them() -> None:
    pattern = json.loads('{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["event"]}}}}')
    event = {"eventName": "INSERT", "dynamodb": {"NewImage": {"type": {"S": "event"}, "n": {"N": "1"}}}}
    assert filter_matches(pattern, event)
    assert not filter_matches(pattern, {**event, "eventName": "MODIFY"})
    assert not filter_matches(pattern, {"eventName": "INSERT", "dynamodb": {"NewImage": {"type": {"S": "message"}}}})
    assert not filter_matches(pattern, {"eventName": "INSERT", "dynamodb": {}})
    with pytest.raises(NotImplementedError):  # a rule the rehearsal does not know is refused
        filter_matches({"eventName": [{"prefix": "IN"}]}, event)
