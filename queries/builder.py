"""Queries built from picks, without typing Cypher (Keras-Prov++'s query builder).

    q = build("epochs", columns=["optimizer", "metric.loss"], filters=[("epoch", "=", 30)])
    q.cypher, q.params       # the generated text and its parameters
    q.run(kb).rows           # read-only, through the console (KnowledgeBase or Store)

A person picks a subject (`SUBJECTS`: runs, epochs, hyperparameter values, adaptations,
steering actions, studies), filters (a field compared with a value), columns, an
optional grouping with aggregates (count, min, max, avg), a sort and a limit.

Fields are the subject's own (`Subject.fields`, each a property of `ontology.Prop`),
`hp.<name>` (the initial value of a hyperparameter the run used), `metric.<key>` (an
epoch's metric) and `summary.<stat>.<key>` (a run's summary). Every value travels as
a parameter, and so do user names (hyperparameter names, metric keys: `m[$p0]`); the
text holds only labels, relationship types and properties from `provkb.ontology`, so
anything not in a subject's whitelist is refused (QueryError naming it) before a text
exists. The text sticks to the Cypher both engines answer alike (docs/engines.md):
nulls sort last on both (`x IS NULL, x`), and every column breaks ties.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from ..ontology import (
    HYPERPARAMETER,
    USED,
    HyperparameterName,
    Prop,
    SummaryStat,
    metric_prop,
    summary_prop,
)
from .builder_subjects import (
    BY_LABEL,
    LABEL_TEST,
    NUMBER,
    STATUS,
    SUBJECTS,
    TEXT,
    TIME,
    VALUE,
    Subject,
)
from .spec import ChartHint

if TYPE_CHECKING:
    from ..kb.store import QueryResult

__all__ = [
    "AGGREGATES",
    "OPERATORS",
    "SUBJECTS",
    "Aggregate",
    "BuiltQuery",
    "Filter",
    "Sort",
    "Subject",
    "build",
    "field_kind",
]

# Operators a filter may use, and their Cypher.
OPERATORS: dict[str, str] = {
    "=": "=",
    "!=": "<>",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "is null": "IS NULL",
    "is not null": "IS NOT NULL",
}
NULL_OPERATORS = ("is null", "is not null")
AGGREGATES = ("count", "min", "max", "avg")
SUMMARY_STATS = (*(getattr(SummaryStat, s) for s in vars(SummaryStat) if s.isupper()), "mean")
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
INT64 = (-(2**63), 2**63 - 1)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words an alias is backtick-quoted for (aggregate names and clause words).
_RESERVED = (
    "count min max avg sum all any none single exists case when then else end and or xor "
    "not in is null true false match optional where with return order by skip limit as "
    "asc desc ascending descending distinct union unwind call yield create merge set "
    "delete detach remove foreach load index class"
)
_QUOTED = frozenset(_RESERVED.split())


@dataclass(frozen=True)
class Filter:
    """`field op value` (`value` unused for `is null` / `is not null`)."""

    field: str
    op: str = "="
    value: Any = None


@dataclass(frozen=True)
class Aggregate:
    """`fn(field)` over each group (`count` without a field counts rows); `name` is
    the column's name (default `<fn>_<field>`)."""

    fn: str
    field: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Sort:
    """Order by an answer column (its name or the field it shows)."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class BuiltQuery:
    """A generated read-only query: its text, its parameters and its answer's columns."""

    subject: str
    cypher: str
    params: dict[str, Any]
    columns: tuple[str, ...]
    sources: tuple[str, ...]  # what each column shows: a field, or `fn(field)`
    limit: int
    chart: ChartHint | None = None

    def run(self, kb: Any) -> QueryResult:
        """The answer, through the read-only console of a `KnowledgeBase` or `Store`."""
        reader = kb.cypher if hasattr(kb, "cypher") else kb.read_only
        return reader(self.cypher, self.params, max_rows=self.limit)

    def params_json(self) -> str:
        """The parameters as the Cypher editor takes them (a JSON object)."""
        return json.dumps(self.params, indent=1)

    def cli(self) -> str:
        """The same query as a `provkb cypher` command line."""
        args = ["provkb", "cypher", self.cypher]
        for name, value in self.params.items():
            args += ["-p", f"{name}={json.dumps(value)}"]
        return " ".join(shlex.quote(a) for a in args)


