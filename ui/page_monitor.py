"""Run monitor: one run's metric curves, TensorBoard-style (a panel per metric family,
smoothing over the faint raw line, log axes, other runs overlaid), refreshing by
themselves with the header while it runs; its adaptations and steering actions marked
on the curves, hyperparameter values over time, and the steering panel (set a
hyperparameter, stop, annotate) through `kb.steering`. `/monitor?run=ID` opens a run."""

from __future__ import annotations

import streamlit as st

from provkb.errors import ProvKBError
from provkb.ontology import RunStatus
from provkb.queries import app as reads
from provkb.ui import charts, common, data, run_test_tab, series
from provkb.ui import monitor_steering as steering
from provkb.ui.common import fmt, load

REFRESH_SECONDS = 3
PREFERRED_METRICS = ("val_accuracy", "accuracy", "val_loss", "loss")
MAX_PANELS = 6  # shown by default
DEFAULT_SMOOTHING = 0.6  # TensorBoard's default
FLASH_DELETED = "mon_deleted"  # session key: the last deletion's outcome, shown once
QUERY_RUN = "run"  # URL query parameter: the run to show
SEEN_QUERY = "mon_query_run"  # session key: the URL's run already followed


def with_shown_status(run: dict) -> dict:
    """The run with the status queries show: `interrupted` when it says running but its
    training process went silent (no heartbeat within its `heartbeatTimeout`)."""
    state = common.kb().run_state(str(run.get("runId")))
    return {**run, "status": state["status"]} if state else run


def _new_search() -> None:
    """A new search picks its first match."""
    st.session_state.pop(common.SELECTED_RUN, None)


def follow_url() -> None:
    """`?run=ID` in the URL selects that run (once: then the picker rules)."""
    wanted = st.query_params.get(QUERY_RUN)
    if wanted and wanted != st.session_state.get(SEEN_QUERY):
        st.session_state[SEEN_QUERY] = wanted
        st.session_state[common.SELECTED_RUN] = wanted
        for key in [k for k in st.session_state if str(k).startswith("mon_run_")]:
            del st.session_state[key]


def pick_run() -> str | None:
    follow_url()
    c1, c2 = st.columns([1, 3])
    search = c1.text_input(
        "Find a run", key="mon_search", placeholder="name or run id", on_change=_new_search
    )
    choices = load("run_choices", limit=200, search=search or None)
    selected = st.session_state.get(common.SELECTED_RUN)
    labels = {r["runId"]: common.run_label(r) for r in choices}
    if selected and selected not in labels:
        found = load("run", selected)
        if found:
            labels = {selected: common.run_label(found), **labels}
    if not labels:
        c2.selectbox("Run", ["(no match)"], disabled=True, key="mon_run_none")
        return None
    ids = list(labels)
    index = ids.index(selected) if selected in ids else 0
    # One widget per search, so that a new search shows its own first match.
    run_id = c2.selectbox(
        "Run", ids, index=index, format_func=labels.get, key=f"mon_run_{search.strip()}"
    )
    st.session_state[common.SELECTED_RUN] = run_id
    if st.query_params.get(QUERY_RUN) != run_id:  # the URL names the run shown
        st.query_params[QUERY_RUN] = run_id
    st.session_state[SEEN_QUERY] = run_id
    return run_id


def epochs_done(run: dict, metrics: list[dict]) -> int:
    """Epochs finished: the run's count, or the curves' last epoch when it is ahead."""
    last = max((m.get("epoch") or 0 for m in metrics), default=0)
    return max(int(run.get("epochsCompleted") or 0), int(last))


def header(run: dict, metrics: list[dict]) -> None:
    """The run's name, status and progress, from the read its curves are drawn from."""
    st.markdown(
        f"### {run.get('name') or run.get('runId')} {common.status_badge(run.get('status'))}"
    )
    bits = [
        f"run id `{run.get('runId')}`",
        f"experiment **{run.get('experiment') or '-'}**",
        f"project {run.get('project') or '-'}",
        f"started {fmt(run.get('startedAtTime')) or '-'}",
        f"epochs {epochs_done(run, metrics)}/{run.get('epochsPlanned') or '?'}",
    ]
    if run.get("study"):
        bits.append(f"study {run['study']} iteration {run.get('iteration')}")
    if run.get("error"):
        bits.append(f"error: {run['error']}")
    st.caption(" · ".join(bits))


def events_table(events: list[dict], pts: list[tuple[float, float]], k: int, metric: str):
    rows = []
    for e in events:
        w = series.around(pts, e["epoch"], k) if e.get("epoch") is not None else None
        rows.append(
            {
                "epoch": e.get("epoch"),
                "event": charts.event_title(e),
                "old value": fmt(e.get("oldValue")),
                "new value": fmt(e.get("newValue")),
                "by": e.get("person") or e.get("callback"),
                "reason / note": e.get("reason") or e.get("note"),
                f"{metric} avg before": None if w is None else w.before,
                f"{metric} avg after": None if w is None else w.after,
                "change": None if w is None else w.delta,
            }
        )
    return common.cell_table(rows, list(rows[0]) if rows else [])


