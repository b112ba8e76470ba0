"""The `provkb` command line: server, queries, read-only Cypher, export, import, demo."""

from __future__ import annotations

import csv
import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from .cli_options import (
    FormatOpt,
    OutputFormat,
    ParamOpt,
    StoreOpt,
    console,
    csv_cell,
    err_console,
    fail,
    open_kb,
    print_rows,
)
from .errors import ProvKBError
from .knowledge_base import KnowledgeBase
from .typed_text import json_or_text, parse_pairs

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


# -- server -------------------------------------------------------------------------
@server_app.command("start")
def server_start(store: StoreOpt = None) -> None:
    """Start the embedded server in the background (or report the running one)."""
    kb = KnowledgeBase(store)
    started = time.monotonic()
    try:
        home = kb.settings.home
        info = kb.start_server()
    except ProvKBError as exc:
        raise fail(exc) from exc
    console.print(
        f"embedded store [bold]{home}[/] on {info.uri} (pid {info.pid}, "
        f"{time.monotonic() - started:.1f} s)"
    )


@server_app.command("status")
def server_status(store: StoreOpt = None) -> None:
    """Show whether the embedded server runs, where, and how much it holds."""
    kb = KnowledgeBase(store)
    try:
        home = kb.settings.home
        info = kb.server()
        if info is None:
            console.print(f"no embedded server running for {home}")
            raise typer.Exit(3)
        counts = kb.counts()
    except ProvKBError as exc:
        raise fail(exc) from exc
    uptime = time.time() - info.started_at
    console.print(
        f"running: {home}\n  bolt: {info.uri}  pid: {info.pid}  up {uptime:.0f} s  "
        f"CPU priority: {info.priority}\n"
        f"  nodes: {counts['nodes']}  relationships: {counts['relationships']}"
    )


@server_app.command("stop")
def server_stop(store: StoreOpt = None) -> None:
    """Stop the embedded server (the data stays in the folder)."""
    kb = KnowledgeBase(store)
    try:
        home = kb.settings.home
        stopped = kb.stop_server()
    except ProvKBError as exc:
        raise fail(exc) from exc
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
    if list_ or name is None:
        table = Table(header_style="bold cyan")
        for column in ("query", "parameters", "what it answers"):
            table.add_column(column, overflow="fold")
        for q in KnowledgeBase.queries():
            params = ", ".join(
                f"{p.name}{'' if p.required else '=' + str(p.default)}" for p in q.params
            )
            table.add_row(Text(q.name), Text(params), Text(q.summary))
        console.print(table)
        return
    try:
        raw = parse_pairs(param)
        KnowledgeBase.check_query(name, raw)  # a bad name or parameter fails before connecting
        result = open_kb(store).query(name, **raw)
    except ProvKBError as exc:
        raise fail(exc) from exc
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
        params = parse_pairs(param, convert=json_or_text)
        kb = open_kb(store)
        limits = {"timeout": timeout, "max_rows": max_rows}
        if fmt is OutputFormat.table:
            result = kb.cypher(text, params, **limits)
            print_rows(result.columns, result.rows, fmt)
            shown, truncated = len(result.rows), result.truncated
        else:
            printer = _RowStream(fmt)
            streamed = kb.stream_cypher(text, params, printer.row, **limits)
            printer.close(streamed.columns)
            shown, truncated = streamed.rows, streamed.truncated
    except ProvKBError as exc:
        raise fail(exc) from exc
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
            self.csv.writerow([csv_cell(row.get(c)) for c in columns])
        else:
            sys.stdout.write("\n" + json.dumps(row, default=str))

    def close(self, columns: list[str]) -> None:
        if not self.started:
            self._start(columns)
        if self.fmt is OutputFormat.json:
            sys.stdout.write("\n]\n")
        sys.stdout.flush()


# -- export / import ----------------------------------------------------------------
# Formats come from the one registry, kb/formats.py (imported when a command runs: it
# loads prov and rdflib); an unknown name is refused with the list of known ones.


