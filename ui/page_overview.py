"""Overview: projects, experiments and runs (status, key hyperparameters, best metrics),
filtered, searched and paged in the store."""

from __future__ import annotations

import math

import streamlit as st

from provkb.ontology import RunStatus as RS
from provkb.ui import common
from provkb.ui.common import load

PAGE_SIZES = (25, 50, 100)
RUN_COLUMNS = [
    "name",
    "status",
    "experiment",
    "optimizer",
    "learning_rate",
    "batch_size",
    "epochsCompleted",
    "best_val_accuracy",
    "best_val_loss",
    "best_accuracy",
    "best_loss",
    "gain",
    "study",
    "iteration",
    "project",
    "startedAtTime",
    "runId",
]


def main() -> None:
    st.title("Overview")
    counts = load("status_counts")
    if not counts:
        st.info(common.EMPTY_HINT)
        return
    total = sum(counts.values())
    experiments = load("experiments")
    cols = st.columns(6)
    cols[0].metric("Runs", total)
    cols[1].metric("Running", counts.get(RS.RUNNING, 0))
    cols[2].metric("Completed", counts.get(RS.COMPLETED, 0))
    cols[3].metric(
        "Stopped / failed",
        sum(counts.get(s, 0) for s in (RS.STOPPED, RS.STOPPED_EARLY, RS.FAILED)),
    )
    cols[4].metric("Experiments", len(experiments))
    cols[5].metric("Studies", load("study_count"))

    st.subheader("Projects and experiments")
    table = common.cell_table(
        experiments,
        [
            "project",
            "experiment",
            "runs",
            RS.RUNNING,
            RS.COMPLETED,
            RS.STOPPED_EARLY,
            RS.STOPPED,
            RS.FAILED,
            "lastStarted",
        ],
    )
    st.dataframe(table, hide_index=True, width="stretch", key="experiments_table")

    st.subheader("Runs")
    choices = load("filter_choices")
    f1, f2, f3, f4 = st.columns([1, 1, 1, 1.4])
    project = f1.selectbox("Project", ["(all)", *choices["projects"]], key="ov_project")
    experiment = f2.selectbox("Experiment", ["(all)", *choices["experiments"]], key="ov_experiment")
    statuses = f3.multiselect("Status", list(counts), key="ov_status")
    search = f4.text_input("Search", key="ov_search", placeholder="name, run id or experiment")
    filters = {
        "project": None if project == "(all)" else project,
        "experiment": None if experiment == "(all)" else experiment,
        "statuses": tuple(statuses) or None,
        "search": search or None,
    }
    matching = load("run_count", **filters)
    p1, p2, p3 = st.columns([1, 1, 3])
    size = p1.selectbox("Runs per page", PAGE_SIZES, key="ov_size")
    pages = max(1, math.ceil(matching / size))
    number = p2.number_input("Page", min_value=1, max_value=pages, value=1, step=1, key="ov_page")
    number = min(int(number), pages)
    p3.caption(f"{matching} matching run(s) · page {number} of {pages}")
    rows = load("runs_page", skip=(number - 1) * size, limit=size, **filters)
    if not rows:
        st.info("No run matches these filters.")
        return
    present = [c for c in RUN_COLUMNS if any(r.get(c) is not None for r in rows)]
    st.dataframe(
        common.cell_table(rows, present),
        hide_index=True,
        width="stretch",
        key="runs_table",
        column_config={
            "best_val_accuracy": st.column_config.NumberColumn(format="%.4f"),
            "best_val_loss": st.column_config.NumberColumn(format="%.4f"),
            "best_accuracy": st.column_config.NumberColumn(format="%.4f"),
            "best_loss": st.column_config.NumberColumn(format="%.4f"),
            "gain": st.column_config.NumberColumn(format="%.4f"),
        },
    )
    o1, o2 = st.columns([3, 1])
    labels = {r["runId"]: common.run_label(r) for r in rows}
    chosen = o1.selectbox("Open a run", list(labels), format_func=labels.get, key="ov_open_run")
    o2.write("")
    if o2.button("Open in Run monitor", key="ov_open", type="primary"):
        st.session_state[common.SELECTED_RUN] = chosen
        st.switch_page("page_monitor.py")


common.run_page(main)
