"""How the CLI prints results: aligned tables, times, durations, and the hint that a listing
has more pages (JSON output is `Cli.emit`, in cli/commands/__init__.py)."""

from __future__ import annotations

from typing import Any

import click


def cells(row: list[Any]) -> list[str]:
    return ["-" if c is None or c == "" else str(c) for c in row]


def line(row: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()


def column_widths(headers: list[str], rows: list[list[Any]]) -> list[int]:
    rendered = [cells(r) for r in rows]
    return [max([len(h), *(len(r[i]) for r in rendered)]) for i, h in enumerate(headers)]


def table(headers: list[str], rows: list[list[Any]]) -> str:
    widths = column_widths(headers, rows)
    return "\n".join(line(r, widths) for r in [headers, *map(cells, rows)])


def when(iso: str | None) -> str:
    """2026-11-22T10:00:05.123456Z -> 2026-11-22 10:00:05Z"""
    if not iso:
        return "-"
    return iso[:19].replace("T", " ") + ("Z" if iso.endswith("Z") else "")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def more_hint(noun: str, cursor: str | None) -> None:
    if cursor:
        click.echo(f"(more {noun}: --all, or --cursor {cursor})", err=True)


def last_attempt(attempts: list[dict[str, Any]]) -> str:
    if not attempts:
        return "-"
    last = attempts[-1]
    result = last.get("status_code") or last.get("error") or "?"
    return f"{len(attempts)}, last {result}"
