"""Run monitor: one run's metric curves (refreshing by themselves while it runs), its
adaptations and steering actions marked on the curves, hyperparameter values over time,
and the steering panel (set a hyperparameter, stop, annotate) through `kb.steering`."""

from __future__ import annotations

import streamlit as st

from provkb.errors import ProvKBError, SteeringRejected
from provkb.kb.steering import parse_value
from provkb.ontology import RunStatus, SteeringActionKind, SteeringStatus
from provkb.ui import charts, common, data, series
from provkb.ui.common import fmt, load

REFRESH_SECONDS = 3
PREFERRED_METRICS = ("val_accuracy", "accuracy", "val_loss", "loss")
FLASH = "mon_flash"  # session key: the outcome of the last request, shown once
FLASH_DELETED = "mon_deleted"  # session key: the last deletion's outcome, shown once
SET, STOP, NOTE = SteeringActionKind.SET, SteeringActionKind.STOP, SteeringActionKind.NOTE
ACTION_LABELS = {SET: "set a hyperparameter", STOP: "stop the run", NOTE: "annotate"}
ACTIONS = tuple(ACTION_LABELS)


def with_shown_status(run: dict) -> dict:
    """The run with the status queries show: `interrupted` when it says running but its
    training process went silent (no heartbeat within its `heartbeatTimeout`)."""
    state = common.kb().run_state(str(run.get("runId")))
    return {**run, "status": state["status"]} if state else run


def _new_search() -> None:
    """A new search picks its first match."""
    st.session_state.pop(common.SELECTED_RUN, None)


def pick_run() -> str | None:
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
    return run_id


