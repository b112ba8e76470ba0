"""Queries: every named lineage query with a parameter form built from its Param specs,
and a read-only Cypher editor; results as a table, a chart and a CSV download."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import streamlit as st

from provkb.errors import ProvKBError
from provkb.queries import QUERIES, NamedQuery, Param
from provkb.queries.app import EXAMPLE_CONSOLE
from provkb.ui import charts, common

EXAMPLE_CYPHER = EXAMPLE_CONSOLE
RESULT = "q_result"  # session key: the last result shown
EDITOR_TAB = "Cypher editor"
EDITOR_HANDOFF = "cy_handoff"  # (text, params JSON) another page (the query builder) sends
EDITOR_FIRST = "cy_first"  # the editor tab opens first once a text was sent to it


def param_widget(query: NamedQuery, p: Param) -> Any:
    """A widget for one parameter; returns the raw value (None: not given)."""
    key = f"qp_{query.name}_{p.name}"
    label = f"{p.name}{' *' if p.required else ''}"
    help_text = p.help or None
    if p.choices:
        options = list(p.choices)
        index = options.index(p.default) if p.default in options else 0
        return st.selectbox(label, options, index=index, key=key, help=help_text)
    if p.name == "run" and key not in st.session_state:
        st.session_state[key] = st.session_state.get(common.SELECTED_RUN) or ""
    default = "" if p.default is None else str(p.default)
    text = st.text_input(
        label,
        value=default,
        key=key,
        help=help_text,
        placeholder=p.type_name if p.required else f"{p.type_name}, optional",
    )
    return text.strip() or None


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                c: json.dumps(row.get(c), default=str)
                if isinstance(row.get(c), list | dict)
                else row.get(c)
                for c in columns
            }
        )
    return buffer.getvalue()


def show_result(name: str, columns: list[str], rows: list[dict[str, Any]], hint=None) -> None:
    st.caption(f"{len(rows)} row(s)")
    if not rows:
        st.info("The query returned no rows.")
        return
    common.dataframe(
        common.cell_table(rows, columns), hide_index=True, width="stretch", key=f"result_{name}"
    )
    st.download_button(
        "Download CSV",
        to_csv(columns, rows),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv_{name}",
    )
    numeric = [
        c
        for c in columns
        if any(isinstance(r.get(c), int | float) and not isinstance(r.get(c), bool) for r in rows)
    ]
    if not numeric:
        return
    with st.expander("Chart", expanded=hint is not None):
        kinds = ("line", "bar", "scatter")
        c1, c2, c3 = st.columns([1, 1, 2])
        kind = c1.selectbox(
            "Chart", kinds, index=kinds.index(hint.kind) if hint else 0, key=f"chart_kind_{name}"
        )
        x_default = hint.x if hint and hint.x in columns else columns[0]
        x = c2.selectbox("x", columns, index=columns.index(x_default), key=f"chart_x_{name}")
        y_default = [y for y in (hint.y if hint else ()) if y in numeric] or [
            c for c in numeric if c != x
        ][:1]
        ys = c3.multiselect("y", numeric, default=y_default, key=f"chart_y_{name}")
        if ys:
            series_column = hint.series if hint and hint.series in columns else None
            st.plotly_chart(
                charts.query_chart(rows, kind, x, ys, series_column),
                width="stretch",
                key=f"chart_{name}",
            )


def named_queries() -> None:
    names = list(QUERIES)
    name = st.selectbox(
        "Query", names, format_func=lambda n: f"{n} - {QUERIES[n].summary}", key="q_name"
    )
    query = QUERIES[name]
    st.caption(query.description)
    with st.form(f"form_{name}"):
        raw: dict[str, Any] = {}
        cols = st.columns(min(3, max(1, len(query.params))))
        for i, p in enumerate(query.params):
            with cols[i % len(cols)]:
                raw[p.name] = param_widget(query, p)
        if not query.params:
            st.caption("This query takes no parameters.")
        run = st.form_submit_button("Run query", type="primary")
    if run:
        try:
            result = common.kb().query(name, **{k: v for k, v in raw.items() if v is not None})
        except ProvKBError as exc:
            st.session_state.pop(RESULT, None)
            common.show_error(exc)
            return
        st.session_state[RESULT] = {"name": name, "columns": result.columns, "rows": result.rows}
    shown = st.session_state.get(RESULT)
    if shown and shown["name"] == name:
        show_result(name, shown["columns"], shown["rows"], query.chart)
    with st.expander("Cypher"):
        st.code(query.cypher, language="cypher")


def cypher_editor() -> None:
    st.caption(
        "Read-only: writes, administration, procedures and file access are refused before "
        "the query runs, which is always rolled back; a query is cancelled past the "
        "console's time limit and shows its first rows only (PROVKB_CONSOLE_TIMEOUT, "
        "PROVKB_CONSOLE_ROWS)."
    )
    st.session_state.setdefault("cy_text", EXAMPLE_CYPHER)
    st.session_state.setdefault("cy_params", "{}")
    text = st.text_area("Cypher", height=160, key="cy_text")
    params_text = st.text_input("Parameters (JSON object)", key="cy_params")
    if st.button("Run", type="primary", key="cy_run"):
        try:
            params = json.loads(params_text or "{}")
            if not isinstance(params, dict):
                raise ValueError("parameters must be a JSON object")
        except ValueError as exc:
            st.error(f"Bad parameters: {exc}")
            return
        try:
            result = common.kb().cypher(text, params)
        except ProvKBError as exc:
            st.session_state.pop("cy_result", None)
            common.show_error(exc)
            return
        st.session_state["cy_result"] = {
            "columns": result.columns,
            "rows": result.rows,
            "truncated": result.truncated,
        }
    shown = st.session_state.get("cy_result")
    if shown:
        if shown.get("truncated"):
            st.warning(
                f"Showing the first {len(shown['rows'])} rows: the query has more "
                "(the console's row limit, PROVKB_CONSOLE_ROWS)."
            )
        show_result("cypher", shown["columns"], shown["rows"])


def main() -> None:
    st.title("Queries")
    handed = st.session_state.pop(EDITOR_HANDOFF, None)
    if handed:  # the query builder's "Open in the Cypher editor": its text and parameters
        st.session_state["cy_text"], st.session_state["cy_params"] = handed
        st.session_state[EDITOR_FIRST] = True
        st.session_state.pop("cy_result", None)
    first = EDITOR_TAB if st.session_state.get(EDITOR_FIRST) else None
    named, editor = st.tabs(["Named queries", EDITOR_TAB], default=first)
    with named:
        named_queries()
    with editor:
        cypher_editor()


common.run_page(main)
