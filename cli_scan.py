"""`provkb scan SCRIPT.py [--record] [--format table|json]`: what a training script will
do, read without running it (capture/scan.py); `--record` stores it as the Plan of that
script version, which its runs are linked to and `provkb query plan-vs-run` compares.

Exit codes: 0 scanned (also partly: a syntax error, no model: the output says what is
missing and why), 1 error (the file cannot be read, the store cannot be reached).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from .cli_options import StoreOpt, cell, console, fail, open_kb
from .errors import ProvKBError

if TYPE_CHECKING:  # the scanner is imported by the command that uses it
    from .capture.scan import Call, ScanResult, Value


class ScanFormat(StrEnum):
    table = "table"
    json = "json"


def _value(v: Value | None) -> str:
    if v is None:
        return ""
    return cell(v.value) if v.known else f"{v.text} (?)"


def _arguments(c: Call) -> str:
    parts = [_value(v) for v in c.args] + [f"{k}={_value(v)}" for k, v in c.kwargs.items()]
    return ", ".join(parts)


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    table = Table(title=title, title_justify="left", header_style="bold cyan")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    console.print(table)


def print_result(result: ScanResult) -> None:
    """The scan as tables: what was found, the plan, what could not be told and why."""
    console.print(
        Text(f"{result.path}  sha256 {result.sha256[:12]}  {result.lines} lines", style="bold")
    )
    _table(
        "datasets",
        ("line", "loader", "source"),
        [(d.call.line, d.loader, d.source) for d in result.datasets],
    )
    for m in result.models:
        count = "?" if m.layer_count is None else m.layer_count
        title = f"model: {m.api} {m.name} (line {m.line}, variable {m.variable}, {count} layers)"
        rows = [(la.index, la.call.line, la.class_name, _arguments(la.call)) for la in m.layers]
        _table(title, ("#", "line", "layer", "arguments"), rows)
        if not m.layers:
            console.print(Text(title))
    calls = [("compile", c.call) for c in result.compiles]
    calls += [("optimizer", c.optimizer_call) for c in result.compiles if c.optimizer_call]
    calls += [("fit", f) for f in result.fits] + [("callback", c) for c in result.callbacks]
    calls += [("seed", s) for s in result.seeds]
    _table("calls", ("what", "line", "call", "arguments"),
           [(w, c.line, c.name, _arguments(c)) for w, c in calls])  # fmt: skip
    _table("constants", ("name", "value", "found"),
           [(k, cell(v.value), v.origin) for k, v in sorted(result.constants.items())])  # fmt: skip
    origins = result.planned_origins()
    planned = [(k, cell(v), origins.get(k, "as written")) for k, v in result.planned().items()]
    _table("planned", ("fact", "value", "found"), planned)
    _table("could not be told", ("line", "what", "expression", "why"),
           [(u.line, u.what, u.text, u.reason) for u in result.unknowns])  # fmt: skip
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))


def register(app: typer.Typer) -> None:
    """Add `provkb scan` to `app`."""

    @app.command("scan")
    def scan_cmd(
        script: Annotated[Path, typer.Argument(help="The training script (never run).")],
        record: Annotated[
            bool,
            typer.Option("--record", help="Store it as the Plan of this script version."),
        ] = False,
        fmt: Annotated[ScanFormat, typer.Option("--format", "-f", help="Output format.")] = (
            ScanFormat.table
        ),
        person: Annotated[
            str | None, typer.Option("--person", help="Who records the plan (default: you).")
        ] = None,
        store: StoreOpt = None,
    ) -> None:
        """Read a training script without running it: datasets, model and layers,
        compile and fit arguments, callbacks, seeds; what cannot be told, and why."""
        from .capture import scan_record

        try:
            from .capture.scan import scan

            result = scan(script)
            recorded = None
            if record:
                kb = open_kb(store)
                linked = scan_record.record(kb.store, result, person)
                recorded = {"plan": scan_record.plan_id(result), "linkedRuns": linked}
        except ProvKBError as exc:
            raise fail(exc) from exc
        if fmt is ScanFormat.json:
            out = result.to_dict()
            if recorded is not None:
                out["recorded"] = recorded
            typer.echo(json.dumps(out, indent=2, sort_keys=True))
            return
        print_result(result)
        if recorded is not None:
            console.print(
                Text(
                    f"recorded plan {recorded['plan']}; runs of this script version linked "
                    f"to it: {recorded['linkedRuns']}",
                    style="green",
                )
            )
