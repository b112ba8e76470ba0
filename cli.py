"""The `provkb` command line: server, queries, read-only Cypher, export, import, demo."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .cli_options import FormatOpt, OutputFormat, ParamOpt, StoreOpt
from .config import resolve_settings
from .errors import ProvKBError

app = typer.Typer(
    name="provkb",
    help="ProvKB: W3C PROV provenance of deep-learning training, queryable in Cypher.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server_app = typer.Typer(
    help="Manage the embedded store's background server.", no_args_is_help=True
)
app.add_typer(server_app, name="server")

console = Console(width=None if sys.stdout.isatty() else 160)  # pipes and logs: wide tables
err_console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _open_store(store: Path | None):
    from .kb.store import Store

    settings = resolve_settings(store=store)
    if settings.embedded and not _server_running(settings.home):
        err_console.print(f"[dim]starting the embedded store in {settings.home} ...[/]")
    return Store(settings).connect()


def _server_running(home: Path) -> bool:
    return _server_info(home) is not None


def _parse_params(pairs: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ProvKBError(f"parameter {pair!r} is not key=value")
        params[key.strip()] = value
    return params


_ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d|Z)?$")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and (match := _ISO_TIME.match(value)):
        return f"{match.group(1)} {match.group(2)}"  # tables show seconds; JSON/CSV keep all
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _csv_cell(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def print_rows(columns: list[str], rows: list[dict[str, Any]], fmt: OutputFormat) -> None:
    """Print query rows as a table, JSON or CSV."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
        typer.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(show_lines=False, header_style="bold cyan")
        for column in columns:
            table.add_column(column, overflow="fold", max_width=48)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
        console.print(f"[dim]{len(rows)} row(s)[/]")


# -- server -------------------------------------------------------------------------
@server_app.command("start")
def server_start(store: StoreOpt = None) -> None:
    """Start the embedded server in the background (or report the running one)."""
    from .kb.embedded import EmbeddedServer

    home = resolve_settings(store=store).home
    started = time.monotonic()
    try:
        info = EmbeddedServer(home).ensure_running()
    except ProvKBError as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"embedded store [bold]{home}[/] on {info.uri} (pid {info.pid}, "
        f"{time.monotonic() - started:.1f} s)"
    )


@server_app.command("status")
def server_status(store: StoreOpt = None) -> None:
    """Show whether the embedded server runs, where, and how much it holds."""
    from .kb.embedded import EmbeddedServer

    home = resolve_settings(store=store).home
    info = EmbeddedServer(home).status()
    if info is None:
        console.print(f"no embedded server running for {home}")
        raise typer.Exit(3)
    counts = _open_store(store).counts()
    uptime = time.time() - info.started_at
    console.print(
        f"running: {home}\n  bolt: {info.uri}  pid: {info.pid}  up {uptime:.0f} s  "
        f"CPU priority: {info.priority}\n"
        f"  nodes: {counts['nodes']}  relationships: {counts['relationships']}"
    )


@server_app.command("stop")
def server_stop(store: StoreOpt = None) -> None:
    """Stop the embedded server (the data stays in the folder)."""
    from .kb.embedded import EmbeddedServer

    home = resolve_settings(store=store).home
    stopped = EmbeddedServer(home).stop()
    console.print("stopped" if stopped else f"no embedded server was running for {home}")


# -- queries ------------------------------------------------------------------------
@app.command("query")
def query(
    name: Annotated[str | None, typer.Argument(help="Named query (see --list).")] = None,
    param: ParamOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    list_: Annotated[bool, typer.Option("--list", help="List the named queries.")] = False,
    store: StoreOpt = None,
) -> None:
    """Run a named, parameterised lineage query."""
    from .queries import registry

    if list_ or name is None:
        table = Table(header_style="bold cyan")
        for column in ("query", "parameters", "what it answers"):
            table.add_column(column, overflow="fold")
        for q in registry.QUERIES.values():
            params = ", ".join(
                f"{p.name}{'' if p.required else '=' + str(p.default)}" for p in q.params
            )
            table.add_row(q.name, params, q.summary)
        console.print(table)
        return
    try:
        raw = _parse_params(param)
        registry.coerce_params(name, raw)  # a bad name or parameter fails before connecting
        result = registry.run(_open_store(store), name, **raw)
    except ProvKBError as exc:
        raise _fail(str(exc)) from exc
    print_rows(result.columns, result.rows, fmt)


