"""The deployment zip, finished for Lambda's read-only code directory.

`chalice package` zips sources only, with every distribution that requirements.txt pulls in.
Lambda unpacks the zip into a read-only /var/task, where Python can neither find nor write
bytecode, so every cold start compiles every module it imports. `finish()` rewrites the zip:

  - a distribution none of the shipped code imports is dropped (with its dist-info), as are
    `*.data/` trees (console scripts, headers: never importable). "Imports" are followed
    statically from each function's handler module with modulefinder, which also sees imports
    inside functions and under try/except, so it keeps too much rather than too little. Only
    whole distributions go: within a kept package nothing is pruned, because packages such as
    pydantic import their own submodules by name at run time, where no static reading sees it.
  - every module left gets an unchecked-hash .pyc for the runtime's Python in __pycache__: the
    interpreter loads it without comparing it with the source (whose zip timestamp means
    nothing), and never tries to rewrite it. Sources stay, so tracebacks show their lines.

The rehearsal (infra/rehearsal/) imports and runs every handler from the finished zip in a
read-only directory, which is the test that pruning left nothing out.
"""

from __future__ import annotations

import io
import json
import modulefinder
import os
import py_compile
import re
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Zip entries carry this date, as chalice's own do: the same inputs give the same zip.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Packages shipped in part: the parts of them the shipped code uses. Powertools is a toolbox
# of utilities (REST resolvers with a Swagger UI, parsers, idempotency, ...) of which we use
# Logger and Metrics (chalicelib/observability.py): 1.8 MB of the zip, 0.2 MB of it used.
# What the kept parts import is all inside them (the rehearsal imports and runs every
# handler from the finished zip, and tests/deploy/test_artifact.py checks these parts load alone).
# Not kept, so not available: the Logger's `log_event` option (it needs data_classes).
PARTS = {
    "aws_lambda_powertools": (
        "__init__.py", "py.typed", "package_logger.py", "exceptions/", "warnings/", "shared/",
        "logging/", "metrics/", "tracing/", "middleware_factory/", "utilities/__init__.py",
        "utilities/jmespath_utils/", "utilities/typing/"),
}


@dataclass(frozen=True)
class Finished:
    """What finish() did to the zip."""

    size_before: int
    size_after: int
    dropped: tuple[str, ...]  # distributions (and .data trees) no shipped module imports
    compiled: int  # .pyc files added
    kept_tops: tuple[str, ...]  # top-level names the zip still holds


def runtime_version(runtime: str) -> tuple[int, int]:
    """`python3.11` -> (3, 11)."""
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    if not match:
        raise ValueError(f"not a Python Lambda runtime: {runtime!r}")
    return int(match.group(1)), int(match.group(2))


def finish_package(package_dir: Path) -> Finished:
    """finish() the deployment.zip of a `chalice package` output directory, for the runtime
    and handler modules its sam.json declares."""
    template = json.loads((package_dir / "sam.json").read_text())
    functions = [r["Properties"] for r in template["Resources"].values()
                 if r["Type"] == "AWS::Serverless::Function"]
    runtimes = {f["Runtime"] for f in functions}
    if len(runtimes) != 1:
        raise RuntimeError(f"one zip serves every function, so one runtime: {sorted(runtimes)}")
    modules = {f["Handler"].rsplit(".", 1)[0] for f in functions}
    return finish(package_dir / "deployment.zip", runtimes.pop(), modules)


def finish(archive: Path, runtime: str, handler_modules: set[str]) -> Finished:
    """Prune and precompile `archive` in place for `runtime` (e.g. "python3.11"), whose
    functions' handlers live in `handler_modules` (e.g. {"app"})."""
    if runtime_version(runtime) != sys.version_info[:2]:
        # A .pyc is only valid for the interpreter version that wrote it.
        raise RuntimeError(f"bytecode for {runtime} must be compiled by that Python, "
                           f"not {sys.version.split()[0]}")
    before = archive.stat().st_size
    with tempfile.TemporaryDirectory(prefix="artifact-") as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(archive) as source:
            source.extractall(root)
            modes = {info.filename: info.external_attr for info in source.infolist()}
        imported = imported_tops(root, handler_modules)
        dropped: list[str] = []
        drop: set[str] = set()
        for dist_info, tops in distributions(root).items():
            if tops and not tops & imported:
                dropped.append(dist_info.split("-")[0])
                drop |= tops | {dist_info}
        data_trees = {p.name for p in root.iterdir() if p.name.endswith(".data")}
        dropped += sorted(data_trees)
        drop |= data_trees
        compiled = _write(archive, root, drop, modes)
    with zipfile.ZipFile(archive) as zipped:
        kept = tuple(sorted({PurePosixPath(n).parts[0] for n in zipped.namelist()}))
    return Finished(before, archive.stat().st_size, tuple(sorted(dropped)), compiled, kept)


def imported_tops(root: Path, handler_modules: set[str]) -> set[str]:
    """Top-level entries of `root` (packages, modules) that the handler modules import,
    directly or through each other. Only the standard library is on the search path besides
    `root`: what the runtime provides (boto3) is looked for and simply not found."""
    stdlib = sysconfig.get_paths()
    path = [str(root), stdlib["stdlib"], os.path.join(stdlib["platstdlib"], "lib-dynload")]
    finder = modulefinder.ModuleFinder(path=path)
    for name in sorted(handler_modules):
        finder.import_hook(name)
    tops: set[str] = set()
    for module in finder.modules.values():
        filename = getattr(module, "__file__", None)
        if filename and Path(filename).is_relative_to(root):
            tops.add(Path(filename).relative_to(root).parts[0])
    return tops


def distributions(root: Path) -> dict[str, set[str]]:
    """Each installed distribution's dist-info directory -> the top-level entries its RECORD
    lists (besides the dist-info itself)."""
    found: dict[str, set[str]] = {}
    for record in root.glob("*.dist-info/RECORD"):
        dist_info = record.parent.name
        tops = set()
        for line in record.read_text().splitlines():
            entry = line.rsplit(",", 2)[0]
            top = PurePosixPath(entry).parts[0] if entry else ""
            if top and top != dist_info and not top.startswith(".."):
                tops.add(top)
        found[dist_info] = tops
    return found


def _write(archive: Path, root: Path, drop: set[str], modes: dict[str, int]) -> int:
    buffer = io.BytesIO()
    compiled = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root)
            if relative.parts[0] in drop or "__pycache__" in relative.parts or not _kept_part(relative):
                continue
            name = relative.as_posix()
            _add(target, name, path.read_bytes(), modes.get(name, 0o644 << 16))
            if path.suffix == ".py":
                pyc = Path(py_compile.compile(
                    str(path), cfile=str(path) + "c", dfile=name, doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH))
                cached = PurePosixPath(name).parent / "__pycache__" / (
                    f"{path.stem}.{sys.implementation.cache_tag}.pyc")
                _add(target, str(cached), pyc.read_bytes(), 0o644 << 16)
                pyc.unlink()
                compiled += 1
    archive.write_bytes(buffer.getvalue())
    return compiled


def _kept_part(relative: Path) -> bool:
    """Whether a file is shipped: any file of a package shipped whole; of a package shipped in
    part (PARTS), the files named there and everything under the directories named there."""
    parts = PARTS.get(relative.parts[0])
    if parts is None:
        return True
    inside = PurePosixPath(*relative.parts[1:]).as_posix()
    return any(inside.startswith(part) if part.endswith("/") else inside == part for part in parts)


def _add(target: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.external_attr = mode
    info.compress_type = zipfile.ZIP_DEFLATED
    target.writestr(info, data, compresslevel=9)
