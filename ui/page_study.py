"""Study: a steerable trial queue (DL-Steer). The queue (pending, running, done items),
gain per iteration with its moving average and the steering markers, the queue edits,
and editing of pending items through `KnowledgeBase.edit_study`.

While the study trains, everything below the study picker is one fragment that reruns
every few seconds on one read (`queries.app.study_page`), the edit form included, so
its choices follow the queue. An edit names the item version the page showed when the
person pressed Apply; the store refuses it ("item 6 already started; nothing changed")
when that item has started or changed since, and the picker keeps showing the item the
person chose (marked as no longer pending) instead of sliding to another one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import streamlit as st

from provkb.errors import ProvKBError, StaleStudyEdit
from provkb.ontology import ItemStatus, QueueEdit, StudyStatus
from provkb.queries import app as reads
from provkb.ui import charts, common
from provkb.ui.common import fmt, load

REFRESH_SECONDS = 5
EMPTY = "—"  # an empty metric or caption field (tables show missing values as empty cells)
_PENDING, _RUNNING = ItemStatus.PENDING, ItemStatus.RUNNING
STATUS_ORDER = (_RUNNING, _PENDING, ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.REMOVED)
FLASH = "study_flash"  # session key: the outcome of the last edit (until the next one)
EDITED_BY = "Edited by (person)"  # the person a queue edit is recorded for
SEEN = "study_seen"  # session key: the study and item versions the picker last showed
ITEM_KEY = "st_item"
_LABEL = re.compile(r"^(?:#\d+ · )?item (\d+) · v(\w+) · ")  # what a picker label names


@st.cache_data(ttl=common.LIVE_TTL, show_spinner=False, max_entries=64)
def _page_data(store_key: str, name: str) -> dict[str, Any] | None:
    return reads.study_page(common.kb(), name)


def page_data(name: str) -> dict[str, Any] | None:
    """The study, its current items, iterations and edits: one read, cached briefly."""
    return _page_data(common.store_key(), name)


def forget() -> None:
    """Drop every cached read (after an edit)."""
    _page_data.clear()
    common.refresh()


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


def gain_label(study: dict) -> str:
    """The gain's axis title: its metric (or function) and "(gain)"."""
    source = study.get("gainMetric") or study.get("gainFunction")
    return f"{source} (gain)" if source else "gain"


def _table(rows: list[dict[str, Any]], key: str) -> None:
    common.dataframe(
        common.cell_table(rows, list(rows[0])), hide_index=True, width="stretch", key=key
    )


def queue_view(study: dict, items: list[dict], iterations: list[dict], edits: list[dict]) -> None:
    k = int(study.get("k") or 10)
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
    c[3].metric(f"Best gain ({study.get('mode') or 'max'})", fmt(best) or EMPTY)
    c[4].metric("Queue edits", len(edits))
    st.markdown(
        f"**Gain per iteration: {gain_label(study)}** (moving average of the last {k}; "
        f"red: steering)"
    )
    if iterations:
        fig = charts.gain_chart(iterations, edits, k)
        fig.update_layout(yaxis_title=gain_label(study))
        st.plotly_chart(fig, width="stretch", key="study_gain")
    else:
        st.info("No iteration has finished yet.")
    gain_by_item = {r.get("itemId"): r for r in iterations}
    st.markdown("**Queue**")
    tabs = st.tabs([f"{s} ({len(by_status.get(s, []))})" for s in STATUS_ORDER])
    for tab, status in zip(tabs, STATUS_ORDER, strict=True):
        rows = []
        for place, item in enumerate(by_status.get(status, []), start=1):
            run = gain_by_item.get(item.get("itemId"), {})
            row = {
                "item": item.get("itemId"),
                "place": place,
                "params": json.dumps(item.get("params"), default=str),
                "version": item.get("version"),
                "iteration": item.get("iteration") or run.get("iteration"),
                "gain": item.get("gain") if item.get("gain") is not None else run.get("gain"),
                "run": item.get("run") or run.get("runId"),
                "created": item.get("createdAtTime"),
            }
            if status == _PENDING:  # not evaluated yet: no iteration, gain or run
                row = {c: v for c, v in row.items() if c not in ("iteration", "gain", "run")}
            else:
                row.pop("place")
            rows.append(row)
        with tab:
            if rows:
                _table(rows, f"queue_{status}")
            else:
                st.caption(f"No {status} item.")
    if edits:
        st.markdown("**Queue edits** (steering actions on the study)")
        rows = [
            {
                "from iteration": (e.get("iteration") or 0) + 1,
                "action": e.get("action"),
                "item": e.get("itemId"),
                "before": None if e.get("before") is None else json.dumps(e["before"], default=str),
                "after": None if e.get("after") is None else json.dumps(e["after"], default=str),
                "person": e.get("person"),
                "reason": e.get("reason"),
                "moving average then": e.get("movingAverage"),
            }
            for e in edits
        ]
        _table(rows, "study_edits")