def header(run: dict) -> None:
    st.markdown(
        f"### {run.get('name') or run.get('runId')} {common.status_badge(run.get('status'))}"
    )
    bits = [
        f"run id `{run.get('runId')}`",
        f"experiment **{run.get('experiment') or '-'}**",
        f"project {run.get('project') or '-'}",
        f"started {fmt(run.get('startedAtTime')) or '-'}",
        f"epochs {run.get('epochsCompleted') or 0}/{run.get('epochsPlanned') or '?'}",
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
    if was_running:
        st.caption(f":blue[●] live: refreshing every {REFRESH_SECONDS} s while the run is running")
    if not metrics:
        st.info("No epoch has finished yet: the curves appear after the first epoch.")
    else:
        keys = data.metric_keys(metrics)
        default = [k for k in PREFERRED_METRICS if k in keys][:2] or keys[:2]
        c1, c2 = st.columns([3, 1])
        chosen = c1.multiselect("Metrics", keys, default=default, key="mon_metrics")
        k = c2.number_input("Moving average window (epochs)", 1, 50, 3, key="mon_k")
        if chosen:
            fig = charts.curves(metrics, chosen, events, k=int(k))
            st.plotly_chart(fig, width="stretch", key="mon_curves")
        if events:
            st.markdown("**Adaptations and steering actions**")
            main = chosen[0] if chosen else default[0]
            pts = series.points(
                [m.get("epoch") for m in metrics], [data.metric_of(m, main) for m in metrics]
            )
            st.dataframe(
                events_table(events, pts, int(k), main),
                hide_index=True,
                width="stretch",
                key="mon_events",
            )
    hyperparameters_section(hps, events, metrics, run)
    last = st.session_state.get("mon_last_request")
    if last and last.get("run") == run_id:
        try:
            request = common.kb().steering_request(last["id"])
        except ProvKBError as exc:
            st.warning(str(exc))
        else:
            status = request.status
            text = f"Request `{request.request_id}` ({request.action}"
            text += (
                f" {request.hyperparameter}={fmt(request.value)}" if request.action == SET else ""
            )
            text += f"): **{status}**"
            if status == SteeringStatus.APPLIED:
                applied = request.extra.get("appliedEpoch")
                st.success(text + (f" from epoch {applied}" if applied else ""))
            elif status == SteeringStatus.REJECTED:
                st.error(f"{text}: {request.status_reason}")
            else:
                st.info(text + " - the training applies it at its next epoch boundary")
    requests = load("run_requests", run_id, live=True)
    if requests:
        st.markdown("**Steering requests**")
        st.dataframe(
            common.cell_table(
                requests,
                [
                    "requestedAtTime",
                    "person",
                    "osUser",
                    "host",
                    "action",
                    "hyperparameter",
                    "requestedValue",
                    "note",
                    "reason",
                    "status",
                    "statusReason",
                    "appliedEpoch",
                    "requestId",
                ],
            ),
            hide_index=True,
            width="stretch",
            key="mon_requests",
        )


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
        st.dataframe(common.cell_table(rows, list(rows[0])), hide_index=True, width="stretch")


def steering_panel(run_id: str, run: dict) -> None:
    st.subheader("Steer this run")
    running = run.get("status") == RunStatus.RUNNING
    if run.get("status") == RunStatus.INTERRUPTED:
        st.caption(
            "This run is interrupted: its training process stopped sending heartbeats "
            f"(last at {fmt(run.get('heartbeat')) or 'its start'}), so a request would be "
            "rejected."
        )
    elif not running:
        st.caption(
            f"This run is {run.get('status') or 'not running'}: a request would be rejected "
            "(only a running training applies requests)."
        )
    hps = load("run_hyperparameters", run_id, live=True)
    current = data.current_values(hps)
    steerable = sorted(n for n, r in current.items() if r.get("steerable"))
    names = steerable or sorted(current)
    with st.form("steer_form", clear_on_submit=False):
        action = st.radio(
            "Action", ACTIONS, format_func=ACTION_LABELS.get, horizontal=True, key="steer_action"
        )
        c1, c2 = st.columns(2)
        hp = c1.selectbox(
            "Hyperparameter (for set)",
            names or ["(none)"],
            key=f"steer_hp_{run_id}",
            help="Steerable hyperparameters of the run: " + (", ".join(steerable) or "none"),
        )
        if hp in current:
            c1.caption(f"current value: {fmt(current[hp].get('value'))}")
        value = c2.text_input("New value (for set)", key="steer_value", placeholder="e.g. 0.001")
        reason = st.text_input("Reason", key="steer_reason", placeholder="why (shown in lineage)")
        note = st.text_input("Note (for annotate)", key="steer_note")
        person = st.text_input(
            "Person",
            value=common.user_name(),
            key="steer_person",
            help="Recorded as claimed, beside the app's OS account, host and your address.",
        )
        sent = st.form_submit_button("Send request", type="primary")
    common.show_flash(FLASH)
    if not sent:
        return
    flash: tuple[str, str]
    try:
        request = common.kb().request(
            run_id,
            action,
            hyperparameter=hp if action == SET else None,
            value=parse_value(value.strip()) if action == SET else None,
            reason=reason.strip() or None,
            note=note.strip() or None,
            person=person.strip() or None,
            client=_client_address(),
        )
    except SteeringRejected as exc:
        flash = ("error", f"Rejected: {exc}")
        st.session_state.pop("mon_last_request", None)
    else:
        st.session_state["mon_last_request"] = {"run": run_id, "id": request.request_id}
        flash = (
            "success",
            f"Request `{request.request_id}` is pending: the training applies it at its next "
            "epoch boundary.",
        )
    st.session_state[FLASH] = flash
    common.refresh()
    st.rerun()  # redraw the page with the request in its table


def _client_address() -> str | None:
    """The browser's address, when Streamlit knows it."""
    try:
        return st.context.ip_address
    except Exception:  # older Streamlit, or outside a session
        return None


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
    header(run)
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
        st.dataframe(common.cell_table(values, keys), hide_index=True, width="stretch")
    steering_panel(run_id, run)
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
