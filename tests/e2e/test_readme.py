"""The README's shell examples, run the way a newcomer pastes them: every `bash` block in
order, in one bash, with nothing but the `export` lines that `make run` printed, against the
local stack. `set -euo pipefail` makes a failing command or a variable used before it is
defined fail the test; an answer with an error JSON fails it too. A block that cannot run
against the local stack (starting it, deploying to AWS) says so on its first line."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_LOCAL = "# not against the local stack"
ERROR_JSON = re.compile(r'"error"\s*:\s*"')  # an error body (a delivery attempt's "error": null is fine)


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, re.S | re.M)


def test_the_readme_has_runnable_examples_and_says_which_are_not() -> None:
    blocks = bash_blocks((ROOT / "README.md").read_text())
    skipped = [b for b in blocks if b.startswith(NOT_LOCAL)]
    assert len(blocks) - len(skipped) >= 5
    # only the blocks that start the stack or need AWS are left out
    assert [b.splitlines()[1].split()[:2] for b in skipped] == [
        ["make", "run"], ["python", "-m"], ["make", "package"], ["python", "-m"], ["python", "-m"],
        ["python", "-m"], ["make", "package"]]


def test_every_shell_example_of_the_readme_runs_against_the_local_stack(local_stack) -> None:
    blocks = [b for b in bash_blocks((ROOT / "README.md").read_text()) if not b.startswith(NOT_LOCAL)]
    script = ["set -euo pipefail", *local_stack["exports"],
              # the suite runs inside the venv already: make must not rebuild it (a newcomer's
              # `make run` has just built it, so there make has nothing to do either)
              'make() { command make -o .venv/.installed "$@"; }']
    for n, block in enumerate(blocks):
        script += [f"printf '\\n::block {n}::\\n'", block]  # (curl's answers end without a newline)
    script.append("printf '\\n::done::\\n'")
    # a newcomer's shell: no AWS settings, no virtualenv until the README activates it
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    outputs = re.split(r"^::block (\d+)::\n", result.stdout, flags=re.M)[1:]
    ran = dict(zip(map(int, outputs[0::2]), outputs[1::2], strict=True))
    last = max(ran) if ran else -1
    assert result.returncode == 0 and "::done::" in result.stdout, (
        f"block {last} failed (exit {result.returncode}):\n{blocks[last] if last >= 0 else ''}\n"
        f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}")
    assert sorted(ran) == list(range(len(blocks)))
    for n, output in ran.items():
        assert not ERROR_JSON.search(output), f"block {n} answered an error:\n{blocks[n]}\n{output[-3000:]}"


def test_every_error_code_is_in_the_readme_error_table() -> None:
    import app  # noqa: F401 - imports every module that defines an error
    from chalicelib.api.http import _CHALICE_CODES
    from chalicelib.domain.errors import ServiceError

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    codes = {c.code for c in subclasses(ServiceError)} | set(_CHALICE_CODES.values()) | {"inbox_paused"}
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Errors"):readme.index("### Limits in front of the function")]
    documented = set(re.findall(r"`([a-z_]+)`", table))
    assert codes - documented == set(), "error codes missing from the README's error table"
