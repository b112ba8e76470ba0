"""`provkb reproduce RUN -o train_again.py`: a runnable, readable Keras script that
trains a run again from its provenance, with capture on and linked to the original
(registered on the main app by `register`)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from .cli_options import StoreOpt, console, fail, open_kb
from .errors import ProvKBError, ReproduceError

DEFAULT_OUTPUT = Path("train_again.py")
STDOUT = "-"


def write_script(path: Path, text: str, force: bool) -> None:
    """Write `text` to `path` whole or not at all; ReproduceError (nothing written) when
    the file exists without `force` or the folder cannot take it."""
    if path.is_dir():
        raise ReproduceError(f"{path} is a folder: give the script's file name with -o")
    if path.exists() and not force:
        raise ReproduceError(f"{path} exists: give another name with -o, or --force")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ReproduceError(f"the folder {folder} does not exist")
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        raise ReproduceError(f"cannot write {path}: {exc.strerror or exc}") from exc


def register(app: typer.Typer) -> None:
    """Add this module's command to `app`."""

    @app.command("reproduce")
    def reproduce_cmd(
        run: Annotated[
            str, typer.Argument(help="Run id, run node id or name (the newest run of that name).")
        ],
        output: Annotated[
            str,
            typer.Option("--output", "-o", help="The script to write ('-': print it)."),
        ] = str(DEFAULT_OUTPUT),
        force: Annotated[
            bool, typer.Option("--force", help="Overwrite the output file if it exists.")
        ] = False,
        store: StoreOpt = None,
    ) -> None:
        """Write a runnable Keras script that trains RUN again from its provenance: the
        model from its stored configuration, optimizer, compile and fit arguments, seed,
        callbacks and data loading, with ProvKB capture on; the new run is recorded as
        reproducing RUN (provkb query reproductions -p run=RUN)."""
        path = None if output == STDOUT else Path(output)
        try:
            if path is not None and path.exists() and not force:  # before any work
                raise ReproduceError(f"{path} exists: give another name with -o, or --force")
            name = path.name if path is not None else DEFAULT_OUTPUT.name
            text = open_kb(store).reproduction_script(run, name)
            if path is None:
                sys.stdout.write(text)
                return
            write_script(path, text, force)
        except ProvKBError as exc:
            raise fail(exc) from exc
        marks = ("# NOT REPRODUCED", "# PLACEHOLDER")
        gaps = sum(line.strip().startswith(marks) for line in text.splitlines())
        console.print(f"wrote {path}: run it with [bold]python {path}[/]", highlight=False)
        if gaps:
            console.print(
                f"{gaps} part(s) could not be rebuilt from the provenance: see NOT REPRODUCED "
                f"and PLACEHOLDER in the script",
                highlight=False,
            )