@dataclass
class _Column:
    alias: str
    expr: str  # over the WITH projection (an alias, or an aggregate of one)
    source: str
    kind: str


@dataclass
class _Resolved:
    expr: str
    kind: str
    alias: str  # wanted alias (made unique later)
    needs: frozenset[str]


@dataclass
class _Compiler:
    subject: Subject
    params: dict[str, Any] = field(default_factory=dict)
    hps: dict[str, str] = field(default_factory=dict)  # hyperparameter name -> variable
    required_hps: set[str] = field(default_factory=set)

    def param(self, value: Any, shared: bool = False) -> str:
        """A new parameter holding `value` (`shared`: the one already holding it)."""
        if shared:
            same = (k for k, v in self.params.items() if type(v) is type(value) and v == value)
            if (found := next(same, None)) is not None:
                return f"${found}"
        name = f"p{sum(1 for k in self.params if not k.endswith('Name'))}"
        self.params[name] = value
        return f"${name}"

    def _hp(self, name: str) -> str:
        if name not in self.hps:
            self.hps[name] = f"hp{len(self.hps)}"
            self.params[f"{self.hps[name]}Name"] = name
        return self.hps[name]

    def _unknown(self, role: str, spec: Any) -> QueryError:
        known = ", ".join(self.subject.field_names())
        return QueryError(
            f"{role} {spec!r} is not a field of {self.subject.name}; its fields: {known}"
        )

    def resolve(self, spec: Any, role: str) -> _Resolved:
        """The Cypher of field `spec` (QueryError naming it when it is none)."""
        if not isinstance(spec, str) or not spec:
            raise QueryError(f"{role} {spec!r}: a field is a non-empty name")
        s = self.subject
        own = s.fields.get(spec)
        if own is not None:
            return _Resolved(own.expr, own.kind, spec, frozenset(_vars(own.expr, s)))
        head, _, rest = spec.partition(".")
        if s.has_run and (spec == "optimizer" or (head == "hp" and rest)):
            name = HyperparameterName.OPTIMIZER if spec == "optimizer" else rest
            var = self._hp(name)
            return _Resolved(f"{var}.{Prop.VALUE}", VALUE, name, frozenset({var}))
        if s.has_metrics and head == "metric" and rest:
            key = self.param(metric_prop(rest), shared=True)
            return _Resolved(f"m[{key}]", NUMBER, rest, frozenset({"m"}))
        if s.has_run and head == "summary":
            stat, _, metric = rest.partition(".")
            if stat in SUMMARY_STATS and metric:
                return self._summary(stat, metric)
            raise QueryError(
                f"{role} {spec!r}: a run summary field is summary.<stat>.<metric> with stat "
                f"one of {', '.join(SUMMARY_STATS)}"
            )
        raise self._unknown(role, spec)

    def _summary(self, stat: str, metric: str) -> _Resolved:
        alias = f"{stat}_{metric}"
        if stat != "mean":
            return _Resolved(
                f"r[{self.param(summary_prop(stat, metric), shared=True)}]",
                NUMBER,
                alias,
                frozenset("r"),
            )
        total = self.param(summary_prop(SummaryStat.SUM, metric), shared=True)
        count = self.param(summary_prop(SummaryStat.COUNT, metric), shared=True)
        expr = f"CASE WHEN r[{count}] > 0 THEN toFloat(r[{total}]) / r[{count}] END"
        return _Resolved(expr, NUMBER, alias, frozenset("r"))

    def condition(self, f: Filter) -> tuple[str, frozenset[str]]:
        """The Cypher condition of a filter, and the variables it needs."""
        where = f"filter on {f.field!r}"
        if not isinstance(f.op, str) or f.op.lower() not in OPERATORS:
            raise QueryError(
                f"{where}: unknown operator {f.op!r}; operators: {', '.join(OPERATORS)}"
            )
        op = f.op.lower()
        r = self.resolve(f.field, "filter field")
        if op in NULL_OPERATORS:
            if f.value is not None:
                raise QueryError(f"{where}: {op!r} takes no value, got {f.value!r}")
            return f"{r.expr} {OPERATORS[op]}", r.needs
        for var in r.needs:
            if var in self.hps.values():
                self.required_hps.add(var)
        value = _checked_value(where, op, f.value, r.kind, self.subject.statuses)
        p = self.param(value)
        if r.kind == TIME:  # compared as instants, whatever offset the text has
            return f"datetime({r.expr}).epochMillis {OPERATORS[op]} datetime({p}).epochMillis", (
                r.needs
            )
        return f"{r.expr} {OPERATORS[op]} {p}", r.needs


