"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis),
against the local stack over HTTP: no 5xx, and every response matches its documented schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def schemathesis(api: str, report: Path, *options: str) -> tuple[int, str]:
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", f"{api}/v1/openapi.json", "--url", api, "--seed", "20261122",
         "--report", "junit", "--report-junit-path", str(report), *options],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
             "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    output = result.stdout + result.stderr
    print(output[-3000:])  # a report of what ran, for whoever reads the test log
    generated = re.search(r"(\d+) generated", output)
    assert result.returncode == 0, output[-6000:]
    return int(generated.group(1)) if generated else 0, output


def test_no_server_errors_and_responses_match_the_document(fuzz_stack, tmp_path) -> None:
    api = fuzz_stack["api"]
    generated, _ = schemathesis(
        api, tmp_path / "api.xml", "--max-examples", "30",
        "--header", f"Authorization: Bearer {fuzz_stack['api_key']}",
        "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                    "content_type_conformance",
        # a capture answers whatever its inbox's owner configured (any status, any content
        # type, 5xx included to test senders' retries): tests/api/test_api_inbox.py covers it
        "--exclude-path", "/docs", "--exclude-path-regex", "^/v1/hooks/")
    assert generated >= 1000
