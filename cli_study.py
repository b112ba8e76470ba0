"""`provkb study ...` and `provkb studies`: read and steer trial queues from any process.

Only pending items (not yet started) can change; an edit takes effect from the next
iteration of the running study. Exit codes: 0 done, 1 error, 3 edit refused (the item
started or finished, or changed meanwhile: nothing was changed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .cli_options import StoreOpt, cell, console, fail, open_kb
from .typed_text import json_or_text, parse_pairs

REFUSED_EXIT = 3

study_app = typer.Typer(
    help=(
        "Read and steer a study (a steerable queue of hyperparameter combinations). "
        "Only pending items can change; edits take effect from the next iteration. "
        "Exit code 3: the edit was refused and nothing changed."
    ),
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The study's name.")]
ItemArg = Annotated[int, typer.Argument(help="The item's number (see `provkb study list`).")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (recorded with the edit).")
]
PersonOpt = Annotated[
    str | None, typer.Option("--person", help="Who edits (default: the OS user).")
]
VersionOpt = Annotated[
    int | None,
    typer.Option(
        "--version",
        help="The item version you saw (`study list`): refused, nothing changed, unless "
        "the item is still pending at this version.",
    ),
]
ParamsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Hyperparameter as name=value (repeatable); values are JSON when they parse "
        "(0.01, 64, true, [1,2]), else text.",
    ),
]


def _fail(exc: Exception | str) -> typer.Exit:
    from .errors import StudyEditRefused

    if isinstance(exc, StudyEditRefused):
        text = str(exc) if "nothing changed" in str(exc) else f"{exc} (nothing changed)"
        return fail(text, REFUSED_EXIT, label="refused")
    return fail(exc)


def _queue(name: str, store: Path | None):
    return open_kb(store).study(name)


def _params(pairs: list[str] | None, option: str = "--param") -> dict[str, Any]:
    return parse_pairs(pairs, option, convert=json_or_text)


def _report(result, name: str) -> None:
    state = result.state
    gain = "-" if state.last_gain is None else f"{state.last_gain:.4g}"
    avg = "-" if state.moving_average is None else f"{state.moving_average:.4g}"
    if len(result.versions) <= 4:
        items = ", ".join(f"item {i} -> v{v}" for i, v in result.versions.items())
    else:
        added = [i for i, v in result.versions.items() if v == 1]
        revised = len(result.versions) - len(added)
        items = f"{revised} pending item(s) retired, {len(added)} added"
        if added:
            items += f" (items {added[0]}-{added[-1]})"
    console.print(
        f"{result.action} applied to study [bold]{escape(name)}[/] (edit {result.request_id}): "
        f"{items or 'no item'}; takes effect from iteration {result.effective_from}\n"
        f"  study state seen: {state.iterations} iteration(s) finished, last gain {gain}, "
        f"moving average (k={state.k}) {avg}",
        emoji=False,
    )


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return escape(json.dumps(value))
    return escape(str(value))


# -- reading --------------------------------------------------------------------------
@study_app.command("list")
def list_cmd(
    name: NameArg,
    removed: Annotated[bool, typer.Option("--removed", help="Also show removed items.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
) -> None:
    """Show the queue, the iterations (gain, moving average) and the queue edits.

    Queue columns: item, position (place among pending items, 1 = next), status,
    iteration and gain (once evaluated), params, version.
    """
    from dataclasses import asdict

    from rich.table import Table

    from .errors import ProvKBError
    from .kb.study import moving_average
    from .ontology import ItemStatus

    PENDING = ItemStatus.PENDING

    try:
        queue = _queue(name, store)
        settings = queue.settings()
        items = queue.items(include_removed=removed)
        edits = queue.edits()
    except ProvKBError as exc:
        raise _fail(exc) from exc
    k = int(settings.get("k") or 10)
    gains: list[float | None] = []
    iterations = []
    for item in items:
        if item.iteration is not None and item.status in (ItemStatus.DONE, ItemStatus.FAILED):
            gains.append(item.gain)
            iterations.append((item, moving_average(gains, k)))
    if as_json:
        data = {
            "study": {k_: v for k_, v in settings.items()},
            "items": [asdict(i) for i in items],
            "iterations": [
                {
                    "iteration": i.iteration,
                    "itemId": i.item_id,
                    "gain": i.gain,
                    "movingAverage": avg,
                    "runId": i.run_id,
                    "status": i.status,
                }
                for i, avg in iterations
            ],  # fmt: skip
            "edits": edits,
        }
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    gain = settings.get("gainMetric") or settings.get("gainFunction") or "?"
    console.print(
        f"study [bold]{escape(name)}[/] ({settings.get('status')}): gain {escape(str(gain))} "
        f"({settings.get('mode')}), k={k}, sampler {settings.get('sampler')}, "
        f"space {escape(json.dumps(settings.get('space')))}",
        emoji=False,
    )
    table = Table(title="queue", header_style="bold cyan")
    for column in ("item", "position", "status", "iteration", "gain", "params", "version"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            str(item.item_id),
            str(item.rank) if item.status == PENDING else "",
            item.status,
            _fmt(item.iteration),
            _fmt(item.gain),
            escape(json.dumps(item.params)),
            str(item.version),
        )
    console.print(table)
    if iterations:
        table = Table(title="iterations", header_style="bold cyan")
        for column in ("iteration", "item", "gain", f"moving avg (k={k})", "run", "status"):
            table.add_column(column)
        for item, avg in iterations:
            table.add_row(
                str(item.iteration),
                str(item.item_id),
                _fmt(item.gain),
                _fmt(avg),
                item.run_id or "",
                item.status if not item.error else escape(f"{item.status}: {item.error}"),
            )
        console.print(table)
    if edits:
        table = Table(title="queue edits", header_style="bold cyan")
        for column in ("from iteration", "action", "item", "before", "after", "person", "reason"):
            table.add_column(column, overflow="fold")
        for edit in edits:
            table.add_row(
                str((edit.get("iteration") or 0) + 1),
                edit.get("action", ""),
                _fmt(edit.get("itemId")),
                _fmt(edit.get("before")),
                _fmt(edit.get("after")),
                _fmt(edit.get("person")),
                _fmt(edit.get("reason")),
            )
        console.print(table)


def _print_studies(store: Path | None) -> None:
    from rich.table import Table

    from .errors import ProvKBError

    try:
        studies = open_kb(store).studies()
    except ProvKBError as exc:
        raise _fail(exc) from exc
    table = Table(title="studies", header_style="bold cyan")
    for column in ("study", "status", "gain", "mode", "k", "iterations", "space", "started"):
        table.add_column(column, overflow="fold")
    for s in studies:
        table.add_row(
            _fmt(s.get("name")),
            _fmt(s.get("status")),
            _fmt(s.get("gainMetric") or s.get("gainFunction")),
            _fmt(s.get("mode")),
            _fmt(s.get("k")),
            _fmt(s.get("iterations")),
            _fmt(s.get("space")),
            escape(cell(s.get("startedAtTime"))),
        )
    console.print(table)
    console.print(f"[dim]{len(studies)} study(ies)[/]")


@study_app.command("show")
def show_cmd(
    name: Annotated[str | None, typer.Argument(help="A study (omit to list all).")] = None,
    store: StoreOpt = None,
) -> None:
    """List the studies, or show one study's queue (same as `study list NAME`)."""
    if name is None:
        _print_studies(store)
    else:
        list_cmd(name, store=store)


