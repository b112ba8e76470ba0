"""Lineage: an interactive PROV graph around any node, starting from what produced a
run's model (click a node to see it and expand its neighbours; pan, zoom, filter by PROV
type), the selected node's details, and the standard PROV diagram of a run."""

from __future__ import annotations

import streamlit as st
import streamlit.components.v1 as components

from provkb.ontology import KINDS, Prop
from provkb.ui import common, graph, graph_figure
from provkb.ui.common import fmt, load

EXPANDED = "lin_expanded"  # node ids whose neighbours are shown
NEIGHBOUR_LIMIT = 150
KIND_LABELS = tuple(kind.label for kind in KINDS)
GROUP_LIMIT = 6  # neighbours shown per (node, relation, label) unless "show all"
DIAGRAM_HEIGHT = 720  # px of the scrollable frame around the full-size PROV diagram


def focus_node() -> str | None:
    focus = st.session_state.get(common.SELECTED_NODE)
    if focus:
        return focus
    run_id = st.session_state.get(common.SELECTED_RUN)
    if not run_id:
        choices = load("run_choices", limit=1)
        run_id = choices[0]["runId"] if choices else None
    if not run_id:
        return None
    model = load("run_model", run_id)  # "what produced this model" first
    return (model or {}).get(Prop.ID) or f"provkb:run/{run_id}"


def on_graph_click(key: str, select_key: str) -> None:
    """A click on the graph: `graph_figure.apply_click` to the page's state."""
    node_id = graph_figure.clicked_node(st.session_state.get(key))
    graph_figure.apply_click(st.session_state, node_id, select_key, EXPANDED, "lin_all")


def set_focus(node_id: str) -> None:
    st.session_state[common.SELECTED_NODE] = node_id
    st.session_state[EXPANDED] = [node_id]
    st.session_state[graph_figure.SELECTED] = node_id


def search_box() -> None:
    c1, c2, c3 = st.columns([2, 3, 1])
    text = c1.text_input("Find a node", key="lin_find", placeholder="id, run id or name")
    if not text:
        return
    found = load("find_nodes", text, limit=30)
    if not found:
        c2.caption("Nothing found.")
        return
    labels = {
        r["id"]: f"{graph.display_name(r['labels'], r['props'])} · "
        f"{graph.domain_of(r['labels']) or graph.kind_of(r['labels'])} · {r['id']}"
        for r in found
    }
    chosen = c2.selectbox("Matches", list(labels), format_func=labels.get, key="lin_match")
    c3.write("")
    if c3.button("Go to node", key="lin_focus_btn"):
        set_focus(chosen)
        st.rerun()


def neighbourhood(focus: str, expanded: list[str]) -> tuple[graph.Neighbourhood, bool]:
    hood = graph.Neighbourhood()
    centre = load("node", focus)
    if centre is None:
        return hood, False
    hood.add_node(focus, centre["labels"], centre["props"])
    rows = load("neighbours", tuple(expanded), limit=NEIGHBOUR_LIMIT)
    for row in rows:
        other = row["dst"] if row["dir"] == "out" else row["src"]
        hood.add_node(other, row["labels"], row["props"])
        hood.edges.add((row["src"], row["rel"], row["dst"]))
    truncated = len(rows) >= NEIGHBOUR_LIMIT
    for node_id in expanded:
        if node_id not in hood.nodes:
            found = load("node", node_id)
            if found:
                hood.add_node(node_id, found["labels"], found["props"])
    for row in load("relations_among", tuple(sorted(hood.nodes))):
        hood.edges.add((row["src"], row["rel"], row["dst"]))
    return hood, truncated


def details(node_id: str, hood: graph.Neighbourhood) -> None:
    node = hood.nodes.get(node_id) or load("node", node_id)
    if not node:
        return
    kind = graph.kind_of(node["labels"])
    st.markdown(
        f"**{graph.display_name(node['labels'], node['props'])}** · {kind} · "
        f"{', '.join(sorted(label for label in node['labels'] if label != kind))}"
    )
    rows = [{"property": k, "value": fmt(v)} for k, v in sorted(node["props"].items())]
    common.dataframe(
        common.cell_table(rows, ["property", "value"]),
        hide_index=True,
        width="stretch",
        key="lin_details",
    )
    relations = sorted(e for e in hood.edges if node_id in (e[0], e[2]))
    if relations:
        rel_rows = [
            {
                "direction": "out" if src == node_id else "in",
                "relation": graph.relation_name(rel),
                "node": graph.display_name(
                    hood.nodes[dst if src == node_id else src]["labels"],
                    hood.nodes[dst if src == node_id else src]["props"],
                ),
                "id": dst if src == node_id else src,
            }
            for src, rel, dst in relations
        ]
        common.dataframe(
            common.cell_table(rel_rows, list(rel_rows[0])),
            hide_index=True,
            width="stretch",
            key="lin_relations",
            column_config={
                "direction": st.column_config.TextColumn(width="small"),
                "relation": st.column_config.TextColumn(width="medium"),
                "node": st.column_config.TextColumn(width="medium"),
                "id": st.column_config.TextColumn(width="large"),
            },
        )


