"""One Lambda function, run as Lambda's Python runtime runs it (for infra/rehearsal/rehearse.py).

    python -I infra/rehearsal/lambda_harness.py TASK_ROOT HANDLER

Run by an interpreter whose site-packages hold only what the runtime provides (boto3 and its
dependencies), in isolated mode (-I: neither this file's folder nor the caller's environment
reaches sys.path), with TASK_ROOT, the unzipped deployment package, read-only and first on
sys.path, as /var/task is. It imports the handler module once (a cold start), then answers
invocations until its stdin closes, one JSON line each way:

    -> {"event": {...}, "request_id": "...", "timeout_ms": 30000}
    <- {"result": ...} or {"error": {"errorMessage": ..., "errorType": ..., "stackTrace": [...]}}
    -> {"stats": true}
    <- {"compiled_from_source": [...], "outside": [...], "from_task": N}

The first line it writes says whether the import worked, how long it took, and whether the
code directory really was read-only. Answers go to a private copy of stdout: what the
function prints (logs, metrics) goes to stderr, as Lambda sends it to CloudWatch Logs.
Standard library only: nothing here may be importable by the function.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import sys
import sysconfig
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, TextIO


class Context:
    """The attributes and method of Lambda's Python context object."""

    def __init__(self, request_id: str, timeout_ms: int) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("REHEARSAL_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _count_compiles(task_root: Path, compiled: list[str]) -> None:
    """Record every module of the package that Python had to compile from source: with the
    zip's bytecode in place there should be none."""
    loader = importlib.machinery.SourceFileLoader
    original = loader.source_to_code

    def source_to_code(self: Any, data: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(path, str) and Path(path).is_relative_to(task_root):
            compiled.append(str(Path(path).relative_to(task_root)))
        return original(self, data, path, *args, **kwargs)

    loader.source_to_code = source_to_code  # type: ignore[method-assign]


def _read_only(task_root: Path) -> bool:
    probe = task_root / f".write-probe-{uuid.uuid4().hex}"
    try:
        probe.open("x").close()
    except OSError:
        return True
    probe.unlink()
    return False


def _stats(task_root: Path, compiled: list[str]) -> dict[str, Any]:
    """Where the loaded modules came from: the package, the standard library, or the
    runtime's site-packages (`outside`: top-level names only)."""
    paths = sysconfig.get_paths()
    stdlib = (Path(paths["stdlib"]), Path(paths["platstdlib"]))
    outside: set[str] = set()
    from_task = 0
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if not filename:
            continue
        path = Path(filename)
        if path.is_relative_to(task_root):
            from_task += 1
        elif "site-packages" in path.parts or not any(path.is_relative_to(s) for s in stdlib):
            outside.add(name.split(".")[0])
    return {"compiled_from_source": sorted(compiled), "outside": sorted(outside),
            "from_task": from_task}


def _error(exc: BaseException) -> dict[str, Any]:
    return {"errorMessage": str(exc), "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__)}


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main(task_root: Path, handler: str) -> int:
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the function's prints go where Lambda's go: the log, not the answers
    sys.stdout = sys.stderr
    compiled: list[str] = []
    _count_compiles(task_root, compiled)
    sys.path.insert(0, str(task_root))
    os.chdir(task_root)
    module_name, attribute = handler.rsplit(".", 1)
    started = time.perf_counter()
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # noqa: BLE001 - Runtime.ImportModuleError, reported as Lambda does
        _send(channel, {"ready": False, "error": _error(exc)})
        return 1
    _send(channel, {"ready": True, "import_ms": (time.perf_counter() - started) * 1000,
                    "read_only": _read_only(task_root)})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("stats"):
            _send(channel, _stats(task_root, compiled))
            continue
        context = Context(request["request_id"], request["timeout_ms"])
        try:
            result = function(request["event"], context)
            answer: dict[str, Any] = {"result": json.loads(json.dumps(result))}
        except Exception as exc:  # noqa: BLE001 - a failed invocation is an answer, as on Lambda
            answer = {"error": _error(exc)}
        _send(channel, answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve(), sys.argv[2]))