# -- editing --------------------------------------------------------------------------
def _edit(name: str, store: Path | None, change: Callable[[Callable[[], Any]], Any]) -> None:
    """Apply one edit and report it. `change` checks its input, then opens study
    `name`'s queue with the function it is given and edits it; a refused or bad edit
    is a clear error (exit 1, or REFUSED_EXIT) and changes nothing."""
    from .errors import ProvKBError

    try:
        result = change(lambda: _queue(name, store))
    except ProvKBError as exc:
        raise _fail(exc) from exc
    _report(result, name)


def _required(params: dict[str, Any], message: str) -> dict[str, Any]:
    if not params:
        from .errors import ProvKBError

        raise ProvKBError(message)
    return params


@study_app.command("add")
def add_cmd(
    name: NameArg,
    param: ParamsOpt = None,
    position: Annotated[
        int | None,
        typer.Option("--position", min=1, help="Place among pending items (1 = next)."),
    ] = None,
    reason: ReasonOpt = None,
    person: PersonOpt = None,
    store: StoreOpt = None,
) -> None:
    """Add a pending item: `provkb study add NAME -p learning_rate=0.05 -p batch_size=64`."""

    def change(open_queue):
        params = _required(
            _params(param), "give the item's hyperparameters with --param name=value"
        )
        return open_queue().add(params, position, reason, person)

    _edit(name, store, change)


@study_app.command("edit")
def edit_cmd(
    name: NameArg,
    item: ItemArg,
    param: ParamsOpt = None,
    reason: ReasonOpt = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace all the item's hyperparameters (default: merge)."),
    ] = False,
    version: VersionOpt = None,
    person: PersonOpt = None,
    store: StoreOpt = None,
) -> None:
    """Change a pending item's hyperparameters (merged into its current ones)."""

    def change(open_queue):
        params = _required(_params(param), "give the new values with --param name=value")
        return open_queue().edit(item, params, reason, person, replace, version)

    _edit(name, store, change)


