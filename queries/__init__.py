"""ProvKB's named lineage queries: documented, parameterised Cypher in a registry.

`QUERIES` maps each name to a `NamedQuery`; `run(store, name, **params)` runs one.
The same texts run on Neo4j 5 and on the embedded ArcadeDB.
"""

from .registry import QUERIES, coerce_params, get, names, run
from .spec import ChartHint, NamedQuery, Param

__all__ = ["QUERIES", "ChartHint", "NamedQuery", "Param", "coerce_params", "get", "names", "run"]