def _vars(expr: str, subject: Subject) -> set[str]:
    return {v for v in subject.variables if re.search(rf"\b{v}\b[.\[]", expr)}


def _checked_value(where: str, op: str, value: Any, kind: str, statuses: Sequence[str]) -> Any:
    """A filter's value as it is sent (a parameter), or QueryError saying what is wrong."""
    if value is None:
        raise QueryError(f"{where}: {op!r} needs a value (or use 'is null')")
    if kind == TIME:
        return _instant(where, value)
    if kind == STATUS:
        if op not in ("=", "!=") or value not in statuses:
            raise QueryError(
                f"{where}: a status is compared with = or != and is one of "
                f"{', '.join(statuses)}; got {op!r} {value!r}"
            )
        return value
    if kind == NUMBER and isinstance(value, str):
        try:
            value = float(value) if re.search(r"[.eE]|nan|inf", value) else int(value)
        except ValueError:
            raise QueryError(f"{where}: needs a number, got {value!r}") from None
    if kind == TEXT and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise QueryError(f"{where}: {value} does not fit in a 64-bit integer")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryError(f"{where}: needs a finite number, got {value!r}")
        return value
    raise QueryError(f"{where}: a value is a number, a text or true/false, got {value!r}")


def _instant(where: str, value: Any) -> str:
    """ISO 8601 text of a time (a naive time counts as UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise QueryError(f"{where}: needs an ISO 8601 time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise QueryError(f"{where}: needs a time (ISO 8601 text or datetime), got {value!r}")
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _as_filter(item: Any) -> Filter:
    if isinstance(item, Filter):
        return item
    if isinstance(item, Mapping):
        return Filter(item.get("field"), item.get("op", "="), item.get("value"))
    if isinstance(item, tuple | list) and len(item) in (2, 3):
        return Filter(*item)
    raise QueryError(f"a filter is (field, op, value), got {item!r}")


def _as_aggregate(item: Any) -> Aggregate:
    if isinstance(item, Aggregate):
        return item
    if isinstance(item, str):
        return Aggregate(item)
    if isinstance(item, Mapping):
        return Aggregate(item.get("fn"), item.get("field"), item.get("name"))
    if isinstance(item, tuple | list) and 1 <= len(item) <= 3:
        return Aggregate(*item)
    raise QueryError(f"an aggregate is (fn, field[, name]), got {item!r}")


def _as_sort(item: Any) -> Sort:
    if isinstance(item, Sort):
        return item
    if isinstance(item, str):
        return Sort(item)
    if isinstance(item, tuple | list) and len(item) == 2 and item[1] in ("asc", "desc"):
        return Sort(item[0], item[1] == "desc")
    raise QueryError(f"a sort key is a column or (column, 'asc'|'desc'), got {item!r}")


def _subject(name: Any) -> Subject:
    key = BY_LABEL.get(name, name) if isinstance(name, str) else None
    if key not in SUBJECTS:
        raise QueryError(
            f"unknown subject {name!r}: choose one of {', '.join(SUBJECTS)} "
            f"(or a label: {', '.join(BY_LABEL)})"
        )
    return SUBJECTS[key]


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def _quote(alias: str) -> str:
    return f"`{alias}`" if alias.lower() in _QUOTED else alias


class _Aliases:
    """Unique, safe column names: a wanted name when it is an identifier, else `col<i>`."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def make(self, wanted: str, given: bool = False) -> str:
        if given and (not _IDENT.fullmatch(wanted) or wanted in self.taken):
            raise QueryError(
                f"column name {wanted!r} must be a unique identifier (letters, digits, _)"
            )
        base = wanted if _IDENT.fullmatch(wanted) else f"col{len(self.taken) + 1}"
        alias, n = base, 2
        while alias in self.taken:
            alias, n = f"{base}_{n}", n + 1
        self.taken.add(alias)
        return alias