def live_view(run_id: str, was_running: bool) -> None:
    """Header, curves, events, hyperparameters and requests, all from one read."""
    run = load("run", run_id, live=True)
    if run is None:
        st.warning(f"Run {run_id} is no longer in the knowledge base.")
        return
    run = with_shown_status(run)
    if was_running and run.get("status") != RunStatus.RUNNING:
        st.rerun(scope="app")  # the run ended: redraw once without auto-refresh
    metrics = load("run_metrics", run_id, live=True)
    events = load("run_events", run_id, live=True)
    hps = load("run_hyperparameters", run_id, live=True)
    header(run, metrics)
    if was_running:
        st.caption(f":blue[●] live: refreshing every {REFRESH_SECONDS} s while the run is running")
    if x_axis(run_id) == STEPS_AXIS:  # step series (log_every_n_steps)
        steps_section(run_id)
    elif not metrics:
        st.info("No epoch has finished yet: the curves appear after the first epoch.")
    else:
        k = curves_section(run, metrics, events)
        if events:
            st.markdown("**Adaptations and steering actions**")
            keys = data.metric_keys(metrics)
            main = next((m for m in PREFERRED_METRICS if m in keys), keys[0] if keys else "")
            pts = series.points(
                [m.get("epoch") for m in metrics], [data.metric_of(m, main) for m in metrics]
            )
            common.dataframe(
                events_table(events, pts, k, main),
                hide_index=True,
                width="stretch",
                key="mon_events",
            )
    hyperparameters_section(hps, events, metrics, run)
    steering.request_status(run_id)
    requests = load("run_requests", run_id, live=True)
    if requests:
        st.markdown("**Steering requests**")
        shown = [
            {**r, "status": steering.STATUS_WORDS.get(r.get("status"), r.get("status"))}
            for r in requests
        ]
        common.dataframe(
            common.cell_table(
                shown,
                [  # what was asked and what came of it first; who and where after
                    "requestedAtTime",
                    "action",
                    "hyperparameter",
                    "requestedValue",
                    "status",
                    "appliedEpoch",
                    "statusReason",
                    "person",
                    "reason",
                    "note",
                    "requestId",
                    "osUser",
                    "host",
                ],
            ),
            hide_index=True,
            width="stretch",
            key="mon_requests",
        )


def overlay_runs(run: dict) -> dict[str, list[dict]]:
    """Other runs of the experiment the person overlays on the panels (label -> points)."""
    choices = [
        r
        for r in load("run_choices", limit=50, experiment=run.get("experiment") or None)
        if r["runId"] != run.get("runId")
    ]
    if not choices:
        return {}
    labels = {r["runId"]: common.run_label(r) for r in choices}
    picked = st.multiselect(
        "Overlay runs of this experiment",
        list(labels),
        format_func=labels.get,
        key=f"mon_overlay_{run.get('runId')}",
        placeholder="compare with other runs",
    )
    return {
        f"{labels[r].split(' · ')[0]} · {common.short_id(r)}": load("run_metrics", r, live=True)
        for r in picked
    }


STEPS_AXIS = "steps"  # the x axis toggle "epochs | steps" (step series)


def x_axis(run_id: str) -> str:
    """The toggle "epochs | steps", shown when the run logged steps (step series)."""
    if not reads.run_step_metrics(common.kb(), run_id):
        return "epochs"
    return st.radio("x axis", ("epochs", STEPS_AXIS), horizontal=True, key="mon_axis")


def steps_section(run_id: str) -> None:
    """The chosen metrics over the run's steps (a downsampled bucket's min-max shaded)."""
    import plotly.graph_objects as go

    names = reads.run_step_metrics(common.kb(), run_id)
    chosen = st.multiselect("Step metrics", names, default=names[:2], key="mon_step_metrics")
    columns = st.columns(2)
    for i, name in enumerate(chosen):
        points = reads.run_steps(common.kb(), run_id, name)
        x = [p["step"] for p in points]
        fig = go.Figure()
        if any(p["points"] > 1 for p in points):
            fig.add_scatter(x=x, y=[p["max"] for p in points], line_width=0, showlegend=False)
            fig.add_scatter(x=x, y=[p["min"] for p in points], fill="tonexty", line_width=0,
                            name="min-max")  # fmt: skip
        fig.add_scatter(x=x, y=[p["value"] for p in points], mode="lines", name=name)
        fig.update_layout(title=name, xaxis_title="step", height=320, margin={"t": 40})
        columns[i % 2].plotly_chart(fig, width="stretch", key=f"mon_steps_{name}")


