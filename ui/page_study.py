"""Study: a steerable trial queue (DL-Steer). The queue (pending, running, done items),
gain per iteration with its moving average and the steering markers, the queue edits,
and editing of pending items through `KnowledgeBase.study`."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from provkb.errors import ProvKBError
from provkb.ontology import ItemStatus, StudyStatus
from provkb.ui import charts, common
from provkb.ui.common import fmt, load

REFRESH_SECONDS = 5
_PENDING, _RUNNING = ItemStatus.PENDING, ItemStatus.RUNNING
STATUS_ORDER = (_RUNNING, _PENDING, ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.REMOVED)
FLASH = "study_flash"  # session key: the outcome of the last edit, shown once


def current_items(versions: list[dict]) -> list[dict]:
    """The latest version of each item (the one marked current, else the highest)."""
    latest: dict[Any, dict] = {}
    for v in versions:
        held = latest.get(v.get("itemId"))
        if (
            v.get("current")
            or held is None
            or (not held.get("current") and (v.get("version") or 0) > (held.get("version") or 0))
        ):
            latest[v.get("itemId")] = v
    return sorted(
        latest.values(),
        key=lambda v: (v.get("position") is None, v.get("position") or 0, v.get("itemId") or 0),
    )


def queue_view(name: str, study: dict, live: bool) -> None:
    k = int(study.get("k") or 10)
    iterations = load("study_iterations", name, live=live)
    edits = load("study_edits", name, live=live)
    items = current_items(load("study_items", name, live=live))
    by_status: dict[str, list[dict]] = {}
    for item in items:
        by_status.setdefault(item.get("status") or _PENDING, []).append(item)
    for status in (_RUNNING, ItemStatus.DONE, ItemStatus.FAILED):  # started: by iteration
        by_status.get(status, []).sort(key=lambda i: (i.get("iteration") or 0, i.get("itemId")))
    gains = [r["gain"] for r in iterations if isinstance(r.get("gain"), int | float)]
    best = (min if study.get("mode") == "min" else max)(gains) if gains else None
    c = st.columns(5)
    c[0].metric("Iterations", len(iterations))
    c[1].metric("Pending items", len(by_status.get(_PENDING, [])))
    c[2].metric("Running", len(by_status.get(_RUNNING, [])))
    c[3].metric(f"Best gain ({study.get('mode') or 'max'})", fmt(best))
    c[4].metric("Queue edits", len(edits))
    st.markdown(f"**Gain per iteration** (moving average of the last {k}; red: steering)")
    if iterations:
        st.plotly_chart(charts.gain_chart(iterations, edits, k), width="stretch", key="study_gain")
    else:
        st.info("No iteration has finished yet.")
    gain_by_item = {r.get("itemId"): r for r in iterations}
    st.markdown("**Queue**")
    tabs = st.tabs([f"{s} ({len(by_status.get(s, []))})" for s in STATUS_ORDER])
    for tab, status in zip(tabs, STATUS_ORDER, strict=True):
        rows = []
        for place, item in enumerate(by_status.get(status, []), start=1):
            run = gain_by_item.get(item.get("itemId"), {})
            rows.append(
                {
                    "item": item.get("itemId"),
                    "place": place if status == _PENDING else None,
                    "params": json.dumps(item.get("params"), default=str),
                    "version": item.get("version"),
                    "iteration": item.get("iteration") or run.get("iteration"),
                    "gain": item.get("gain") if item.get("gain") is not None else run.get("gain"),
                    "run": item.get("run") or run.get("runId"),
                    "created": item.get("createdAtTime"),
                }
            )
        if status != _PENDING:
            rows = [{k: v for k, v in r.items() if k != "place"} for r in rows]
        with tab:
            if rows:
                st.dataframe(
                    common.cell_table(rows, list(rows[0])),
                    hide_index=True,
                    width="stretch",
                    key=f"queue_{status}",
                )
            else:
                st.caption(f"No {status} item.")
    if edits:
        st.markdown("**Queue edits** (steering actions on the study)")
        rows = [
            {
                "from iteration": (e.get("iteration") or 0) + 1,
                "action": e.get("action"),
                "item": e.get("itemId"),
                "before": json.dumps(e.get("before"), default=str),
                "after": json.dumps(e.get("after"), default=str),
                "person": e.get("person"),
                "reason": e.get("reason"),
                "moving average then": e.get("movingAverage"),
            }
            for e in edits
        ]
        st.dataframe(
            common.cell_table(rows, list(rows[0])),
            hide_index=True,
            width="stretch",
            key="study_edits",
        )


EDIT_ACTIONS = ("edit", "move", "remove", "add", "respace")
EDIT_HELP = {
    "edit": "change a pending item's parameters (merged into its current ones)",
    "move": "move a pending item to another place among the pending ones",
    "remove": "remove a pending item",
    "add": "add an item (at the end, or at a place among the pending ones)",
    "respace": "replace every pending item by the expansion of a new space",
}


def apply_edit(
    name: str,
    action: str,
    person: str,
    reason: str | None,
    item_id: Any,
    params: Any,
    place: int | None,
) -> Any:
    """One queue edit of study `name` (refused ones raise ProvKBError)."""
    queue = common.kb().study(name)
    who = person or None
    if action == "edit":
        return queue.edit(item_id, params, reason, who)
    if action == "move":
        return queue.move(item_id, int(place or 1), reason, who)
    if action == "remove":
        return queue.remove(item_id, reason, who)
    if action == "add":
        return queue.add(params, place or None, reason, who)
    return queue.respace(params, reason, who)


def edit_panel(name: str, study: dict, items: list[dict]) -> None:
    st.subheader("Edit the queue")
    common.show_flash(FLASH)
    pending = [i for i in items if i.get("status") == _PENDING]
    st.caption(
        "Only pending items can change; an edit takes effect at the next iteration and is "
        "recorded as a steering action with the study state you saw."
    )
    action = st.radio(
        "Edit",
        EDIT_ACTIONS,
        horizontal=True,
        key="st_action",
        format_func=lambda a: a,
        help="; ".join(f"{a}: {h}" for a, h in EDIT_HELP.items()),
    )
    st.caption(EDIT_HELP[action])
    places = {i["itemId"]: place for place, i in enumerate(pending, start=1)}
    labels = {
        i["itemId"]: f"#{places[i['itemId']]} · item {i['itemId']} · {json.dumps(i.get('params'))}"
        for i in pending
    }
    if action in ("edit", "move", "remove") and not labels:
        st.caption("No pending item to change.")
        return
    with st.form("study_edit_form"):
        item_id = None
        if action in ("edit", "move", "remove"):
            item_id = st.selectbox(
                "Pending item", list(labels), format_func=labels.get, key="st_item"
            )
        text = ""
        if action in ("edit", "add"):
            text = st.text_area(
                "Parameters (JSON object)",
                key=f"st_params_{action}",
                placeholder='{"learning_rate": 0.05, "batch_size": 1000}',
            )
        elif action == "respace":
            text = st.text_area(
                "Space (JSON: hyperparameter -> [start, end, step], list of values or value)",
                value=json.dumps(study.get("space") or {})
                if isinstance(study.get("space"), dict)
                else str(study.get("space") or "{}"),
                key="st_space",
            )
        place = None
        if action in ("move", "add"):
            place = st.number_input(
                "Place among the pending items (1 = next)",
                min_value=1,
                value=1 if action == "move" else len(pending) + 1,
                step=1,
                key=f"st_place_{action}",
            )
        reason = st.text_input("Reason", key="st_reason")
        person = st.text_input("Person", value=common.user_name(), key="st_person")
        submitted = st.form_submit_button("Apply", type="primary")
    if not submitted:
        return
    try:
        params = json.loads(text) if text.strip() else ({} if action != "edit" else None)
        if action in ("edit", "add", "respace") and not isinstance(params, dict):
            raise ValueError('give a JSON object, e.g. {"learning_rate": 0.05}')
    except ValueError as exc:
        st.error(f"The parameters are not a JSON object: {exc}")
        return
    try:
        result = apply_edit(
            name,
            action,
            person.strip(),
            reason.strip() or None,
            item_id,
            params,
            int(place) if place else None,
        )
    except ProvKBError as exc:
        st.session_state[FLASH] = ("error", f"The queue was not changed: {exc}")
    else:
        changed = ", ".join(str(i) for i in result.item_ids)
        st.session_state[FLASH] = (
            "success",
            f"{action} applied (request `{result.request_id}`"
            + (f", item(s) {changed}" if changed else "")
            + f"); it takes effect from iteration {result.effective_from}.",
        )
    common.refresh()
    st.rerun()


def main() -> None:
    st.title("Study")
    studies = load("studies")
    if not studies:
        st.info(
            "No study yet. A study is a steerable queue of hyperparameter combinations "
            "evaluated one by one (DL-Steer); create one with `provkb.Study` or "
            "`provkb study` and its iterations show here."
        )
        return
    names = [s["name"] for s in studies]
    name = st.selectbox("Study", names, key="study_name")
    study = next(s for s in studies if s["name"] == name)
    bits = [
        f"gain: **{study.get('gainMetric') or 'gain'}** ({study.get('mode') or 'max'})",
        f"k = {study.get('k') or 10}",
        f"status {study.get('status') or '-'}",
        f"sampler {study.get('sampler') or '-'}",
        f"started {fmt(study.get('startedAtTime')) or '-'}",
    ]
    st.caption(" · ".join(bits))
    if study.get("space"):
        with st.expander("Search space"):
            st.code(fmt(study.get("space")), language="json")
    items = current_items(load("study_items", name, live=True))
    live = study.get("status") == StudyStatus.RUNNING or any(
        i.get("status") == _RUNNING for i in items
    )

    @st.fragment(run_every=REFRESH_SECONDS if live else None)
    def view() -> None:
        common.guarded(lambda: queue_view(name, study, live))()

    view()
    edit_panel(name, study, items)


common.run_page(main)
