"""The registry of named queries: look one up, check its parameters, run it.

Usage: `registry.run(store, "epochs", run="3f9a0c1d2e4b").rows`, or, from CLI text,
`store.read(q.cypher, **coerce_params(q, {"run": "3f9a0c1d2e4b"}))` with `q = get("epochs")`.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from . import library
from .spec import ChartHint, NamedQuery, Param

if TYPE_CHECKING:
    from ..kb.store import QueryResult, Store

__all__ = ["QUERIES", "ChartHint", "NamedQuery", "Param", "coerce_params", "get", "names", "run"]

# `Store.read(query, **params)` takes the text as `query`: no parameter may be called so.
_RESERVED_PARAMS = frozenset({"query", "self"})
_PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _check(query: NamedQuery) -> NamedQuery:
    """Refuse a query whose text and declared parameters disagree (a programming error)."""
    declared = [p.name for p in query.params] + list(query.constants)
    if len(set(declared)) != len(declared):
        raise ValueError(f"query {query.name!r}: a parameter is declared twice")
    if _RESERVED_PARAMS & set(declared):
        raise ValueError(f"query {query.name!r}: parameter names {_RESERVED_PARAMS} are taken")
    used = set(_PARAM_REF.findall(query.cypher))
    if used != set(declared):
        raise ValueError(
            f"query {query.name!r}: text uses {sorted(used)}, declares {sorted(declared)}"
        )
    for p in query.params:
        if p.type not in (int, float, str):
            raise ValueError(f"query {query.name!r}: parameter {p.name!r} has type {p.type}")
    for name in library.EXACTLY_ONE_OF.get(query.name, ()):
        p = query.param(name)
        if p is None or p.required or p.default is not None:
            raise ValueError(
                f"query {query.name!r}: {name!r} of an exactly-one group must be declared, "
                f"optional and without default"
            )
    return query


QUERIES: dict[str, NamedQuery] = {q.name: _check(q) for q in library.ALL}


def names() -> list[str]:
    """The names of all queries, sorted."""
    return sorted(QUERIES)


def get(name: str) -> NamedQuery:
    """The query called `name`; QueryError (with the known names) when there is none."""
    try:
        return QUERIES[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), names(), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise QueryError(f"unknown query {name!r}: {hint}known queries: {', '.join(names())}")


def _convert(query: NamedQuery, param: Param, value: Any) -> Any:
    where = f"parameter {param.name!r} of query {query.name!r}"
    expected = {int: "an integer", float: "a number", str: "a string"}[param.type]
    bad = QueryError(f"{where} must be {expected}, got {value!r}")
    if isinstance(value, bool):  # bool is an int in Python, never a valid value here
        raise bad
    if param.type is str:
        if not isinstance(value, str | int | float):
            raise bad
        converted: Any = str(value)
    elif param.type is int:
        if isinstance(value, int):
            converted = value
        elif isinstance(value, float) and value.is_integer():
            converted = int(value)
        elif isinstance(value, str):
            try:
                converted = int(value.strip())
            except ValueError:
                raise bad from None
        else:
            raise bad
        if not -(2**63) <= converted < 2**63:  # what a Bolt store holds
            raise QueryError(f"{where} must be a 64-bit integer (below 2^63), got {value!r}")
    else:
        if isinstance(value, int | float):
            converted = float(value)
        elif isinstance(value, str):
            try:
                converted = float(value.strip())
            except ValueError:
                raise bad from None
        else:
            raise bad
        if not math.isfinite(converted):
            raise bad
    if param.choices is not None and converted not in param.choices:
        choices = ", ".join(str(c) for c in param.choices)
        raise QueryError(f"{where} must be one of {choices}, got {value!r}")
    if param.minimum is not None and converted < param.minimum:
        raise QueryError(f"{where} must be at least {param.minimum}, got {value!r}")
    return converted


def coerce_params(query: NamedQuery | str, raw: Mapping[str, Any] | None = None) -> dict:
    """The Cypher parameters for `query` from user values (CLI strings or Python values).

    Converts each value to its parameter's type, fills in defaults (a None value counts
    as not given) and adds the query's constants. QueryError names the parameter when
    one is unknown, a required one is missing, or a value has the wrong type or range,
    and names the group when a query needs exactly one of some parameters
    (`library.EXACTLY_ONE_OF`) and gets both or neither.
    """
    if isinstance(query, str):
        query = get(query)
    raw = dict(raw or {})
    known = [p.name for p in query.params]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        accepted = ", ".join(known) if known else "none"
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise QueryError(
            f"query {query.name!r} has no parameter {unknown[0]!r}{hint}; "
            f"its parameters: {accepted}"
        )
    params: dict[str, Any] = {}
    for p in query.params:
        value = raw.get(p.name)
        if value is None:
            if p.required:
                raise QueryError(
                    f"query {query.name!r} needs parameter {p.name!r} ({p.help}); "
                    f"usage: {query.usage()}"
                )
            params[p.name] = p.default
        else:
            params[p.name] = _convert(query, p, value)
    group = library.EXACTLY_ONE_OF.get(query.name, ())
    if group and sum(params[name] is not None for name in group) != 1:
        given = [name for name in group if params[name] is not None]
        raise QueryError(
            f"query {query.name!r} needs exactly one of parameters "
            f"{', '.join(repr(n) for n in group)}, got "
            f"{'both' if given else 'neither'}; usage: {query.usage()}"
        )
    for key, value in query.constants.items():
        params[key] = list(value) if isinstance(value, list | tuple) else value
    return params


def run(store: Store, name: str, **params: Any) -> QueryResult:
    """Run the query called `name` with user parameters; returns its columns and rows."""
    query = get(name)
    return store.read(query.cypher, **coerce_params(query, params))
