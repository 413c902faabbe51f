"""`manuals import FILE...`: manuals from JSON or YAML files, each checked with the service's
own pydantic model before it is sent."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from cli.client import EXIT_API_ERROR, EXIT_INVALID_FILE, ApiError, Client, CliError, Unreachable
from cli.commands import Cli


@click.group()
def manuals() -> None:
    """Manuals (instruction manuals of 1 to 1000 steps)."""


@dataclass
class Imported:
    file: str
    status: str  # created | unchanged | failed
    manual_id: str | None = None
    steps: int | None = None
    error: str | None = None
    message: str | None = None
    fields: list[dict[str, str]] | None = None

    def line(self) -> str:
        if self.status == "failed":
            return f"{self.error}: {self.message}"
        return f"{self.manual_id} ({self.steps} steps)"


class InvalidFile(Exception):
    def __init__(self, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


def load_manual(path: Path) -> Any:
    """The ManualCreate in a JSON or YAML file, validated as the API validates it."""
    from pydantic import ValidationError

    from chalicelib.api.json_input import parse_json
    from chalicelib.domain.errors import InvalidJson
    from chalicelib.domain.models import ManualCreate

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidFile(f"cannot read the file: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = parse_json(text)
        except InvalidJson as exc:  # "Not valid JSON: ..." -> "not valid JSON: ..." (as for YAML)
            raise InvalidFile(exc.message[:1].lower() + exc.message[1:]) from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidFile(f"not valid YAML: {' '.join(str(exc).split())}") from None
    else:
        raise InvalidFile("unsupported file type: use .json, .yaml or .yml")
    if not isinstance(data, dict):
        raise InvalidFile("the file must hold one manual (an object with manual_id, title, steps)")
    try:
        return ManualCreate.model_validate(data)
    except ValidationError as exc:
        fields = [{"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
                  for err in exc.errors(include_url=False, include_input=False)]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        raise InvalidFile(f"Invalid manual: {summary}", fields) from None


def import_one(client: Client, path: Path) -> Imported:
    try:
        manual = load_manual(path)
    except InvalidFile as exc:
        return Imported(str(path), "failed", error="invalid_file", message=exc.message,
                        fields=exc.fields)
    done = Imported(str(path), "failed", manual.manual_id, len(manual.steps))
    try:
        status, _ = client.call("POST", "v1/manuals",
                                body=manual.model_dump(mode="json", exclude_none=True))
    except ApiError as exc:
        if exc.status in (401, 403):
            raise  # the same for every file: stop with the hint
        done.error, done.message, done.fields = exc.code, exc.message, exc.body.get("fields")
        return done
    done.status = "created" if status == 201 else "unchanged"
    return done


@manuals.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def manuals_import(obj: Cli, files: tuple[Path, ...]) -> None:
    """Create a manual from each JSON or YAML FILE (one manual per file, the body that
    POST /v1/manuals takes). Each file is validated locally first; each is reported as
    created, unchanged (the same manual was already there) or failed.

    Exit code 4 if a file is invalid, else 1 if the API refused one, else 0."""
    results: list[Imported] = []
    stopped: CliError | None = None
    try:
        if len(files) > 1:
            with click.progressbar(files, label="Importing", file=sys.stderr,
                                   item_show_func=lambda p: p.name if p else None) as bar:
                for path in bar:
                    results.append(import_one(obj.client, path))
        else:
            results.append(import_one(obj.client, files[0]))
    except (Unreachable, ApiError) as exc:
        stopped = exc
    if obj.json_output:
        obj.emit([r.__dict__ for r in results])
    elif results:  # an error that stopped the import before any file: only the error
        width = max(len(r.file) for r in results)
        for r in results:
            click.echo(f"{r.status:<9}  {r.file:<{width}}  {r.line()}")
        counts = {s: sum(r.status == s for r in results) for s in ("created", "unchanged", "failed")}
        click.echo(", ".join(f"{n} {s}" for s, n in counts.items()), err=True)
    if stopped:
        raise stopped
    ctx = click.get_current_context()
    if any(r.error == "invalid_file" for r in results):
        ctx.exit(EXIT_INVALID_FILE)
    if any(r.status == "failed" for r in results):
        ctx.exit(EXIT_API_ERROR)
