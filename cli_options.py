"""What every `provkb` command shares: options, consoles, errors, the knowledge base,
row printing and the one `key=value` parser. No command module imports `cli.py`."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .knowledge_base import KnowledgeBase

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Embedded store folder (default: $PROVKB_HOME or ./.provkb). "
        "Ignored when PROVKB_URI points at a Neo4j server, unless given explicitly.",
        show_default=False,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Query parameter as key=value (repeatable)."),
]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]

console = Console(width=None if sys.stdout.isatty() else 160)  # pipes and logs: wide tables
err_console = Console(stderr=True)


def fail(message: object, code: int = 1, label: str = "error") -> typer.Exit:
    """Print `label: message` on stderr (the message verbatim, never read as markup)
    and return the exit to raise."""
    err_console.print(f"[bold red]{label}:[/] {escape(str(message))}", emoji=False)
    return typer.Exit(code)


def open_kb(store: Path | None) -> KnowledgeBase:
    """The knowledge base of `--store` (or the settings), said when it starts a server."""
    kb = KnowledgeBase(store)
    if not kb.server_running():
        err_console.print(f"[dim]starting the embedded store in {kb.settings.home} ...[/]")
    kb.store  # noqa: B018 - connect now, so that errors come before any output
    return kb


_ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d|Z)?$")


def cell(value: Any) -> str:
    """A value as a table shows it (times to the second, lists and maps as JSON)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and (match := _ISO_TIME.match(value)):
        return f"{match.group(1)} {match.group(2)}"  # tables show seconds; JSON/CSV keep all
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def csv_cell(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def print_rows(columns: list[str], rows: list[dict[str, Any]], fmt: OutputFormat) -> None:
    """Print query rows as a table, JSON or CSV (data is shown as is, never as markup)."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(row.get(k)) for k in columns})
        typer.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(show_lines=False, header_style="bold cyan")
        for column in columns:
            table.add_column(Text(column), overflow="fold", max_width=48)
        for row in rows:
            table.add_row(*(Text(cell(row.get(c))) for c in columns))
        natural = Measurement.get(console, console.options.update_width(10**6), table).maximum
        if natural > console.width:
            print_records(columns, rows)  # too wide: one block per row, as psql's \x
        else:
            console.print(table)
        console.print(f"[dim]{len(rows)} row(s)[/]")


def print_records(columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Rows as `column  value` blocks, for tables wider than the terminal (a 19-column
    table at 80 columns would otherwise wrap letter by letter). One `Text`, values folded
    at the terminal's width by hand: a rich grid per row took 0.5 s for 100 rows."""
    name_width = max((len(c) for c in columns), default=0)
    room = max(20, console.width - name_width - 2)
    text = Text()
    for number, row in enumerate(rows, 1):
        text.append(f"-[ row {number} ]-\n", style="bold cyan")
        for column in columns:
            value = cell(row.get(column))
            parts = [
                line[i : i + room]
                for line in value.split("\n")
                for i in range(0, max(len(line), 1), room)
            ]
            text.append(column.ljust(name_width), style="cyan")
            text.append(f"  {parts[0]}\n")
            for part in parts[1:]:
                text.append(f"{' ' * (name_width + 2)}{part}\n")
    console.print(text, soft_wrap=True, end="")
