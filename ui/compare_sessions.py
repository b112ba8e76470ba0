"""The Compare page's search sessions (issue 16): a run's session label, the study's
top k runs, and the "Next session from the top k" section (narrowed ranges previewed,
nothing written, before Start)."""

from __future__ import annotations

import math
import re
from typing import Any

import streamlit as st

from provkb.errors import ProvKBError
from provkb.kb.study.space_text import parse_added  # the `--add` text of `study next`
from provkb.ui import common
from provkb.ui.common import fmt

NEXT_TOP = 10  # the default k of a next session (at most the finished trials)


def session_label(study: str | None, sessions: dict[str, int]) -> str | None:
    """`session 2 · NAME` for a run of a study (a study not found: session 1)."""
    if not study:
        return None
    return f"session {sessions.get(study, 1)} · {study}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def top_runs(table: list[dict[str, Any]], study: str, column: str, mode: str) -> list[str]:
    """The study's runs with a value of `column`, best first by `mode` (ties by
    iteration, as the sessions' own ranking), as run ids."""
    sign = -1.0 if mode == "max" else 1.0
    mine = [r for r in table if r.get("study") == study and _finite(r.get(column))]
    mine.sort(key=lambda r: (sign * float(r[column]), r.get("iteration") or 0, r["runId"]))
    return [r["runId"] for r in mine]


def _add_pairs(text: str) -> list[str]:
    """`NAME=start:end:step` or `NAME=a,b,c` entries, separated by `;` or new lines."""
    return [p.strip() for p in re.split(r"[;\n]", text or "") if p.strip()]


def _entry(spec: Any) -> str:
    return fmt(spec) if spec is not None else "(new)"


def next_session(
    parent: dict[str, Any],
    table: list[dict[str, Any]],
    column: str,
    mode: str,
    dims: list[str],
) -> list[str] | None:
    """The "Next session from the top k" section of study `parent` (the last of the
    chain); returns the top k run ids while it is open (the chart highlights them)."""
    study = parent["study"]
    if not st.toggle(
        "Next session from the top k",
        key=f"cmp_next:{study}",
        help="Start the next search session of this study from its best runs: their "
        "values narrow the ranges of the chosen hyperparameters (kb/study/sessions.py).",
    ):
        return None
    ranked = top_runs(table, study, column, mode)
    finished = sum(1 for r in table if r.get("study") == study and _finite(r.get("trialGain")))
    if not ranked or not finished:
        st.info(f"Study {study} has no finished trial with a {column} yet: nothing to narrow.")
        return None
    space = list(parent.get("space") or {})
    c1, c2, c3 = st.columns([0.8, 2.2, 2])
    k = int(
        c1.number_input(
            "k", 1, finished, min(NEXT_TOP, finished), key=f"cmp_next_k:{study}",
            help=f"The top k runs by {column}",
        )
    )  # fmt: skip
    narrow = c2.multiselect(
        "Narrow",
        space,
        default=[d for d in dims if d in space],
        key=f"cmp_next_narrow:{study}",
        help="Each becomes the range (min to max, the step kept) or the values the top k "
        "used; the others keep the study's ranges",
    )
    add_text = c3.text_input(
        "Add (optional)",
        key=f"cmp_next_add:{study}",
        placeholder="momentum=0.5:0.9:0.2; optimizer=sgd,adam",
        help="New hyperparameters, as `provkb study next --add`: NAME=start:end:step or "
        "NAME=a,b,c; several separated by ;",
    )
    c4, c5 = st.columns([2, 3])
    name = c4.text_input(
        "New study", value=f"{study}-s{int(parent.get('session') or 1) + 1}",
        key=f"cmp_next_name:{study}",
    ).strip()  # fmt: skip
    reason = c5.text_input("Reason", key=f"cmp_next_reason:{study}").strip()
    top = ranked[:k]
    st.caption(
        f"The chart's selection: the top {len(top)} run(s) of {study} by {column} "
        f"(best is {mode}). The session keeps the top {k} trials by the study's gain"
        f"{' (' + parent['gainMetric'] + ')' if parent.get('gainMetric') else ''}, best is "
        f"{parent.get('mode') or 'max'}."
    )
    asked = (study, k, tuple(narrow), add_text, name, reason)
    b1, b2, _ = st.columns([1, 1, 4])
    if b1.button("Preview", key="cmp_next_preview"):
        st.session_state["cmp_next_previewed"] = asked
    if st.session_state.get("cmp_next_previewed") != asked:
        st.caption("Preview shows the narrowed ranges; nothing is written before Start.")
        return top
    kb = common.kb()
    try:
        added = parse_added(_add_pairs(add_text))
        args = {"top": k, "narrow": list(narrow), "add": added, "reason": reason or None}
        plan = kb.preview_next_study(study, name, **args)
    except ProvKBError as exc:
        st.error(f"Cannot start {name or 'the next session'}: {exc}")
        return top
    _show_plan(plan)
    if [kept.run_id for kept in plan.kept] != top:
        st.warning(
            f"The kept trials (the top {k} by the study's gain) differ from the chart's "
            f"selection (by {column}, best is {mode}): the session keeps the trials listed."
        )
    if b2.button("Start session", key="cmp_next_start", type="primary"):
        try:
            session = kb.next_study(study, name, person=common.user_name(), **args)
        except ProvKBError as exc:
            st.error(f"Not started: {exc}")
            return top
        st.session_state.pop("cmp_next_previewed", None)
        common.refresh()
        st.session_state["study_name"] = name  # the Study page opens on it
        st.success(
            f"Started study {name}: session {session.session} of {study}, "
            f"{session.items} item(s). Run it with `provkb.Study.open({name!r}).run(...)`; "
            "follow it on the Study page."
        )
        st.page_link("page_study.py", label=f"Open {name} on the Study page", icon="➡️")
    return top


def _show_plan(plan: Any) -> None:
    """The previewed session: old range -> new range per hyperparameter, the kept trials."""
    how = {
        **{n: "narrowed" for n in plan.narrowed},
        **{n: "added" for n in plan.added},
        **{n: "given" for n in plan.given},
    }
    names = [*plan.parent_space, *(n for n in plan.space if n not in plan.parent_space)]
    ranges = [
        {
            "hyperparameter": n,
            "before": _entry(plan.parent_space.get(n)),
            "after": _entry(plan.space.get(n)),
            "change": how.get(n, "kept"),
        }
        for n in names
    ]
    st.markdown(f"**{plan.name}**, the next session of {plan.parent}:")
    common.dataframe(
        common.cell_table(ranges, ["hyperparameter", "before", "after", "change"]),
        hide_index=True,
        width="stretch",
        key="cmp_next_ranges",
    )
    kept = [
        {"rank": k.rank, "item": k.item_id, "iteration": k.iteration, "gain": k.gain,
         "runId": k.run_id, **k.params}
        for k in plan.kept
    ]  # fmt: skip
    st.caption(f"Kept: the {len(kept)} best trial(s) of {plan.parent} (best first)")
    common.dataframe(
        common.cell_table(kept, list(dict.fromkeys(c for r in kept for c in r))),
        hide_index=True,
        width="stretch",
        key="cmp_next_kept",
    )