EDIT_ACTIONS = (QueueEdit.EDIT, QueueEdit.MOVE, QueueEdit.REMOVE, QueueEdit.ADD, QueueEdit.RESPACE)
ITEM_ACTIONS = (QueueEdit.EDIT, QueueEdit.MOVE, QueueEdit.REMOVE)
EDIT_HELP = {
    "edit": "change a pending item's parameters (merged into its current ones, or replacing them)",
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
    version: int | None = None,
    replace: bool = False,
) -> Any:
    """One queue edit of study `name`: an item edit names the version the person saw
    (refused ones raise ProvKBError, `StaleStudyEdit` when the item moved on)."""
    return common.kb().edit_study(
        name,
        action,
        item=item_id if action in ITEM_ACTIONS else None,
        version=version,
        params=params,
        place=place,
        reason=reason,
        person=person or None,
        replace=replace,
    )


def _why_not(now: dict | None) -> str:
    """What became of an item the person picked (no longer pending at that version)."""
    if now is None:
        return "is gone"
    status = now.get("status")
    if status == ItemStatus.REMOVED:
        return "was removed"
    if status != _PENDING:
        at = f", iteration {now['iteration']}" if now.get("iteration") else ""
        return f"already started ({status}{at})"
    return "is no longer pending"


def _label_item(label: str) -> tuple[int, dict] | None:
    """The item id and version a picker label names (`#3 · item 7 · v2 · {...}`)."""
    match = _LABEL.match(label)
    if match is None:
        return None
    version = match.group(2)
    return int(match.group(1)), {"version": int(version) if version.isdigit() else None}


def pick_item(name: str, pending: list[dict], items: list[dict]) -> tuple[Any, dict | None]:
    """The item picker: the pending items, plus the one the person chose if it has
    started (or gone) since, so the choice never slides onto another item. Returns the
    chosen item id and the version the page showed it at before this run (None: none).

    The browser keeps the label text of the chosen option, not the item: when that
    label changes (the item started, moved up or got a new version), the page hands the
    browser the new one; else the browser would show the old text and, at the next
    refresh, send back a label no option has, and Streamlit would pick the first item."""
    before = st.session_state.get(SEEN) or {}
    mine = before.get("study") == name
    seen: dict[int, dict] = dict(before.get("items") or {}) if mine else {}
    held_labels: dict[int, str] = dict(before.get("labels") or {}) if mine else {}
    by_id = {i.get("itemId"): i for i in items}
    places = {i["itemId"]: place for place, i in enumerate(pending, start=1)}
    labels = {
        i["itemId"]: f"#{places[i['itemId']]} · item {i['itemId']} · v{i.get('version')} · "
        f"{json.dumps(i.get('params'))}"
        for i in pending
    }
    options = list(labels)
    chosen = st.session_state.get(ITEM_KEY)
    held = held_labels.get(chosen)  # the label the browser shows for the choice
    if isinstance(chosen, str):  # a label no option of the last run had: its item
        held, named = chosen, _label_item(chosen)
        chosen = None if named is None else named[0]
        if named is not None:
            seen[named[0]] = named[1]  # the version that label showed
    stale = None
    if chosen in seen and chosen not in labels:  # it started (or went) since it was shown
        stale = f"item {chosen} {_why_not(by_id.get(chosen))} since it was shown"
        options.append(chosen)
        labels[chosen] = f"item {chosen} · v{seen[chosen]['version']} · no longer pending"
    if not options:
        st.session_state[SEEN] = {"study": name, "items": {}}
        return None, None
    if chosen in labels and held is not None and held != labels[chosen]:
        st.session_state[ITEM_KEY] = chosen  # the same item: the browser gets its new label
    item_id = st.selectbox("Pending item", options, format_func=labels.get, key=ITEM_KEY)
    if stale and item_id == chosen:
        st.warning(f"The {stale}: an edit of it will be refused. Pick another item.")
    shown = {i: {"version": by_id[i].get("version")} for i in labels if i in by_id and i in places}
    if item_id == chosen and chosen in seen and chosen not in places:
        shown[chosen] = seen[chosen]  # still the version the person chose
    st.session_state[SEEN] = {
        "study": name,
        "items": shown,
        "labels": {i: labels[i] for i in shown if i in labels},
    }
    return item_id, seen.get(item_id)


