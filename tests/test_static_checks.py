"""Static security checks over our own code: bandit finds nothing of medium or high severity
in what ships (app.py, chalicelib/) or in the tooling (infra/, local/, cli/, tools/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bandit_finds_nothing_medium_or_high() -> None:
    bandit = Path(sys.executable).with_name("bandit")
    result = subprocess.run([str(bandit), "-q", "-r", "app.py", "chalicelib", "infra", "local", "cli", "tools", "-ll", "-f", "json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]]
    assert findings == [], "\n".join(findings)
    assert report["metrics"]["_totals"]["loc"] > 3000  # it really read the code
