"""Query builder: ask without Cypher. Pick a subject, filters, columns, a grouping with
aggregates and a sort; see the answer as a table and a chart, and the read-only,
parameterised Cypher it generated (copy it, or open it in the Queries page's editor)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from provkb.errors import ProvKBError
from provkb.queries.builder import (
    AGGREGATES,
    NUMBER,
    OPERATORS,
    SUBJECTS,
    VALUE,
    Aggregate,
    BuiltQuery,
    Filter,
    Sort,
    build,
    field_kind,
)
from provkb.ui import charts, common

CONDITIONS = 3  # rows of "field op value" conditions
RESULT = "qb_result"  # session key: the last answer {cypher, params, columns, rows}
EDITOR_HANDOFF = "cy_handoff"  # read by page_queries: (text, params JSON) for its editor
ANY = ""  # "no choice" in a selectbox


def parse_value(text: str) -> Any:
    """A value as typed: JSON when it parses (30, 0.001, true), else the text itself."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float | str) else text


def field_options(subject: str) -> list[str]:
    """Every field of the subject, with the knowledge base's hyperparameters and metrics."""
    hp_names = [row["name"] for row in common.load("hyperparameter_names")]
    metric_keys = common.load("compare_metric_keys")
    return SUBJECTS[subject].pickable(hp_names, metric_keys)


def filters(subject: str, options: list[str]) -> list[Filter]:
    """The filter widgets: experiment, optimizer, status, a time range, conditions."""
    s, out = SUBJECTS[subject], []
    c1, c2, c3 = st.columns(3)
    if "experiment" in s.fields:
        experiments = common.load("filter_choices")["experiments"]
        if chosen := c1.selectbox("Experiment", [ANY, *experiments], key=f"qb_exp_{subject}"):
            out.append(Filter("experiment", "=", chosen))
    if s.has_run and (optimizer := c2.text_input("Optimizer", key=f"qb_opt_{subject}").strip()):
        out.append(Filter("optimizer", "=", optimizer))
    if s.statuses and (
        status := c3.selectbox("Status", [ANY, *s.statuses], key=f"qb_st_{subject}")
    ):
        out.append(Filter("status", "=", status))
    t1, t2 = st.columns(2)
    hint = "ISO time, e.g. 2026-01-31 or 2026-01-31T12:00"
    since = t1.text_input(f"{s.time_field} from", key=f"qb_since_{subject}", placeholder=hint)
    until = t2.text_input(f"{s.time_field} to", key=f"qb_until_{subject}", placeholder=hint)
    if since.strip():
        out.append(Filter(s.time_field, ">=", since.strip()))
    if until.strip():
        out.append(Filter(s.time_field, "<=", until.strip()))
    st.caption("Conditions (a field compared with a value; all must hold)")
    for i in range(CONDITIONS):
        f1, f2, f3 = st.columns([2, 1, 2])
        name = f1.selectbox("Field", [ANY, *options], key=f"qb_cf_{subject}_{i}")
        op = f2.selectbox("Operator", list(OPERATORS), key=f"qb_co_{subject}_{i}")
        text = f3.text_input("Value", key=f"qb_cv_{subject}_{i}")
        if name:
            value = None if op in ("is null", "is not null") else parse_value(text)
            out.append(Filter(name, op, value))
    return out


def _numeric(subject: str, options: list[str]) -> list[str]:
    return [o for o in options if field_kind(subject, o) in (NUMBER, VALUE)]


def shape(subject: str, options: list[str]) -> dict[str, Any]:
    """The answer's shape: columns, or a grouping with aggregates; a sort and a limit."""
    s = SUBJECTS[subject]
    group_by = st.multiselect("Group by", options, key=f"qb_group_{subject}")
    choices = ["count(*)"] + [f"{fn}({o})" for o in _numeric(subject, options) for fn in AGGREGATES]
    aggs = st.multiselect("Aggregates (per group)", choices, key=f"qb_aggs_{subject}")
    grouped = bool(group_by or aggs)
    defaults = [c for c in s.columns if c in options]
    columns = st.multiselect(
        "Columns", options, default=defaults, key=f"qb_cols_{subject}", disabled=grouped
    )
    shown = [*group_by, *(aggs or ["count(*)"])] if grouped else columns
    c1, c2, c3 = st.columns([2, 1, 1])
    key = c1.selectbox("Sort by", [ANY, *shown], key=f"qb_sort_{subject}")
    descending = c2.toggle("Descending", key=f"qb_desc_{subject}")
    limit = c3.number_input("Limit", 1, 10_000, 100, key=f"qb_limit_{subject}")
    aggregates = []
    for text in aggs:
        fn, _, rest = text.partition("(")
        inner = rest[:-1]
        aggregates.append(Aggregate(fn, None if inner == "*" else inner))
    return {
        "columns": [] if grouped else columns,
        "group_by": group_by,
        "aggregates": aggregates,
        "sort": [Sort(key, descending)] if key else [],
        "limit": int(limit),
    }


def show_answer(query: BuiltQuery, rows: list[dict[str, Any]]) -> None:
    st.caption(f"{len(rows)} row(s)")
    if not rows:
        st.info("No rows match.")
        return
    table = common.cell_table(rows, list(query.columns))
    common.dataframe(table, hide_index=True, width="stretch", key="qb_table")
    st.download_button(
        "Download CSV", table.to_csv(index=False), "answer.csv", "text/csv", key="qb_csv"
    )
    hint = query.chart
    if hint is None:
        return
    chart = charts.query_chart(rows, hint.kind, hint.x, list(hint.y), hint.series)
    st.plotly_chart(chart, width="stretch", key="qb_chart")


def show_cypher(query: BuiltQuery) -> None:
    st.subheader("Generated Cypher")
    st.caption(
        "Read-only and parameterised: every value below is a parameter, never part of "
        "the text. Copy it (the icon at the code's corner) or open it in the Cypher editor."
    )
    st.code(query.cypher, language="cypher")
    st.code(query.params_json(), language="json")
    if st.button("Open in the Cypher editor", key="qb_to_editor"):
        st.session_state[EDITOR_HANDOFF] = (query.cypher, json.dumps(query.params))
        st.switch_page("page_queries.py")
    with st.expander("The same query with provkb cypher"):
        st.code(query.cli(), language="bash")


def _asked(query: BuiltQuery) -> str:
    """What identifies a question: its text and its parameters."""
    return query.cypher + "\n" + json.dumps(query.params, sort_keys=True)


def main() -> None:
    st.title("Query builder")
    st.caption("Ask without writing Cypher: what about, which ones, what to show.")
    subject = st.selectbox(
        "Ask about", list(SUBJECTS), format_func=lambda n: SUBJECTS[n].title, key="qb_subject"
    )
    options = field_options(subject)
    with st.expander("Filters", expanded=True):
        picked = filters(subject, options)
    with st.expander("Columns, grouping and sort", expanded=True):
        picks = shape(subject, options)
    try:
        query = build(subject, filters=picked, **picks)
    except ProvKBError as exc:
        common.show_error(exc)
        return
    if st.button("Run", type="primary", key="qb_run"):
        try:
            result = query.run(common.kb())
        except ProvKBError as exc:
            st.session_state.pop(RESULT, None)
            common.show_error(exc)
        else:
            st.session_state[RESULT] = {"query": _asked(query), "rows": result.rows}
    shown = st.session_state.get(RESULT)
    if shown and shown["query"] == _asked(query):
        show_answer(query, shown["rows"])
    show_cypher(query)


common.run_page(main)