def edit_panel(name: str, study: dict, items: list[dict]) -> None:
    st.subheader("Edit the queue")
    common.show_flash(FLASH, scope=name)  # kept across the page's own refreshes
    pending = [i for i in items if i.get("status") == _PENDING]
    st.caption(
        "Only pending items can change; an edit takes effect at the next iteration and is "
        "recorded as a steering action with the study state you saw. An edit names the "
        "item version shown here: it is refused when that item has started or changed since."
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
    item_id, seen = None, None
    if action in ITEM_ACTIONS:
        item_id, seen = pick_item(name, pending, items)
        if item_id is None:
            st.caption("No pending item to change.")
            return
    with st.form("study_edit_form"):
        text, replace = "", False
        if action in ("edit", "add"):
            text = st.text_area(
                "Parameters (JSON object)",
                key=f"st_params_{action}",
                placeholder='{"learning_rate": 0.05, "batch_size": 1000}',
            )
        if action == "edit":
            replace = st.checkbox(
                "Replace all its parameters",
                key="st_replace",
                help="Off: the given values are merged into the item's current ones (and "
                "must be hyperparameters it has). On: they become its only parameters.",
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
        person = st.text_input(
            EDITED_BY,
            value=common.user_name(),
            key="st_person",
            help="Recorded as the person who asks for this queue edit (its steering action).",
        )
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
            version=(seen or {}).get("version"),
            replace=replace,
        )
    except StaleStudyEdit as exc:
        st.session_state[FLASH] = ("error", f"Refused: {exc}.", name)
    except ProvKBError as exc:
        st.session_state[FLASH] = ("error", f"The queue was not changed: {exc}", name)
    else:
        changed = ", ".join(str(i) for i in result.item_ids)
        st.session_state[FLASH] = (
            "success",
            f"{action} applied (request `{result.request_id}`"
            + (f", item(s) {changed}" if changed else "")
            + f"); it takes effect from iteration {result.effective_from}.",
            name,
        )
    forget()
    st.rerun()


def study_view(name: str) -> None:
    """The live part of the page: header, queue, chart, edits and the edit form."""
    data = page_data(name)
    if data is None:
        st.warning(f"Study {name!r} is no longer in the knowledge base.")
        return
    study, items = data["study"], current_items(data["items"])
    bits = [
        f"gain: **{study.get('gainMetric') or study.get('gainFunction') or 'gain'}** "
        f"({study.get('mode') or 'max'})",
        f"k = {study.get('k') or 10}",
        f"status {study.get('status') or EMPTY}",
        f"sampler {study.get('sampler') or EMPTY}",
        f"started {fmt(study.get('startedAtTime')) or EMPTY}",
    ]
    st.caption(" · ".join(bits))
    if study.get("space"):
        with st.expander("Search space"):
            st.code(fmt(study.get("space")), language="json")
    queue_view(study, items, data["iterations"], data["edits"])
    edit_panel(name, study, items)


def is_live(data: dict[str, Any] | None) -> bool:
    """Whether the study trains (or an item runs): the view then refreshes itself."""
    if not data:
        return False
    return data["study"].get("status") == StudyStatus.RUNNING or any(
        i.get("status") == _RUNNING for i in data["items"]
    )


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

    @st.fragment(run_every=REFRESH_SECONDS if is_live(page_data(name)) else None)
    def view() -> None:
        common.guarded(lambda: study_view(name))()

    view()
    common.guarded(lambda: sessions_section(name))()


# -- sessions and early stopping (issue 16; the sessions helper's section) ----------------
def sessions_section(name: str) -> None:
    """The session chain (`study-lineage`) and, per hyperparameter value, how many trials
    finished and how many were stopped early (`study-trial-status`, horizontal bars)."""
    import plotly.graph_objects as go

    kb = common.kb()
    chain = kb.query("study-lineage", study=name).rows
    if len(chain) > 1:
        st.subheader("Session chain")
        rows = [{"session": r["session"], "study": r["study"], "from": r["parent"] or None,
                 "by": r["person"], "at": fmt(r["at"]), "why": r["reason"] or None,
                 "kept": ", ".join(map(str, r["keptRuns"])) or None,
                 "best gain": fmt(r["bestGain"]), "space": r["space"]} for r in chain]  # fmt: skip
        common.dataframe(rows, hide_index=True, key="study_sessions")
    status = kb.query("study-trial-status", study=name).rows
    if not status:
        return
    st.subheader("Finished and stopped early, per hyperparameter value")
    labels = [f"{r['hyperparameter']} = {fmt(r['value'])}" for r in status]
    figure = go.Figure()
    for column, colour in (("finished", "#2c7fb8"), ("stoppedEarly", "#f03b20"),
                           ("failed", "#999999")):  # fmt: skip
        figure.add_bar(y=labels, x=[r[column] for r in status], name=column,
                       orientation="h", marker_color=colour)  # fmt: skip
    figure.update_layout(barmode="stack", height=120 + 28 * len(labels), xaxis_title="trials",
                         margin={"l": 10, "r": 10, "t": 10, "b": 40})  # fmt: skip
    st.plotly_chart(figure, key="study_trial_status")
    st.caption("Stopped early: EarlyStopping (or another callback), a person's stop, or "
               "the study's pruning rule (`provkb query study-trial-status`).")  # fmt: skip


common.run_page(main)