@study_app.command("remove")
def remove_cmd(
    name: NameArg,
    item: ItemArg,
    reason: ReasonOpt = None,
    version: VersionOpt = None,
    person: PersonOpt = None,
    store: StoreOpt = None,
) -> None:
    """Remove a pending item from the queue."""
    _edit(name, store, lambda open_queue: open_queue().remove(item, reason, person, version))


@study_app.command("move")
def move_cmd(
    name: NameArg,
    item: ItemArg,
    to: Annotated[
        int, typer.Option("--to", min=1, help="New place among pending items (1 = next).")
    ],
    reason: ReasonOpt = None,
    version: VersionOpt = None,
    person: PersonOpt = None,
    store: StoreOpt = None,
) -> None:
    """Move a pending item to another place in the queue."""
    _edit(name, store, lambda open_queue: open_queue().move(item, to, reason, person, version))


@study_app.command("respace")
def respace_cmd(
    name: NameArg,
    range_: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            help="name=start:end:step, end inclusive (repeatable), "
            "e.g. learning_rate=0.03:0.07:0.01.",
        ),
    ] = None,
    values: Annotated[
        list[str] | None,
        typer.Option("--values", help="name=v1,v2,... explicit values (repeatable)."),
    ] = None,
    reason: ReasonOpt = None,
    replace_space: Annotated[
        bool,
        typer.Option(
            "--replace-space",
            help="Use only the given entries (default: they replace those of the current "
            "space, the others stay).",
        ),
    ] = False,
    person: PersonOpt = None,
    store: StoreOpt = None,
) -> None:
    """Replace every pending item by the expansion of a new space (each recorded)."""

    def change(open_queue):
        from .kb.study.space_text import parse_ranges

        space = parse_ranges(range_, values)
        return open_queue().respace(space, reason, person, merge=not replace_space)

    _edit(name, store, change)


# -- sessions (issue 16: kb/study/sessions.py) ---------------------------------------
@study_app.command("next")
def next_cmd(
    parent: Annotated[str, typer.Argument(help="The study to narrow from.")],
    new: Annotated[str, typer.Argument(help="The new study's name.")],
    top: Annotated[int, typer.Option("--top", "-k", help="Keep the K best trials.")] = 10,
    narrow: Annotated[
        list[str] | None,
        typer.Option("--narrow", help="Narrow this hyperparameter (repeatable; default all)."),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Keep this hyperparameter's range (repeatable)."),
    ] = None,
    add: Annotated[
        list[str] | None,
        typer.Option("--add", help="New hyperparameter: name=start:end:step or name=v1,v2."),
    ] = None,
    range_: Annotated[
        list[str] | None,
        typer.Option("--range", help="A range by hand: name=start:end:step (repeatable)."),
    ] = None,
    values: Annotated[
        list[str] | None,
        typer.Option("--values", help="Values by hand: name=v1,v2,... (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the narrowed ranges, start nothing.")
    ] = False,
    reason: ReasonOpt = None,
    person: PersonOpt = None,
    store: StoreOpt = None,
) -> None:
    """Start the next search session: a new study narrowed from PARENT's top K trials.

    A narrowed range becomes [min, max, step] of the values the top K used (a list keeps
    those values); the others keep PARENT's ranges; --add brings in new ones.
    """
    from .errors import ProvKBError
    from .kb.study.sessions import preview_next
    from .kb.study.space_text import parse_added, parse_ranges

    try:
        given = parse_ranges(range_, values) if range_ or values else None
        added = parse_added(add)
        kb = open_kb(store)
        if dry_run:
            plan, _ = preview_next(kb.store, parent, new, top, narrow, keep, added, given, reason)
            session = None
        else:
            session = kb.next_study(parent, new, top, narrow, added, keep, given, reason, person)
            plan = session.plan
    except ProvKBError as exc:
        raise _fail(exc) from exc
    kept = ", ".join(f"#{k.rank} item {k.item_id} (gain {k.gain:.4g})" for k in plan.kept)
    console.print(f"kept the {plan.top} best trial(s) of {escape(parent)}: {kept}", emoji=False)
    for name, (old, now) in plan.changes().items():
        console.print(f"  {escape(name)}: {_fmt(old) or '(new)'} -> {_fmt(now)}", emoji=False)
    if session is None:
        console.print(f"[dim]dry run: study {escape(new)} not started[/]")
    else:
        console.print(
            f"started study [bold]{escape(new)}[/] (session {session.session}, "
            f"{session.items} item(s)); run it with provkb.Study.open({new!r}).run(...)",
            emoji=False,
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(study_app, name="study")

    @app.command("studies")
    def studies_cmd(store: StoreOpt = None) -> None:
        """List the studies (name, status, gain, iterations, space)."""
        _print_studies(store)
