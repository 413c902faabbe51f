"""Static checks over our own code: bandit finds nothing of medium or high severity in what
ships (app.py, chalicelib/) or in the tooling (infra/, local/, cli/, tools/); ruff finds
nothing anywhere; mypy --strict finds nothing in what ships (settings in pyproject.toml)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bandit_finds_nothing_medium_or_high() -> None:
    bandit = Path(sys.executable).with_name("bandit")
    result = subprocess.run([str(bandit), "-q", "-r", "app.py", "chalicelib", "infra", "local", "cli", "tools", "-ll", "-f", "json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]]
    assert findings == [], "\n".join(findings)
    assert report["metrics"]["_totals"]["loc"] > 3000  # it really read the code


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name(name)), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    result = _tool("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-5000:]


def test_mypy_strict_finds_nothing_in_what_ships() -> None:
    # pyproject.toml: strict, on app.py and chalicelib/ (the shipped code)
    result = _tool("mypy", "--cache-dir", "/dev/null")
    assert result.returncode == 0 and "Success" in result.stdout, result.stdout[-5000:]
