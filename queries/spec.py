"""What a named query is: its Cypher text, its parameters and how to show its answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ParamType = type[int] | type[float] | type[str]

TYPE_NAMES: dict[type, str] = {int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class Param:
    """One parameter of a named query, as the user gives it (`name=value` on the CLI).

    `choices` limits the accepted values, `minimum` bounds numbers from below.
    """

    name: str
    type: ParamType = str
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: int | float | None = None

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.type]

    def usage(self) -> str:
        """`name=<type>` for a required parameter, `[name=<type> (default)]` otherwise."""
        kind = "|".join(str(c) for c in self.choices) if self.choices else self.type_name
        text = f"{self.name}=<{kind}>"
        if self.required:
            return text
        return f"[{text}]" if self.default is None else f"[{text} ({self.default})]"


@dataclass(frozen=True)
class ChartHint:
    """How a UI may plot the rows: `kind` (line, bar, scatter), x column, y columns,
    and optionally a column whose values make separate series."""

    kind: str
    x: str
    y: tuple[str, ...]
    series: str | None = None


@dataclass(frozen=True)
class NamedQuery:
    """A documented, parameterised lineage query.

    `params` are what the user gives; `constants` are fixed parameters the Cypher text
    needs besides them (data such as hyperparameter names, which never go into the
    text itself). Both travel as Cypher parameters.
    """

    name: str
    summary: str
    description: str
    cypher: str
    params: tuple[Param, ...] = ()
    chart: ChartHint | None = None
    constants: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Param | None:
        """The parameter called `name`, or None."""
        return next((p for p in self.params if p.name == name), None)

    def usage(self) -> str:
        """One line: the query name and its parameters."""
        return " ".join([self.name, *(p.usage() for p in self.params)])
