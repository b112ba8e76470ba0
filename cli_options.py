"""Options shared by the `provkb` commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

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
