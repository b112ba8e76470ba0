"""`provkb` commands for steering (registered on the main app by `register`).

provkb steer RUN --set learning_rate=0.05 --reason "loss plateau"
provkb steer RUN --stop
provkb steer RUN --note "val_loss diverges from loss"
"""

from __future__ import annotations

from typing import Annotated

import typer

from .cli_options import StoreOpt, console, err_console, fail, open_kb
from .typed_text import json_or_text, parse_pairs

# Exit codes of `provkb steer`.
EXIT_REJECTED = 1
EXIT_PENDING = 2  # --wait ran out of time; the request stays pending


def _parse_sets(pairs: list[str]) -> dict[str, object]:
    return parse_pairs(
        pairs,
        "--set",
        convert=json_or_text,
        example="name=value (e.g. learning_rate=0.001)",
        need_value=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("steer")
    def steer_cmd(
        run: Annotated[str, typer.Argument(help="Run id or name (the newest run of that name).")],
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help="name=value: set a hyperparameter of the running training (repeatable; "
                "one request each). Values are JSON when they parse (0.01, true), else text.",
                show_default=False,
            ),
        ] = None,
        stop: Annotated[
            bool, typer.Option("--stop", help="Stop the run after its current epoch.")
        ] = False,
        note: Annotated[
            str | None, typer.Option("--note", help="Annotate the run.", show_default=False)
        ] = None,
        reason: Annotated[
            str | None, typer.Option("--reason", help="Why (recorded).", show_default=False)
        ] = None,
        person: Annotated[
            str | None,
            typer.Option("--person", help="Who asks (default: the OS user).", show_default=False),
        ] = None,
        wait: Annotated[
            bool,
            typer.Option(
                "--wait/--no-wait",
                help="Wait until the training applied or rejected the requests.",
            ),
        ] = True,
        timeout: Annotated[
            float, typer.Option("--timeout", help="Seconds --wait waits at most.", min=0)
        ] = 60.0,
        store: StoreOpt = None,
    ) -> None:
        """Steer a running training: set a hyperparameter, stop it, or add a note.

        Requests are applied by the training at its next epoch end and recorded as
        provenance (`provkb query steering-history`). Exit code 1 when a request is
        rejected (the reason is printed), 2 when --wait timed out (still pending).
        """
        from rich.markup import escape

        from .errors import ProvKBError, SteeringRejected
        from .kb.steering import describe
        from .ontology import SteeringStatus

        APPLIED = SteeringStatus.APPLIED
        FINAL = (SteeringStatus.APPLIED, SteeringStatus.REJECTED)

        try:
            changes = _parse_sets(set_ or [])
            if not changes and not stop and note is None:
                raise ProvKBError("nothing to ask: give --set name=value, --stop or --note")
            try:
                requests = open_kb(store).steer(
                    run,
                    set=changes,
                    stop=stop,
                    note=note,
                    reason=reason,
                    person=person,
                    wait=wait,
                    timeout=timeout,
                )
                rejected = False
            except SteeringRejected as exc:
                requests = exc.requests
                rejected = True
                if not requests:
                    raise
        except ProvKBError as exc:
            raise fail(exc) from exc
        for request in requests:
            line = escape(describe(request))
            if request.status == APPLIED:
                console.print(f"[green]{line}[/]", soft_wrap=True)
            elif request.status in FINAL:
                err_console.print(f"[bold red]error:[/] {line}", soft_wrap=True)
            elif wait:
                err_console.print(
                    f"[yellow]{line}[/] (still {request.status} after {timeout:g} s: "
                    f"is the training still running its epoch?)",
                    soft_wrap=True,
                )
            else:
                console.print(f"{line}: it applies at the run's next epoch end", soft_wrap=True)
        if rejected:
            raise typer.Exit(EXIT_REJECTED)
        if wait and any(r.status not in FINAL for r in requests):
            raise typer.Exit(EXIT_PENDING)
