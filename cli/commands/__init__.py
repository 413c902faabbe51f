"""The CLI's command groups, one module each, and what they share: `Cli`, the object every
command is given (the HTTP client, and whether to print JSON), and the paging options."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from cli.client import Client


@dataclass
class Cli:
    client: Client
    json_output: bool

    def emit(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def every_option(f: Any) -> Any:
    for option in reversed([
        click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True,
                     help="Items per page (per request with --all)."),
        click.option("--all", "every", is_flag=True, help="Follow next_cursor to the end."),
        click.option("--cursor", default=None, help="Start from this page (a next_cursor)."),
    ]):
        f = option(f)
    return f
