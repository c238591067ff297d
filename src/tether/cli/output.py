"""How the CLI prints: rich tables for people, plain JSON (``--json``) for scripts.

Failures go through :func:`fail`: one line ``error: ...`` on stderr and exit code 1 (usage
mistakes keep typer's own exit code 2). Cell text is never read as rich markup.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "Cell",
    "by_name",
    "dash",
    "fail",
    "print_details",
    "print_json",
    "print_line",
    "print_table",
    "status_cell",
]

Cell = str | Text
PIPE_WIDTH = 200
"""Line width when stdout is not a terminal (and COLUMNS is unset): keep rows unwrapped."""

_STATE_STYLE = {"realized": "green", "pending": "yellow", "error": "bold red"}


def fail(message: str) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with code 1."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2))


def print_line(text: str) -> None:
    typer.echo(text)


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, soft_wrap=False, width=PIPE_WIDTH, file=sys.stdout)
    return console


def _text(cell: Cell) -> Text:
    if isinstance(cell, Text):
        return cell
    return Text("-" if cell is None else str(cell))


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Cell]], *, title: str | None = None
) -> None:
    """A table with a header row; ``rows`` are printed in the order given."""
    table = Table(*columns, title=title, title_justify="left", header_style="bold")
    for row in rows:
        table.add_row(*(_text(cell) for cell in row))
    _console().print(table)


def print_details(title: str, pairs: Sequence[tuple[str, Cell]]) -> None:
    """One object as a two-column table of field names and values."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in pairs:
        table.add_row(key, _text(value))
    _console().print(table)


def status_cell(obj: Mapping[str, Any]) -> Text:
    """The object's status state, coloured, with its message when it has one."""
    status = obj.get("status") or {}
    state = str(status.get("state", "?"))
    message = str(status.get("message") or "")
    text = Text(state, style=_STATE_STYLE.get(state, ""))
    if message:
        text.append(f": {message}")
    return text


def dash(value: Any) -> str:
    """``value`` as text, or ``-`` when empty or absent."""
    if value is None or value in ("", []):
        return "-"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def by_name(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``items`` sorted by name, then tenant, then id (unnamed objects first)."""
    return sorted(
        items, key=lambda o: (str(o.get("name", "")), str(o.get("tenant", "")), str(o["id"]))
    )
