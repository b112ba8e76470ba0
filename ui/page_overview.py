"""Overview: projects, experiments and runs (status, key hyperparameters, best metrics),
filtered, searched, sorted and paged in the store; the counts refresh by themselves and
a click on a run's row opens it in the Run monitor."""

from __future__ import annotations

import math

import streamlit as st

from provkb.ontology import RunStatus as RS
from provkb.ui import common
from provkb.ui.common import load

REFRESH_SECONDS = 10
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
# Shown unless the person picks others: what fits 1,024 px beside the sidebar (default
# run names carry the optimizer).
DEFAULT_COLUMNS = [
    "name",
    "status",
    "startedAtTime",
    "learning_rate",
    "best_val_accuracy",
    "best_val_loss",
]
SORT_LABELS = {
    "startedAtTime": "start time",
    "name": "name",
    "status": "status",
    "experiment": "experiment",
    "best_val_accuracy": "best val_accuracy",
    "best_val_loss": "best val_loss",
    "best_accuracy": "best accuracy",
    "best_loss": "best loss",
    "gain": "gain",
    "optimizer": "optimizer",
    "learning_rate": "learning rate",
    "batch_size": "batch size",
    "epochsCompleted": "epochs",
    "iteration": "iteration",
    "study": "study",
    "project": "project",
    "runId": "run id",
}
DIRECTIONS = {"desc": "descending", "asc": "ascending"}
TABLE_GENERATION = "ov_table_generation"  # session key: a fresh table after opening a run
_NUMBER = {"format": "%.4f", "width": 85}
COLUMN_CONFIG = {
    "name": st.column_config.TextColumn("name", width=130, pinned=True),
    "status": st.column_config.TextColumn("status", width=70),
    "startedAtTime": st.column_config.TextColumn("started", width=80, help="UTC, MM-DD hh:mm"),
    "optimizer": st.column_config.TextColumn("optimizer", width=75),
    "learning_rate": st.column_config.NumberColumn("lr", format="%g", width=60),
    "batch_size": st.column_config.NumberColumn("batch", width=55),
    "epochsCompleted": st.column_config.NumberColumn("epochs", width=55),
    "best_val_accuracy": st.column_config.NumberColumn("best val_acc", **_NUMBER),
    "best_val_loss": st.column_config.NumberColumn("best val_loss", **_NUMBER),
    "best_accuracy": st.column_config.NumberColumn("best acc", **_NUMBER),
    "best_loss": st.column_config.NumberColumn("best loss", **_NUMBER),
    "gain": st.column_config.NumberColumn("gain", **_NUMBER),
    "runId": st.column_config.TextColumn("run id", width=100),
}


EXPERIMENT_COLUMNS = {
    "project": st.column_config.TextColumn("project", width=80),
    "experiment": st.column_config.TextColumn("experiment", width=110),
    "runs": st.column_config.NumberColumn("runs", width=45),
    RS.RUNNING: st.column_config.NumberColumn("running", width=55),
    RS.COMPLETED: st.column_config.NumberColumn("completed", width=70),
    RS.STOPPED_EARLY: st.column_config.NumberColumn("early stop", width=65),
    RS.STOPPED: st.column_config.NumberColumn("stopped", width=60),
    RS.FAILED: st.column_config.NumberColumn("failed", width=50),
}


def counts_view() -> dict[str, int]:
    """The run counts and the experiments table (read again every REFRESH_SECONDS)."""
    counts = load("status_counts", live=True)
    total = sum(counts.values())
    experiments = load("experiments", live=True)
    cols = st.columns(6)
    cols[0].metric("Runs", total)
    cols[1].metric("Running", counts.get(RS.RUNNING, 0))
    cols[2].metric("Completed", counts.get(RS.COMPLETED, 0))
    cols[3].metric(
        "Stopped",
        sum(counts.get(s, 0) for s in (RS.STOPPED, RS.STOPPED_EARLY, RS.FAILED)),
        help="Stopped, stopped early or failed",
    )
    cols[4].metric("Experiments", len(experiments))
    cols[5].metric("Studies", load("study_count"))
    st.caption(f":blue[●] refreshing every {REFRESH_SECONDS} s")
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
        ],
    )
    common.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="experiments_table",
        column_config=EXPERIMENT_COLUMNS,
    )
    return counts