def curves_section(run: dict, metrics: list[dict], events: list[dict]) -> int:
    """One panel per metric family, in two columns, with the smoothing, moving average
    and overlay controls; returns the moving-average window (epochs)."""
    groups = series.families(data.metric_keys(metrics))
    c1, c2, c3 = st.columns([2.2, 1.2, 1])
    chosen = c1.multiselect(
        "Panels (metric families)",
        list(groups),
        default=list(groups)[:MAX_PANELS],
        key="mon_panels",
    )
    smoothing = c2.slider(
        "Smoothing (TensorBoard's exponential moving average)",
        0.0,
        0.99,
        DEFAULT_SMOOTHING,
        0.01,
        key="mon_smoothing",
        help="0: the raw values only; the smoothed line is drawn over the faint raw one.",
    )
    k = int(
        c3.number_input(
            "Moving average window (epochs)",
            1,
            50,
            3,
            key="mon_k",
            help="Draws the mean of the last k epochs (dotted); 1 draws none. Also the "
            "window of the averages before/after each event.",
        )
    )
    label = str(run.get("name") or run.get("runId"))
    runs = {label: metrics, **overlay_runs(run)}
    columns = st.columns(2)
    for i, name in enumerate(chosen):
        with columns[i % 2]:
            log = st.toggle("log scale", value=series.default_log(name), key=f"mon_log_{name}")
            fig = charts.metric_panel(
                runs, name, groups[name], smoothing=smoothing, k=k, log=log, events=events
            )
            st.plotly_chart(fig, width="stretch", key=f"mon_panel_{name}")
    return k


def hyperparameters_section(hps: list[dict], events: list[dict], metrics: list[dict], run: dict):
    if not hps:
        return
    by_name: dict[str, list[dict]] = {}
    for h in hps:
        by_name.setdefault(h["name"], []).append(h)
    last_epoch = max([m.get("epoch") or 0 for m in metrics] + [run.get("epochsCompleted") or 0, 1])
    numeric = {
        name: versions
        for name, versions in by_name.items()
        if all(
            isinstance(v.get("value"), int | float) and not isinstance(v.get("value"), bool)
            for v in versions
        )
        and (len(versions) > 1 or any(v.get("steerable") for v in versions))
    }
    st.markdown("**Hyperparameters over time**")
    if numeric:
        st.plotly_chart(
            charts.hyperparameters_over_time(numeric, last_epoch, events),
            width="stretch",
            key="mon_hp_chart",
        )
    else:
        st.caption("No hyperparameter changed during this run.")
    current = data.current_values(hps)
    rows = [
        {
            "name": name,
            "value": fmt(row.get("value")),
            "version": row.get("version"),
            "from epoch": row.get("fromEpoch"),
            "source": row.get("source"),
            "steerable": bool(row.get("steerable")),
            "initial": fmt(by_name[name][0].get("value")),
        }
        for name, row in sorted(current.items())
    ]
    with st.expander(f"All hyperparameters ({len(rows)}), current values"):
        common.dataframe(common.cell_table(rows, list(rows[0])), hide_index=True, width="stretch")


def main() -> None:
    st.title("Run monitor")
    deleted = st.session_state.pop(FLASH_DELETED, None)
    if deleted:
        st.success(deleted)
    if not common.has_runs():
        return
    run_id = pick_run()
    if run_id is None:
        st.info("No run matches this search.")
        return
    run = load("run", run_id, live=True)
    if run is None:
        st.warning(f"No run {run_id} in the knowledge base.")
        return
    run = with_shown_status(run)
    running = run.get("status") == RunStatus.RUNNING

    @st.fragment(run_every=REFRESH_SECONDS if running else None)
    def live() -> None:
        common.guarded(lambda: live_view(run_id, running))()

    live()
    tests = load("run_test_metrics", run_id)
    if tests:
        st.markdown("**Evaluation (test metrics)**")
        keys = ["loss", *[k for k in data.metric_keys(tests) if k != "loss"]]
        values = [t[data.METRICS_KEY] for t in tests]
        common.dataframe(common.cell_table(values, keys), hide_index=True, width="stretch")

    @st.fragment
    def evaluation_and_test() -> None:  # confusion matrix heat map, Test tab (issue 17)
        common.guarded(lambda: run_test_tab.render(run_id))()

    evaluation_and_test()

    @st.fragment
    def steer() -> None:
        common.guarded(lambda: steering.steering_panel(run_id, run))()

    steer()
    delete_panel(run_id, run)


def delete_panel(run_id: str, run: dict) -> None:
    """Delete the run (after a confirmation), recorded as a Deletion activity."""
    with st.expander("Delete this run"):
        st.caption(
            "Removes the run and everything only it produced (epochs, metrics, "
            "hyperparameters, model, requests); datasets, scripts and agents other runs "
            "use stay. The deletion itself is recorded (who, when, what)."
        )
        sure = st.checkbox(
            f"Yes, delete run {run.get('name') or run_id} ({run_id})", key=f"del_sure_{run_id}"
        )
        if not st.button("Delete run", disabled=not sure, key=f"del_run_{run_id}"):
            return
        try:
            report = common.kb().delete(run=run_id, person=common.user_name())
        except ProvKBError as exc:
            common.show_error(exc)
            return
        st.session_state.pop(common.SELECTED_RUN, None)
        st.session_state[FLASH_DELETED] = (
            f"Deleted run {run_id}: {report.nodes} nodes; recorded as {report.record_id}."
        )
        common.refresh()
        st.rerun()


common.run_page(main)