@app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="A format name, e.g. provjson, provjsonld, provn, provxml, turtle, svg "
            "(default: from the file's suffix; an unknown name lists them all).",
        ),
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run (id).")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Only this experiment's runs.")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Export provenance as PROV-JSON, PROV-N, PROV-XML, RDF (Turtle, ...) or a diagram."""
    from .kb import formats

    started = time.monotonic()
    try:
        spec = formats.export_format(fmt) if fmt else formats.for_path(output, "export")
        chosen = spec.name
        count = open_kb(store).export(chosen, output, run_id=run, experiment=experiment)
    except ProvKBError as exc:
        raise fail(exc) from exc
    console.print(
        f"wrote {count} PROV records to {output} ({chosen}, {time.monotonic() - started:.2f} s)",
        markup=False,
        highlight=False,
    )


class OnConflict(StrEnum):
    refuse = "refuse"
    skip = "skip"


IMPORT_CONFLICT_EXIT = 3  # `provkb import` refused: the file would change stored records


@app.command("import")
def import_cmd(
    path: Annotated[
        Path,
        typer.Argument(help="A PROV file (format from its suffix: .json, .ttl, .provn, ...)."),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="A format name, e.g. provjson, provn, provxml, turtle (default: from the "
            "file's suffix; an unknown name lists them all).",
        ),
    ] = None,
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
    from .errors import ImportConflict

    if replace and on_conflict is OnConflict.skip:
        raise fail("--replace and --on-conflict skip contradict each other; choose one")
    mode = "replace" if replace else on_conflict.value
    started = time.monotonic()
    try:
        report = open_kb(store).import_file(path, fmt, mode, person=person)
    except ImportConflict as exc:
        raise fail(exc, IMPORT_CONFLICT_EXIT) from exc
    except ProvKBError as exc:
        raise fail(exc) from exc
    for line in report.lines():
        console.print(line, markup=False, highlight=False)
    console.print(f"({time.monotonic() - started:.2f} s)", markup=False, highlight=False)


# -- journal ------------------------------------------------------------------------
@app.command("status")
def status_cmd(store: StoreOpt = None) -> None:
    """Show the knowledge base and the capture backlog (journaled records not yet stored)."""
    kb = KnowledgeBase(store)
    try:
        status = kb.status()
    except ProvKBError as exc:
        raise fail(exc) from exc
    _plain(f"knowledge base: {status.settings.describe()}")
    if status.settings.embedded:
        info = status.server
        _plain(f"  embedded server: {'running on ' + info.uri if info else 'not running'}")
    if not status.journals:
        _plain("  capture backlog: none")
    else:
        _print_backlog(status.journals)
    _print_quarantine(status.quarantined)


def _plain(line: str, err: bool = False) -> None:
    """One line of text, printed as it is (no markup, no highlighting, no wrapping)."""
    (err_console if err else console).print(line, markup=False, highlight=False, soft_wrap=True)


def _print_backlog(found: list) -> None:
    table = Table(header_style="bold cyan", title="capture backlog")
    for column in ("run", "pending records", "journal", "writer"):
        table.add_column(column)
    for backlog in found:
        st = backlog.status
        if st is None:
            table.add_row("?", "?", Text(backlog.name), Text(f"unreadable: {backlog.error}"))
            continue
        writer = f"live (pid {st.owner_pid})" if st.owner_alive else "gone: run provkb sync"
        if st.bad_lines:
            writer += f"; {st.bad_lines} unreadable entries (sync quarantines them)"
        for run, records in sorted(st.pending_by_run.items()) or [("-", 0)]:
            table.add_row(Text(run), str(records), Text(st.name), Text(writer))
    console.print(table)


def _print_quarantine(entries: list) -> None:
    """The journal entries sync set aside: where from, which runs, why."""
    if not entries:
        return
    _plain(f"  quarantined journal entries ({len(entries)}): replayed by nothing")
    for e in entries:
        seq = "" if e.seq is None else f", seq {e.seq}"
        runs = f", runs {', '.join(e.runs)}" if e.runs else ""
        _plain(f"    {e.journal} line {e.line}{seq}{runs}: {e.error}")
    for path in sorted({str(e.path) for e in entries}):
        _plain(f"    kept in {path}")


@app.command("sync")
def sync_cmd(
    include_live: Annotated[
        bool, typer.Option(help="Also replay journals of training processes still running.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Replay journaled provenance that did not reach the store (idempotent)."""
    from .errors import JournalError

    started = time.monotonic()
    try:
        kb = open_kb(store)
        reports = kb.sync(include_live)
    except JournalError as exc:
        raise fail(exc) from exc
    except ProvKBError as exc:
        raise fail(f"{exc} (nothing lost: the journals are kept)") from exc
    _settle_runs(kb)
    records = sum(r.records for r in reports)
    for report in reports:
        _print_replay(report)
    elapsed = time.monotonic() - started
    console.print(f"replayed {records} records from {len(reports)} journal(s) in {elapsed:.2f} s")
    if any(r.error for r in reports):
        raise fail("some journals could not be replayed completely (see above); run sync again")


