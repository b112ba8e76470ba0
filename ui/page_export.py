"""Export: a run, an experiment or the whole knowledge base in every format of the one
format registry (`kb.formats`: PROV-JSON, PROV-JSONLD, PROV-N, PROV-XML, PROV-O in
Turtle, TriG or JSON-LD, DOT, SVG and PNG diagrams), written through `KnowledgeBase`."""

from __future__ import annotations

import json

import streamlit as st

from provkb.errors import ProvKBError
from provkb.kb.formats import FORMATS, Scope
from provkb.ui import common
from provkb.ui.common import load

SCOPES = ("a run", "an experiment", "the whole knowledge base")
SCOPE_OF = dict(zip(SCOPES, (Scope.RUN, Scope.EXPERIMENT, Scope.KNOWLEDGE_BASE), strict=True))
JSON_PREVIEW = ("provjson", "provjsonld", "jsonld")
PREPARED = "export_prepared"
WHOLE_KB_WARNING = 2000  # runs: above this, warn that a whole-KB export takes a while


def _new_search() -> None:
    st.session_state.pop(common.SELECTED_RUN, None)


def main() -> None:
    st.title("Export")
    if not common.has_runs():
        return
    st.caption(
        "Written by the `prov` library (and rdflib for PROV-O); what ProvKB exports loads "
        "back into `prov` and into ProvKB (`provkb import`)."
    )
    scope = st.radio("Export", SCOPES, horizontal=True, key="ex_scope")
    run_id = experiment = None
    name = "provkb"
    if scope == SCOPES[0]:
        c1, c2 = st.columns([1, 3])
        search = c1.text_input("Find a run", key="ex_search", on_change=_new_search)
        choices = load("run_choices", limit=200, search=search or None)
        labels = {r["runId"]: common.run_label(r) for r in choices}
        if not labels:
            st.info("No run matches.")
            return
        ids = list(labels)
        selected = st.session_state.get(common.SELECTED_RUN)
        run_id = c2.selectbox(
            "Run",
            ids,
            index=ids.index(selected) if selected in ids else 0,
            format_func=labels.get,
            key=f"ex_run_{search.strip()}",
        )
        name = f"run-{run_id}"
    elif scope == SCOPES[1]:
        experiments = load("filter_choices")["experiments"]
        if not experiments:
            st.info("No experiment recorded.")
            return
        experiment = st.selectbox("Experiment", experiments, key="ex_experiment")
        name = f"experiment-{experiment}"
    else:
        total = sum(load("status_counts").values())
        if total > WHOLE_KB_WARNING:
            st.warning(f"The knowledge base holds {total} runs: exporting it takes a while.")
    offered = [name for name, f in FORMATS.items() if SCOPE_OF[scope] in f.scopes]
    fmt = st.selectbox("Format", offered, format_func=lambda f: FORMATS[f].label, key="ex_format")
    spec = FORMATS[fmt]
    label, suffix, mime = spec.label, spec.suffix, spec.mime
    target = (scope, run_id, experiment, fmt)
    if st.button(f"Prepare {label}", type="primary", key="ex_prepare"):
        try:
            with st.spinner(f"Writing {label} ..."):
                content = common.data.export_bytes(
                    common.kb(), fmt, run_id=run_id, experiment=experiment
                )
        except ProvKBError as exc:
            st.session_state.pop(PREPARED, None)
            common.show_error(exc)
            return
        st.session_state[PREPARED] = {"target": target, "content": content}
    prepared = st.session_state.get(PREPARED)
    if prepared and prepared["target"] == target:
        content = prepared["content"]
        st.success(f"{label} ready: {len(content):,} bytes.")
        st.download_button(
            f"Download {name}{suffix}",
            content,
            file_name=f"{name}{suffix}",
            mime=mime,
            type="primary",
            key="ex_download",
        )
        if fmt in ("svg", "png"):
            if len(content) < 3_000_000:
                image = content.decode("utf-8") if fmt == "svg" else content
                st.image(image, caption="PROV diagram")
        else:
            preview = content[:3000].decode("utf-8", errors="replace")
            if fmt in JSON_PREVIEW and len(content) < 2_000_000:
                preview = json.dumps(json.loads(content), indent=2)[:3000]
            st.code(
                preview + ("\n..." if len(content) > 3000 else ""),
                language="json" if fmt in JSON_PREVIEW else None,
            )


common.run_page(main)
