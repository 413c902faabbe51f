"""schemathesis with every check (positive data acceptance included) against the local stack,
from the document alone: it finds nothing. Bounded: a few examples per operation, on one
worker. The coverage phase (every boundary of every constraint) runs on its own, over every
operation, with the three text patterns left out (tests/contract/schemathesis_coverage_hooks.py
says why: with them it takes minutes per operation).

tests/contract/schemathesis_hooks.py applies the rules the document states in words (a cursor
comes from a listing; steps 1..N) to the requests generated as valid, and excuses the refusals
the document marks as depending on stored state (`x-state-codes`); nothing else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def schemathesis(stack: dict, where: Path, hooks: str, *options: str) -> tuple[subprocess.CompletedProcess, str]:
    api = stack["api"]
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", f"{api}/v1/openapi.json", "--url", api, "--seed", "20261202",
         "--header", f"Authorization: Bearer {stack['api_key']}",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance,use_after_free", "--workers", "1",
         "--exclude-path", "/docs", "--report", "junit", "--report-junit-path", str(where / "st.xml"), *options],
        capture_output=True, text=True, timeout=600, cwd=where,
        env={**os.environ, "SCHEMATHESIS_HOOKS": hooks, "SCHEMATHESIS_KEY": stack["api_key"],
             "PYTHONPATH": str(ROOT)})
    output = result.stdout + result.stderr
    print(output[-3000:])
    return result, output


def test_schemathesis_with_every_check_finds_nothing(fuzz_stack, tmp_path) -> None:
    result, output = schemathesis(fuzz_stack, tmp_path, "tests.contract.schemathesis_hooks",
                                  "--phases", "examples,fuzzing,stateful", "--max-examples", "12")
    # the key worked throughout (an inbox's reads need its token too: a link from createInbox
    # carries it; without it they answer 401 token_required)
    refused = re.search(r"401 Unauthorized \(\d+ operations\):\n((?:  - .*\n)+)", output)
    assert refused is None or all("/v1/inboxes/{inbox_id}" in line for line in refused.group(1).splitlines()), output[-4000:]
    assert result.returncode == 0, output[-8000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) >= 300, output[-2000:]


def test_schemathesis_coverage_phase_over_every_operation_finds_nothing(fuzz_stack, tmp_path) -> None:
    result, output = schemathesis(fuzz_stack, tmp_path, "tests.contract.schemathesis_coverage_hooks",
                                  "--phases", "coverage")
    assert result.returncode == 0, output[-8000:]
    tested = re.search(r"Tested: (\d+)", output)
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    assert tested and selected and int(tested.group(1)) == int(selected.group(1)) >= 50, output[-2000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) >= 1500, output[-2000:]