def run_filters(counts: dict[str, int]) -> dict:
    """The filter widgets: project, experiment, status and search."""
    choices = load("filter_choices")
    f1, f2, f3, f4 = st.columns([1, 1, 1, 1.4])
    project = f1.selectbox("Project", ["(all)", *choices["projects"]], key="ov_project")
    experiment = f2.selectbox("Experiment", ["(all)", *choices["experiments"]], key="ov_experiment")
    statuses = f3.multiselect("Status", list(counts), key="ov_status")
    search = f4.text_input("Search", key="ov_search", placeholder="name, run id or experiment")
    return {
        "project": None if project == "(all)" else project,
        "experiment": None if experiment == "(all)" else experiment,
        "statuses": tuple(statuses) or None,
        "search": search or None,
    }


def open_run(run_id: str) -> None:
    """Open `run_id` in the Run monitor (its URL names the run)."""
    st.session_state[common.SELECTED_RUN] = run_id
    st.session_state[TABLE_GENERATION] = st.session_state.get(TABLE_GENERATION, 0) + 1
    st.switch_page("page_monitor.py", query_params={"run": run_id})


def runs_table(rows: list[dict], columns: list[str]) -> None:
    """The page of runs; clicking a row opens that run."""
    shown = [c for c in columns if c in RUN_COLUMNS]
    compact = [{**r, "startedAtTime": common.fmt(r.get("startedAtTime"))[5:16]} for r in rows]
    event = common.dataframe(
        common.cell_table(compact, shown),
        hide_index=True,
        width="stretch",
        key=f"runs_table_{st.session_state.get(TABLE_GENERATION, 0)}",
        column_config={c: COLUMN_CONFIG[c] for c in shown if c in COLUMN_CONFIG},
        on_select="rerun",
        selection_mode="single-row",
    )
    picked = list(getattr(getattr(event, "selection", None), "rows", None) or [])
    if picked and 0 <= picked[0] < len(rows):
        open_run(rows[picked[0]]["runId"])


def main() -> None:
    st.title("Overview")
    if not common.has_runs():
        return
    fragment = st.fragment(run_every=REFRESH_SECONDS)(common.guarded(counts_view))
    fragment()
    counts = load("status_counts", live=True)

    st.subheader("Runs")
    filters = run_filters(counts)
    s1, s2 = st.columns([1.4, 1])
    sort = s1.selectbox("Sort by", list(SORT_LABELS), format_func=SORT_LABELS.get, key="ov_sort")
    direction = s2.segmented_control(
        "Order", list(DIRECTIONS), format_func=DIRECTIONS.get, default="desc", key="ov_dir"
    )
    matching = load("run_count", **filters)
    s3, s4, _ = st.columns([1, 1, 1.4])
    size = s3.selectbox("Runs per page", PAGE_SIZES, key="ov_size")
    pages = max(1, math.ceil(matching / size))
    number = s4.number_input("Page", min_value=1, max_value=pages, value=1, step=1, key="ov_page")
    number = min(int(number), pages)
    columns = st.multiselect(
        "Columns", RUN_COLUMNS, default=DEFAULT_COLUMNS, key="ov_columns", max_selections=12
    )
    st.caption(
        f"{matching} matching run(s) · page {number} of {pages} · sorted by "
        f"{SORT_LABELS[sort]} ({DIRECTIONS[direction or 'desc']}) over all matching runs · "
        "click a row to open the run"
    )
    rows = load(
        "runs_page",
        skip=(number - 1) * size,
        limit=size,
        sort=sort,
        direction=direction or "desc",
        **filters,
    )
    if not rows:
        st.info("No run matches these filters.")
        return
    runs_table(rows, columns or DEFAULT_COLUMNS)
    o1, o2 = st.columns([3, 1], vertical_alignment="bottom")
    labels = {r["runId"]: common.run_label(r) for r in rows}
    chosen = o1.selectbox("Open a run", list(labels), format_func=labels.get, key="ov_open_run")
    if o2.button("Open in Run monitor", key="ov_open", type="primary", width="stretch"):
        open_run(chosen)


common.run_page(main)