def main() -> None:
    st.title("Lineage")
    if not common.has_runs():
        return
    search_box()
    focus = focus_node()
    if focus is None:
        st.info("Find a node to start from.")
        return
    expanded = st.session_state.get(EXPANDED) or [focus]
    if focus not in expanded:
        expanded = [focus]
    st.session_state[EXPANDED] = expanded
    hood, truncated = neighbourhood(focus, expanded)
    if not hood.nodes:
        st.warning(f"No node {focus} in the knowledge base.")
        st.session_state.pop(common.SELECTED_NODE, None)
        return

    present_domains = sorted(
        {graph.domain_of(n["labels"]) or "" for n in hood.nodes.values()} - {""}
    )
    f1, f2 = st.columns([1, 2])
    kinds = f1.multiselect("PROV types", KIND_LABELS, default=list(KIND_LABELS), key="lin_kinds")
    domains = f2.multiselect(
        "Labels",
        present_domains,
        default=present_domains,
        key=f"lin_domains_{len(present_domains)}",
    )
    ids = sorted(hood.nodes, key=lambda i: (i != focus, i))
    names = {
        i: f"{graph.display_name(hood.nodes[i]['labels'], hood.nodes[i]['props'])} · {i}"
        for i in ids
    }
    select_key = f"lin_select_{focus}"  # one selector per focus: a new focus selects itself
    selected = st.session_state.get(select_key) or st.session_state.get(graph_figure.SELECTED)
    if selected not in names:
        selected = focus
    c1, c2, c3, c4 = st.columns([5, 1, 1, 1], vertical_alignment="bottom")
    chosen = c1.selectbox(
        "Node", ids, index=ids.index(selected), format_func=names.get, key=select_key
    )
    st.session_state[graph_figure.SELECTED] = chosen
    if c2.button(
        "Expand",
        key="lin_expand",
        disabled=chosen in expanded,
        width="stretch",
        help="Show the neighbours of this node too",
    ):
        st.session_state[EXPANDED] = [*expanded, chosen]
        st.rerun()
    if c3.button(
        "Focus",
        key="lin_refocus",
        disabled=chosen == focus,
        width="stretch",
        help="Start again from this node",
    ):
        set_focus(chosen)
        st.rerun()
    if c4.button(
        "Reset", key="lin_reset", width="stretch", help="Only the focus and its neighbours"
    ):
        set_focus(focus)
        st.rerun()

    shown = hood.filtered(set(kinds), set(domains), keep={focus, chosen})
    if not st.session_state.get("lin_all"):
        shown = shown.grouped(GROUP_LIMIT, keep=set(expanded) | {chosen})
    g1, g2 = st.columns([3, 1])
    g1.caption(
        f"Around `{focus}`: {len(shown.nodes)} node(s), {len(shown.edges)} relation(s) "
        f"shown; {len(expanded)} expanded; the selected node is outlined in red. Click a "
        "node to see it and expand its neighbours; drag to pan, scroll to zoom."
        + (" Some neighbours left out (too many)." if truncated else "")
    )
    g2.toggle(
        "Show every neighbour",
        key="lin_all",
        help=f"Otherwise at most {GROUP_LIMIT} per relation and label",
    )
    graph_key = f"lin_graph_{focus}"
    st.plotly_chart(
        graph_figure.figure(shown, focus, chosen),
        key=graph_key,
        on_select=lambda: on_graph_click(graph_key, select_key),
        selection_mode="points",
        width="stretch",
        config={"scrollZoom": True, "displaylogo": False},
    )
    details(chosen, hood)

    run_diagram()


def run_diagram() -> None:
    st.subheader("PROV diagram of a run")
    choices = load("run_choices", limit=200)
    labels = {r["runId"]: common.run_label(r) for r in choices}
    focus = st.session_state.get(common.SELECTED_NODE) or ""
    focused_run = (
        focus.removeprefix("provkb:run/").split("/")[0] if focus.startswith("provkb:run/") else None
    )
    selected = focused_run or st.session_state.get(common.SELECTED_RUN)
    ids = list(labels)
    if selected and selected not in labels:
        found = load("run", selected)
        if found:
            labels[selected] = common.run_label(found)
            ids.append(selected)
    index = ids.index(selected) if selected in ids else 0
    c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
    run_id = c1.selectbox(
        "Run", ids, index=index, format_func=labels.get, key=f"lin_run_{selected}"
    )
    show = c2.toggle("Draw", key="lin_draw", value=False)
    attributes = c3.toggle(
        "Attributes",
        key="lin_attrs",
        value=False,
        help="Each element's attributes as notes (a much larger diagram)",
    )
    if show and run_id:
        with st.spinner("Drawing the PROV diagram ..."):
            svg = load("prov_diagram", run_id, "svg", attributes=attributes)
        st.caption("Full size: scroll inside the frame; causes on the left, effects right.")
        with st.container(key="lin_diagram"):  # natural size in a scrolling frame
            components.html(svg[svg.find("<svg") :], height=DIAGRAM_HEIGHT, scrolling=True)
        d1, d2, _ = st.columns([1, 1, 4])
        d1.download_button(
            "Download SVG",
            svg,
            file_name=f"run-{run_id}.svg",
            mime="image/svg+xml",
            key="lin_svg_download",
        )
        d2.download_button(
            "Download DOT",
            load("prov_diagram", run_id, "dot", attributes=attributes),
            file_name=f"run-{run_id}.dot",
            mime="text/vnd.graphviz",
            key="lin_dot_download",
        )


common.run_page(main)