@app.command("cypher")
def cypher_console(
    text: Annotated[str, typer.Argument(help="A read-only Cypher query.")],
    param: ParamOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    max_rows: Annotated[
        int | None,
        typer.Option("--max-rows", min=1, help="Rows at most (PROVKB_CONSOLE_ROWS, 1000)."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, help="Seconds at most (PROVKB_CONSOLE_TIMEOUT, 30)."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Run an ad-hoc read-only Cypher query: writes, administration, procedures and file
    access are refused before it runs; it is cancelled past its time limit. JSON and CSV
    are written row by row as they arrive."""
    try:
        raw = _parse_params(param)
        params = {k: _json_or_text(v) for k, v in raw.items()}
        kb = _open_store(store)
        limits = {"timeout": timeout, "max_rows": max_rows}
        if fmt is OutputFormat.table:
            result = kb.read_only(text, params, **limits)
            print_rows(result.columns, result.rows, fmt)
            shown, truncated = len(result.rows), result.truncated
        else:
            printer = _RowStream(fmt)
            streamed = kb.stream_read_only(text, params, printer.row, **limits)
            printer.close(streamed.columns)
            shown, truncated = streamed.rows, streamed.truncated
    except ProvKBError as exc:
        raise _fail(str(exc)) from exc
    if truncated:
        err_console.print(
            f"[yellow]showing the first {shown} rows[/] (the console's row limit; "
            "--max-rows or PROVKB_CONSOLE_ROWS to change it)"
        )


class _RowStream:
    """Writes console rows to stdout as JSON (one array, a row a line) or CSV, as they come."""

    def __init__(self, fmt: OutputFormat) -> None:
        self.fmt, self.started = fmt, False
        self.csv = csv.writer(sys.stdout)

    def _start(self, columns: list[str]) -> None:
        self.started = True
        if self.fmt is OutputFormat.csv:
            self.csv.writerow(columns)
        else:
            sys.stdout.write("[")

    def row(self, columns: list[str], row: dict[str, Any]) -> None:
        if not self.started:
            self._start(columns)
        elif self.fmt is OutputFormat.json:
            sys.stdout.write(",")
        if self.fmt is OutputFormat.csv:
            self.csv.writerow([_csv_cell(row.get(c)) for c in columns])
        else:
            sys.stdout.write("\n" + json.dumps(row, default=str))

    def close(self, columns: list[str]) -> None:
        if not self.started:
            self._start(columns)
        if self.fmt is OutputFormat.json:
            sys.stdout.write("\n]\n")
        sys.stdout.flush()


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


# -- export / import ----------------------------------------------------------------
EXPORT_FORMATS = ["provjson", "provn", "provxml", "turtle", "trig", "jsonld", "dot", "svg", "png"]


@app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help=f"One of {', '.join(EXPORT_FORMATS)} (default: from suffix)."
        ),
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run (id).")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Only this experiment's runs.")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Export provenance as PROV-JSON, PROV-N, PROV-XML, RDF (Turtle, ...) or a diagram."""
    from .kb import export

    chosen = fmt or _format_from_suffix(output)
    if chosen not in EXPORT_FORMATS:
        raise _fail(f"unknown export format {chosen!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    started = time.monotonic()
    try:
        count = export.export(_open_store(store), chosen, output, run_id=run, experiment=experiment)
    except ProvKBError as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"wrote {count} PROV records to {output} ({chosen}, {time.monotonic() - started:.2f} s)"
    )


def _format_from_suffix(path: Path) -> str:
    suffixes = {
        ".json": "provjson",
        ".provn": "provn",
        ".xml": "provxml",
        ".ttl": "turtle",
        ".trig": "trig",
        ".jsonld": "jsonld",
        ".dot": "dot",
        ".svg": "svg",
        ".png": "png",
    }
    return suffixes.get(path.suffix.lower(), "provjson")


class OnConflict(StrEnum):
    refuse = "refuse"
    skip = "skip"


IMPORT_CONFLICT_EXIT = 3  # `provkb import` refused: the file would change stored records


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="PROV-JSON (.json), Turtle (.ttl) or other RDF.")],
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="Override the format.")] = None,
    on_conflict: Annotated[
        OnConflict,
        typer.Option(
            "--on-conflict",
            help="When the file would change stored records: refuse the whole import "
            "(exit 3, conflicts listed) or skip them (keep the stored ones, add the new).",
        ),
    ] = OnConflict.refuse,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Overwrite stored values with the file's; the previous values are kept on "
            "the import's Import activity.",
        ),
    ] = False,
    person: Annotated[
        str | None, typer.Option("--person", help="Who imports (default: the OS user).")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Import a PROV document (all or nothing), recorded as an Import activity.

    Never changes stored records unless --replace is given."""
    from rich.markup import escape

    from .errors import ImportConflict
    from .kb import provimport

    if replace and on_conflict is OnConflict.skip:
        raise _fail("--replace and --on-conflict skip contradict each other; choose one")
    mode = "replace" if replace else on_conflict.value
    started = time.monotonic()
    try:
        report = provimport.import_file(
            _open_store(store), path, fmt, mode, record=True, person=person
        )
    except ImportConflict as exc:
        raise _fail(escape(str(exc)), IMPORT_CONFLICT_EXIT) from exc
    except ProvKBError as exc:
        raise _fail(escape(str(exc))) from exc
    for line in report.lines():
        console.print(line, markup=False, highlight=False)
    console.print(f"({time.monotonic() - started:.2f} s)", markup=False, highlight=False)


# -- journal ------------------------------------------------------------------------
@app.command("status")
def status_cmd(store: StoreOpt = None) -> None:
    """Show the knowledge base and the capture backlog (journaled records not yet stored)."""
    from .kb.journal import journal_folder, journals

    settings = resolve_settings(store=store)
    console.print(f"knowledge base: {settings.describe()}")
    if settings.embedded:
        info = _server_info(settings.home)
        console.print(f"  embedded server: {'running on ' + info.uri if info else 'not running'}")
    folder = journal_folder(settings.home)
    try:
        found = journals(folder)
        if not found:
            console.print("  capture backlog: none")
        else:
            _print_backlog(found)
        _print_quarantine(folder)
    except OSError as exc:
        from .kb.journal import describe_os_error

        raise _fail(f"cannot read the journals in {folder}: {describe_os_error(exc)}") from exc


def _print_backlog(found: list) -> None:
    from .kb.journal import describe_os_error

    table = Table(header_style="bold cyan", title="capture backlog")
    for column in ("run", "pending records", "journal", "writer"):
        table.add_column(column)
    for journal in found:
        try:
            st = journal.status()
        except OSError as exc:
            table.add_row("?", "?", journal.name, f"unreadable: {describe_os_error(exc)}")
            continue
        writer = f"live (pid {st.owner_pid})" if st.owner_alive else "gone: run provkb sync"
        if st.bad_lines:
            writer += f"; {st.bad_lines} unreadable entries (sync quarantines them)"
        for run, records in sorted(st.pending_by_run.items()) or [("-", 0)]:
            table.add_row(run, str(records), st.name, writer)
    console.print(table)


def _print_quarantine(folder: Path) -> None:
    """The journal entries sync set aside: where from, which runs, why."""
    from .kb.quarantine import quarantined

    entries = quarantined(folder)
    if not entries:
        return
    console.print(f"  quarantined journal entries ({len(entries)}): replayed by nothing")
    for e in entries:
        seq = "" if e.seq is None else f", seq {e.seq}"
        runs = f", runs {', '.join(e.runs)}" if e.runs else ""
        console.print(
            f"    {e.journal} line {e.line}{seq}{runs}: {e.error}", markup=False, soft_wrap=True
        )
    for path in sorted({str(e.path) for e in entries}):
        console.print(f"    kept in {path}", markup=False, soft_wrap=True)


def _server_info(home: Path):
    from .kb.embedded import EmbeddedServer

    return EmbeddedServer(home).status()


@app.command("sync")
def sync_cmd(
    include_live: Annotated[
        bool, typer.Option(help="Also replay journals of training processes still running.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Replay journaled provenance that did not reach the store (idempotent)."""
    from .kb.journal import describe_os_error, journal_folder, sync

    settings = resolve_settings(store=store)
    started = time.monotonic()
    try:
        connected = _open_store(store)
        reports = sync(connected, journal_folder(settings.home), include_live)
    except ProvKBError as exc:
        raise _fail(f"{exc} (nothing lost: the journals are kept)") from exc
    except OSError as exc:
        raise _fail(f"cannot read the journals: {describe_os_error(exc)}") from exc
    _settle_runs(connected)
    records = sum(r.records for r in reports)
    for report in reports:
        _print_replay(report)
    elapsed = time.monotonic() - started
    console.print(f"replayed {records} records from {len(reports)} journal(s) in {elapsed:.2f} s")
    if any(r.error for r in reports):
        raise _fail("some journals could not be replayed completely (see above); run sync again")


def _print_replay(report) -> None:
    """One journal's line of `provkb sync`, and what it quarantined."""
    if report.skipped_live:
        console.print(f"  {report.name}: skipped (its training process is still writing)")
    elif report.already_replayed:
        console.print(f"  {report.name}: replayed by another provkb sync meanwhile")
    elif report.busy:
        console.print(f"  {report.name}: skipped (another provkb sync is replaying it)")
    elif report.error:
        err_console.print(f"  {report.name}: error: {report.error}", markup=False, soft_wrap=True)
    else:
        console.print(f"  {report.name}: {report.batches} batches, {report.records} records")
    if report.quarantined:
        err_console.print(
            f"  {report.name}: {report.quarantined} entries could not be replayed, "
            f"moved to {report.quarantine_path}:",
            markup=False,
            soft_wrap=True,
        )
        for line in report.details[:10]:
            err_console.print(f"    {line}", markup=False, soft_wrap=True)
        if len(report.details) > 10:
            err_console.print(f"    ... and {len(report.details) - 10} more (provkb status)")


def _settle_runs(store) -> None:
    """After a replay: record silent runs as interrupted, reject what no run will apply."""
    from .kb import lifecycle

    try:
        interrupted = lifecycle.record_interrupted(store)
        rejected = lifecycle.reject_orphaned(store)
    except ProvKBError as exc:
        raise _fail(f"replayed, but could not record interrupted runs: {exc}") from exc
    for run in interrupted:
        after = f"after epoch {run['lastEpoch']}" if run["lastEpoch"] else "before its first epoch"
        console.print(
            f"  run {run['runId']} ({run['name']}): interrupted {after} "
            f"(last heard from {run['lastSeen']})"
        )
    if rejected:
        console.print(f"  {rejected} steering request(s) of ended runs rejected")


# -- demo ---------------------------------------------------------------------------
@app.command("demo")
def demo_cmd(
    epochs: Annotated[int, typer.Option(help="Epochs per run.")] = 10,
    store: StoreOpt = None,
) -> None:
    """Train three real Keras models on scikit-learn's digits, captured into the store."""
    from . import demo

    try:
        demo.run_demo(store=store, epochs=epochs, console=console)
    except ProvKBError as exc:
        raise _fail(str(exc)) from exc


def _register_commands() -> None:
    from . import cli_steering, cli_study, cli_ui

    for module in (cli_steering, cli_study, cli_ui):
        module.register(app)


_register_commands()


def main() -> None:
    """Console entry point."""
    try:
        app()
    except ProvKBError as exc:  # last line of defence: a clear message, no traceback
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
