"""schemathesis with every check (positive data acceptance included) against the local stack,
from the document alone: it finds nothing. Bounded: a few examples per operation, on one
worker; the coverage phase (which draws every boundary of every pattern, and the text
patterns are thousands of ranges long) is left to tests/api/test_schemathesis.py's narrower run.

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


def test_schemathesis_with_every_check_finds_nothing(fuzz_stack, tmp_path) -> None:
    api = fuzz_stack["api"]
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", f"{api}/v1/openapi.json", "--url", api, "--seed", "20261202",
         "--header", f"Authorization: Bearer {fuzz_stack['api_key']}",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance,use_after_free",
         "--phases", "examples,fuzzing,stateful", "--max-examples", "12", "--workers", "1",
         "--exclude-path", "/docs", "--report", "junit", "--report-junit-path", str(tmp_path / "st.xml")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract.schemathesis_hooks",
             "SCHEMATHESIS_KEY": fuzz_stack["api_key"],
             "PYTHONPATH": str(ROOT)})
    output = result.stdout + result.stderr
    print(output[-3000:])
    # the key worked throughout (an inbox's reads need its token too: a link from createInbox
    # carries it; without it they answer 401 token_required)
    refused = re.search(r"401 Unauthorized \(\d+ operations\):\n((?:  - .*\n)+)", output)
    assert refused is None or all("/v1/inboxes/{inbox_id}" in line for line in refused.group(1).splitlines()), output[-4000:]
    assert result.returncode == 0, output[-8000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) >= 300, output[-2000:]
