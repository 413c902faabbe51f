"""infra/artifact.py on a small zip laid out as `chalice package` lays one out: distributions
nobody imports are dropped, every module gets bytecode Python uses without recompiling.
(The real zip is run from a read-only directory by the rehearsal, tests/deploy/test_rehearse.py.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.artifact import finish, runtime_version


def _dist(name: str, tops: list[str]) -> dict[str, str]:
    record = "".join(f"{top}/__init__.py,,\n" for top in tops) + f"{name}-1.0.dist-info/RECORD,,\n"
    return {f"{name}-1.0.dist-info/RECORD": record, f"{name}-1.0.dist-info/METADATA": "Name: x\n"}


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    files = {
        "app.py": "import used\n\ndef handler(event, context):\n    from lazy import answer\n"
                  "    return answer()\n",
        "used/__init__.py": "VALUE = 1\n",
        "lazy/__init__.py": "def answer():\n    return 42\n",
        "unused/__init__.py": "import json\n",
        "tool-1.0.data/scripts/tool.py": "print('a console script')\n",
        **_dist("used", ["used"]), **_dist("lazy", ["lazy"]), **_dist("unused", ["unused"]),
    }
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        for name, text in files.items():
            zipped.writestr(name, text)
    return path


def test_unimported_distributions_go_and_imported_ones_stay(archive: Path) -> None:
    result = finish(archive, f"python{sys.version_info[0]}.{sys.version_info[1]}", {"app"})

    names = set(zipfile.ZipFile(archive).namelist())
    assert result.dropped == ("tool-1.0.data", "unused")
    assert not any(n.startswith(("unused", "tool-1.0.data")) for n in names)
    # an import inside a function counts as much as one at the top
    assert {"used/__init__.py", "lazy/__init__.py", "lazy-1.0.dist-info/RECORD"} <= names


def test_every_module_gets_unchecked_hash_bytecode_that_a_read_only_import_uses(
        archive: Path, tmp_path: Path) -> None:
    finish(archive, f"python{sys.version_info[0]}.{sys.version_info[1]}", {"app"})
    zipped = zipfile.ZipFile(archive)
    tag = sys.implementation.cache_tag
    for name in [n for n in zipped.namelist() if n.endswith(".py")]:
        parent, _, stem = name.rpartition("/")
        pyc = zipped.read(f"{parent + '/' if parent else ''}__pycache__/{stem[:-3]}.{tag}.pyc")
        assert pyc[:4] == importlib.util.MAGIC_NUMBER, name
        assert int.from_bytes(pyc[4:8], "little") == 0b01, name  # hash-based, source unchecked

    # GIVEN the package unzipped read-only, its sources newer than anything the zip recorded
    task = tmp_path / "task"
    zipped.extractall(task)
    for path in task.rglob("*.py"):
        path.touch()
    subprocess.run(["chmod", "-R", "a-w", str(task)], check=True)
    # WHEN a fresh interpreter imports the handler and calls it
    probe = ("import sys, importlib.machinery as m; compiled = []\n"
             "orig = m.SourceFileLoader.source_to_code\n"
             "m.SourceFileLoader.source_to_code = lambda self, d, p, *a, **k: "
             "(compiled.append(p), orig(self, d, p, *a, **k))[1]\n"
             f"sys.path.insert(0, {str(task)!r}); import app\n"
             "print(app.handler({}, None), compiled)")
    out = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    # THEN it ran from bytecode alone: nothing was compiled from source
    assert out.strip() == "42 []"
    subprocess.run(["chmod", "-R", "u+w", str(task)], check=True)


def test_bytecode_is_only_written_by_the_runtimes_own_python(archive: Path) -> None:
    assert runtime_version("python3.11") == (3, 11)
    with pytest.raises(RuntimeError, match="must be compiled by that Python"):
        finish(archive, "python3.9", {"app"})
