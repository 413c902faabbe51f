"""Supply-chain report: `make audit` (run by CI after the tests).

pip-audit checks the pinned requirements (what ships, and the dev tools) against the
vulnerability database. Any known vulnerability fails; a dependency that could not be checked
(the database unreachable, or a package it does not know) is listed as NOT AUDITED, so the
report never reads as a clean bill of health it is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def audit(requirements: str) -> tuple[int, int, list[str]]:
    """(vulnerabilities, dependencies audited, lines of the report) for one file."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        run = subprocess.run(
            [sys.executable, "-m", "pip_audit", "-r", str(ROOT / requirements), "--format", "json",
             "--output", str(out), "--progress-spinner", "off"],
            capture_output=True, text=True, timeout=900)
        if not out.exists():
            return 0, 0, [f"  pip-audit could not run: {(run.stderr or run.stdout).strip()[-400:]}"]
        report = json.loads(out.read_text())
    lines, found, audited = [], 0, 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            lines.append(f"  NOT AUDITED  {dep['name']} {dep.get('version', '')}: {dep['skip_reason']}")
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            found += 1
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            lines.append(f"  VULNERABLE   {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    return found, audited, lines


def main() -> int:
    total = 0
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        found, audited, lines = audit(requirements)
        total += found
        print(f"{requirements}: {audited} dependencies audited, {found} known vulnerabilities")
        print("\n".join(lines))
    if total:
        print(f"FAIL: {total} known vulnerabilities")
        return 1
    print("OK: no known vulnerabilities in what could be audited (see NOT AUDITED above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
