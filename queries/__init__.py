"""ProvKB's named lineage queries: documented, parameterised Cypher in a registry.

`QUERIES` maps each name to a `NamedQuery`; `run(store, name, **params)` runs one.
The same texts run on Neo4j 5 and on the embedded ArcadeDB. `build(...)` makes a
read-only query from picks instead (`queries.builder`, the app's query builder).
"""

from .builder import Aggregate, BuiltQuery, Filter, Sort, build
from .registry import QUERIES, coerce_params, get, names, run
from .spec import ChartHint, NamedQuery, Param

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
