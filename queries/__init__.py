"""ProvKB's named lineage queries: documented, parameterised Cypher in a registry.

`QUERIES` maps each name to a `NamedQuery`; `run(store, name, **params)` runs one.
The same texts run on Neo4j 5 and on the embedded ArcadeDB. `build(...)` makes a
read-only query from picks instead (`queries.builder`, the app's query builder).
"""

from typing import TYPE_CHECKING, Any

from .registry import QUERIES, coerce_params, get, names, run
from .spec import ChartHint, NamedQuery, Param

if TYPE_CHECKING:
    from .builder import Aggregate, BuiltQuery, Filter, Sort, build

_BUILDER_NAMES = {"Aggregate", "BuiltQuery", "Filter", "Sort", "build"}

__all__ = [
    "QUERIES",
    "Aggregate",
    "BuiltQuery",
    "ChartHint",
    "Filter",
    "NamedQuery",
    "Param",
    "Sort",
    "build",
    "coerce_params",
    "get",
    "names",
    "run",
]


def __getattr__(name: str) -> Any:
    """The query builder's names, imported on first use: `provkb query` never needs them
    and a new CLI process should not pay for them."""
    if name in _BUILDER_NAMES:
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