def _print_replay(report) -> None:
    """One journal's line of `provkb sync`, and what it quarantined."""
    if report.skipped_live:
        _plain(f"  {report.name}: skipped (its training process is still writing)")
    elif report.already_replayed:
        _plain(f"  {report.name}: replayed by another provkb sync meanwhile")
    elif report.busy:
        _plain(f"  {report.name}: skipped (another provkb sync is replaying it)")
    elif report.error:
        _plain(f"  {report.name}: error: {report.error}", err=True)
    else:
        _plain(f"  {report.name}: {report.batches} batches, {report.records} records")
    if report.quarantined:
        _plain(
            f"  {report.name}: {report.quarantined} entries could not be replayed, "
            f"moved to {report.quarantine_path}:",
            err=True,
        )
        for line in report.details[:10]:
            _plain(f"    {line}", err=True)
        if len(report.details) > 10:
            _plain(f"    ... and {len(report.details) - 10} more (provkb status)", err=True)


def _settle_runs(kb: KnowledgeBase) -> None:
    """After a replay: record silent runs as interrupted, reject what no run will apply."""
    try:
        settled = kb.settle_runs()
    except ProvKBError as exc:
        raise fail(f"replayed, but could not record interrupted runs: {exc}") from exc
    for run in settled.interrupted:
        after = f"after epoch {run['lastEpoch']}" if run["lastEpoch"] else "before its first epoch"
        _plain(
            f"  run {run['runId']} ({run['name']}): interrupted {after} "
            f"(last heard from {run['lastSeen']})"
        )
    if settled.rejected_requests:
        _plain(f"  {settled.rejected_requests} steering request(s) of ended runs rejected")


# -- delete -----------------------------------------------------------------------
@app.command("delete")
def delete_cmd(
    run: Annotated[str | None, typer.Option("--run", help="A run (id).")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Every run of this experiment.")
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="A study: its queue and iteration runs.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    person: Annotated[
        str | None, typer.Option("--person", help="Who deletes (default: the OS user).")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Delete a run, an experiment's runs or a study with everything only they produced.

    Shared datasets, scripts and agents stay while other runs use them; the deletion is
    recorded as a Deletion activity (who, when, what) that outlives it."""
    try:
        kb = open_kb(store)
        plan = kb.deletion_plan(run, experiment, study)
    except ProvKBError as exc:
        raise fail(exc) from exc
    what = f"{plan.scope} {plan.name!r}: {len(plan.runs)} run(s)"
    if plan.runs:
        what += f" ({', '.join(plan.runs[:10])}{' ...' if len(plan.runs) > 10 else ''})"
    if not yes:
        if not sys.stdin.isatty():
            raise fail(f"deleting {what} needs --yes (no terminal to confirm on); nothing deleted")
        if not typer.confirm(f"Delete {what} and everything only they produced?"):
            raise fail("nothing deleted")
    try:
        report = kb.delete(run, experiment, study, person=person)
    except ProvKBError as exc:
        raise fail(f"{exc} (nothing deleted)") from exc
    _plain(
        f"deleted {what}: {report.nodes} nodes; recorded as {report.record_id} (by {report.person})"
    )


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
        raise fail(exc) from exc


def _register_commands() -> None:
    from . import cli_reproduce, cli_steering, cli_study, cli_ui

    for module in (cli_steering, cli_study, cli_ui, cli_reproduce):
        module.register(app)


def _register_scan() -> None:
    from . import cli_scan

    cli_scan.register(app)


_register_commands()
_register_scan()


# Commands that only talk to the store never use a data frame, but the neo4j driver
# imports pandas and pyarrow whenever they are installed (neo4j/_optional_deps.py, for
# `Result.to_df` and vectors): about 0.4 s of every new process's start, which a person
# waits for on each `provkb query`. For these commands the process sees them as not
# installed, which the driver supports (it imports them inside `suppress(ImportError)`).
STORE_COMMANDS = frozenset(
    {"query", "cypher", "export", "import", "status", "sync", "delete", "steer", "studies"}
    | {"study", "server"}
)
DATAFRAME_MODULES = ("pandas", "pyarrow")


def skip_dataframes(argv: list[str]) -> bool:
    """Before the driver is imported: keep pandas and pyarrow out of a store command's
    process (unless something imported them already). True if it did."""
    if len(argv) < 2 or argv[1] not in STORE_COMMANDS or "neo4j" in sys.modules:
        return False
    for name in DATAFRAME_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # import -> ImportError
    return True


def main() -> None:
    """Console entry point."""
    skip_dataframes(sys.argv)
    try:
        app()
    except ProvKBError as exc:  # last line of defence: a clear message, no traceback
        fail(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
