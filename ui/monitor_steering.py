"""The Run monitor's steering: the form that asks a running training to change a
hyperparameter, stop or take a note, and the one message that follows the last request
to its outcome (issue 15). Requests go through `KnowledgeBase.request`."""

from __future__ import annotations

from typing import Any

import streamlit as st

from provkb.errors import ProvKBError, SteeringRejected
from provkb.kb.steering import parse_value
from provkb.ontology import HyperparameterName, RunStatus, SteeringActionKind, SteeringStatus
from provkb.ui import common, data
from provkb.ui.common import fmt, load

FLASH = "mon_flash"  # session key: the outcome of the last request, shown once
LAST_REQUEST = "mon_last_request"  # session key: {run, id, settled} of the last request
SET, STOP, NOTE = SteeringActionKind.SET, SteeringActionKind.STOP, SteeringActionKind.NOTE
ACTION_LABELS = {SET: "set a hyperparameter", STOP: "stop the run", NOTE: "annotate"}
ACTIONS = tuple(ACTION_LABELS)
# A request's status in words (statuses come from ontology; `claimed` is internal).
STATUS_WORDS = {
    SteeringStatus.PENDING: "pending",
    SteeringStatus.CLAIMED: "being applied by the training",
    SteeringStatus.APPLIED: "applied",
    SteeringStatus.REJECTED: "rejected",
}
SETTLED = (SteeringStatus.APPLIED, SteeringStatus.REJECTED)
FORM_FIELDS = ("steer_value", "steer_reason", "steer_note")  # emptied after a request
CLEAR_FORM = "steer_clear_form"  # set by a sent request: the next run empties the form
REQUESTED_BY = "Requested by (person)"  # not the Test tab's "Tested by (person)"


def request_status(run_id: str) -> None:
    """The state of the last request sent from this page, in one message; when it
    settles (applied or rejected) the whole page is drawn again once, so the steering
    form shows the value now in force."""
    last = st.session_state.get(LAST_REQUEST)
    if not last or last.get("run") != run_id:
        return
    try:
        request = common.kb().steering_request(last["id"])
    except ProvKBError as exc:
        st.warning(str(exc))
        return
    status = request.status
    text = f"Request `{request.request_id}` ({describe_action(request)})"
    if status == SteeringStatus.APPLIED:
        applied = request.extra.get("appliedEpoch")
        more = f" ({request.status_reason})" if request.status_reason else ""
        st.success(
            f"{text} applied" + (f": in force from epoch {applied}" if applied else "") + more
        )
    elif status == SteeringStatus.REJECTED:
        st.error(f"{text} was not applied: {request.status_reason}")
    elif status == SteeringStatus.CLAIMED:
        st.info(f"{text} is {STATUS_WORDS[status]} (at the end of its current epoch).")
    else:
        st.info(f"{text} is pending: the training applies it at its next epoch boundary.")
    if status in SETTLED and not last.get("settled"):
        st.session_state[LAST_REQUEST] = {**last, "settled": True}
        common.refresh()
        st.rerun(scope="app")


def describe_action(request: Any) -> str:
    """`set learning_rate = 0.0005`, `stop`, `note`."""
    if request.action == SET:
        return f"set {request.hyperparameter} = {fmt(request.value)}"
    return str(request.action)


def steering_panel(run_id: str, run: dict) -> None:
    """The steering form (a fragment: choosing an action or a hyperparameter redraws
    only this part, with the chosen hyperparameter's value now in force)."""
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
    if st.session_state.pop(CLEAR_FORM, False):
        # assigned before the widgets exist, so the browser's fields are emptied too
        # (only removing the keys leaves the typed text on the page)
        for key in FORM_FIELDS:
            st.session_state[key] = ""
    hps = load("run_hyperparameters", run_id, live=True)
    current = data.current_values(hps)
    steerable = sorted(n for n, r in current.items() if r.get("steerable"))
    names = steerable or sorted(current)
    action = st.radio(
        "Action", ACTIONS, format_func=ACTION_LABELS.get, horizontal=True, key="steer_action"
    )
    hp = None
    if action == SET:
        preferred = HyperparameterName.LEARNING_RATE
        c1, c2 = st.columns(2)
        hp = c1.selectbox(
            "Hyperparameter",
            names or ["(none)"],
            index=names.index(preferred) if preferred in names else 0,
            key=f"steer_hp_{run_id}",
            help="Steerable hyperparameters of the run: " + (", ".join(steerable) or "none"),
        )
        if hp in current:
            row = current[hp]
            since = f", from epoch {row['fromEpoch']}" if row.get("fromEpoch") else ""
            c2.markdown(f"current value: **{fmt(row.get('value'))}**")
            c2.caption(f"version {row.get('version') or 1}{since}, set by {row.get('source')}")
    with st.form("steer_form", clear_on_submit=False):  # cleared once a request is sent
        value = ""
        note = ""
        if action == SET:
            value = st.text_input("New value", key="steer_value", placeholder="e.g. 0.001")
        if action == NOTE:
            note = st.text_input("Note", key="steer_note")
        reason = st.text_input("Reason", key="steer_reason", placeholder="why (shown in lineage)")
        person = st.text_input(
            REQUESTED_BY,
            value=common.user_name(),
            key="steer_person",
            help="Recorded as the person who asks for this steering request, beside the "
            "app's OS account, host and your address.",
        )
        sent = st.form_submit_button("Send request", type="primary")
    common.show_flash(FLASH)
    if sent:
        send(run_id, action, hp, value, reason, note, person)


def send(
    run_id: str, action: str, hp: str | None, value: str, reason: str, note: str, person: str
) -> None:
    """Store the request; its state then shows above (one message, kept up to date).
    A request the store refuses at once keeps the form's values, to correct them."""
    if action == SET and not value.strip():
        st.error(f"Give the new value of {hp} to set; nothing was sent.")
        return
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
        refused = exc.requests[0] if exc.requests else None
        why = refused.status_reason if refused is not None else str(exc)
        recorded = f" (recorded as request `{refused.request_id}`)" if refused else ""
        st.session_state[FLASH] = ("error", f"Not sent to the training: {why}{recorded}.")
        st.session_state.pop(LAST_REQUEST, None)
    else:
        st.session_state[LAST_REQUEST] = {"run": run_id, "id": request.request_id}
        st.session_state[CLEAR_FORM] = True  # an empty form: no duplicate by a second click
    common.refresh()
    st.rerun(scope="app")  # the page shows the request's state and its table row


def _client_address() -> str | None:
    """The browser's address, when Streamlit knows it."""
    try:
        return st.context.ip_address
    except Exception:  # older Streamlit, or outside a session
        return None