def field_kind(subject: str | Subject, spec: str) -> str:
    """What field `spec` of a subject holds: text, number, time, status or value (any);
    QueryError when it is no field of the subject."""
    s = subject if isinstance(subject, Subject) else _subject(subject)
    return _Compiler(s).resolve(spec, "field").kind


def _plain_filters(
    subject: Subject,
    experiment: str | None,
    optimizer: str | None,
    status: str | None,
    since: Any,
    until: Any,
) -> list[Filter]:
    out = []
    if experiment is not None:
        field_name = Prop.EXPERIMENT if Prop.EXPERIMENT in subject.fields else None
        if field_name is None:
            raise QueryError(f"{subject.name} have no experiment to filter on")
        out.append(Filter(field_name, "=", experiment))
    if optimizer is not None:
        out.append(Filter("optimizer", "=", optimizer))
    if status is not None:
        out.append(Filter(Prop.STATUS, "=", status))
    if since is not None:
        out.append(Filter(subject.time_field, ">=", since))
    if until is not None:
        out.append(Filter(subject.time_field, "<=", until))
    return out


def build(
    subject: str,
    *,
    columns: Iterable[str] = (),
    filters: Iterable[Filter | tuple | Mapping] = (),
    group_by: Iterable[str] = (),
    aggregates: Iterable[Aggregate | tuple | str] = (),
    sort: Iterable[Sort | str | tuple] = (),
    limit: int = DEFAULT_LIMIT,
    experiment: str | None = None,
    optimizer: str | None = None,
    status: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> BuiltQuery:
    """A read-only query about `subject` (see the module's doc), checked whole first.

    `experiment`, `optimizer`, `status`, `since` and `until` are shorthands for filters
    (`since`/`until` compare the subject's `time_field`). With `group_by` or
    `aggregates` the answer has one row per group: the grouped fields then the
    aggregates (`count` when none is given); otherwise `columns` (the subject's
    defaults when none). Rows are ordered by `sort`, then by every column (nulls last).
    """
    s = _subject(subject)
    limit = _limit(limit)
    c = _Compiler(s)
    given = [_as_filter(f) for f in filters]
    given += _plain_filters(s, experiment, optimizer, status, since, until)
    conditions = [c.condition(f) for f in given]
    aliases = _Aliases()
    projected: dict[str, str] = {}  # alias -> expression (the WITH projection)
    sources: dict[str, str] = {}  # field -> alias, so a field is projected once
    kinds: dict[str, str] = {}

    def project(spec: str, role: str) -> str:
        if spec not in sources:
            r = c.resolve(spec, role)
            alias = aliases.make(r.alias)
            projected[alias], sources[spec], kinds[alias] = r.expr, alias, r.kind
        return sources[spec]

    out: list[_Column] = []
    keys, aggs = list(group_by), [_as_aggregate(a) for a in aggregates]
    if keys or aggs:
        for spec in keys:
            alias = project(spec, "group field")
            out.append(_Column(alias, alias, spec, kinds[alias]))
        for col in columns:
            if col not in keys and col not in [o.alias for o in out]:
                raise QueryError(
                    f"column {col!r} is neither grouped nor aggregated: add it to the grouping"
                )
        for agg in aggs or [Aggregate("count")]:
            out.append(_aggregate(agg, project, aliases))
    else:
        for spec in list(columns) or s.columns:
            alias = project(spec, "column")
            out.append(_Column(alias, alias, spec, kinds[alias]))
    order = _order(out, [_as_sort(k) for k in sort])
    text = _text(s, c, conditions, projected, out, order)
    params = {**c.params, "limit": limit}
    return BuiltQuery(
        s.name,
        text,
        params,
        tuple(o.alias for o in out),
        tuple(o.source for o in out),
        limit,
        _chart(s, out, bool(keys or aggs)),
    )


def _aggregate(agg: Aggregate, project, aliases: _Aliases) -> _Column:
    fn = agg.fn.lower() if isinstance(agg.fn, str) else agg.fn
    if fn not in AGGREGATES:
        raise QueryError(f"unknown aggregate {agg.fn!r}: aggregates: {', '.join(AGGREGATES)}")
    if agg.field is None:
        if fn != "count":
            raise QueryError(f"aggregate {fn!r} needs a field")
        source, inner = "count(*)", "*"
    else:
        inner = project(agg.field, f"{fn} field")
        source = f"{fn}({agg.field})"
    wanted = agg.name or (fn if inner == "*" else f"{fn}_{inner}")
    alias = aliases.make(wanted, given=agg.name is not None)
    return _Column(alias, f"{fn}({inner if inner == '*' else _quote(inner)})", source, NUMBER)


def _order(out: list[_Column], keys: list[Sort]) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for key in keys:
        col = next((o for o in out if key.field in (o.alias, o.source)), None)
        if col is None:
            names = ", ".join(o.alias for o in out)
            raise QueryError(f"sort key {key.field!r} is not a column of the answer: {names}")
        if col.alias not in [a for a, _ in order]:
            order.append((col.alias, key.descending))
    return order + [(o.alias, False) for o in out if o.alias not in [a for a, _ in order]]


def _text(
    s: Subject,
    c: _Compiler,
    conditions: list[tuple[str, frozenset[str]]],
    projected: dict[str, str],
    out: list[_Column],
    order: list[tuple[str, bool]],
) -> str:
    base = [cond for cond, needs in conditions if needs <= set(s.base)]
    late = [cond for cond, needs in conditions if not needs <= set(s.base)]
    if s.name in LABEL_TEST:
        base.insert(0, LABEL_TEST[s.name])
    lines = [s.match, *(["WHERE " + "\n  AND ".join(base)] if base else [])]
    if s.optional:
        lines.append(s.optional)
    hp_vars = {var: name for name, var in c.hps.items()}
    # A run bound by an OPTIONAL MATCH (steering) may be null: its values stay optional.
    required = c.required_hps if "r" in s.base else set()
    for var in sorted(hp_vars, key=lambda v: (v not in required, int(v[2:]))):
        kind = "MATCH" if var in required else "OPTIONAL MATCH"
        hp = f"({var}:{HYPERPARAMETER.label} {{{Prop.NAME}: ${var}Name}})"
        lines.append(f"{kind} (r)-[:{USED.rel_type}]->{hp}")
    variables = [*s.variables, *hp_vars]
    if late:
        lines += [f"WITH {', '.join(variables)}", "WHERE " + "\n  AND ".join(late)]
    if projected:
        lines.append("WITH " + ",\n     ".join(f"{e} AS {_quote(a)}" for a, e in projected.items()))
    elif not late:  # only count(*): no projection needed
        lines.append(f"WITH {', '.join(variables)}")
    returned = [
        _quote(o.alias) if o.expr == o.alias else f"{o.expr} AS {_quote(o.alias)}" for o in out
    ]
    lines.append(_wrapped("RETURN ", returned))
    keys = [f"{_quote(a)} IS NULL, {_quote(a)}{' DESC' if desc else ''}" for a, desc in order]
    lines.append(_wrapped("ORDER BY ", keys))
    lines.append("LIMIT $limit")
    return "\n".join(lines)


def _wrapped(head: str, items: list[str], width: int = 88) -> str:
    """`head` and the comma-separated items, on lines of about `width` characters."""
    lines, line = [], head
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if line.strip() and len(line) + len(piece) > width and line != head:
            lines.append(line.rstrip())
            line = " " * len(head)
        line += piece + " "
    return "\n".join([*lines, line.rstrip()])


def _chart(s: Subject, out: list[_Column], grouped: bool) -> ChartHint | None:
    numbers = tuple(o.alias for o in out if o.kind == NUMBER and o.source != Prop.EPOCH)
    if not numbers:
        return None
    others = [o for o in out if o.alias not in numbers]
    if s.has_metrics and any(o.source == Prop.EPOCH for o in out) and not grouped:
        epoch = next(o.alias for o in out if o.source == Prop.EPOCH)
        series = next((o.alias for o in out if o.source in ("run", "runId")), None)
        return ChartHint("line", epoch, numbers, series)
    if others:
        return ChartHint("bar", others[0].alias, numbers)
    return None
