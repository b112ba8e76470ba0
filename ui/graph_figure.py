"""The lineage graph as an interactive Plotly figure: Graphviz lays the nodes out in
ranks (causes left, effects right), Plotly draws them in PROV's colours and shapes, and
a click on a node reaches the page as a selection (pan, zoom and hover come free)."""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

import graphviz
import plotly.graph_objects as go

from ..ontology import ACTIVITY, AGENT, ENTITY
from . import graph

# Plotly marker symbols closest to PROV's notation (ellipse, rectangle, pentagon).
PROV_SYMBOL = {ENTITY.label: "circle", ACTIVITY.label: "square", AGENT.label: "pentagon"}
LEGEND_ORDER = (ENTITY.label, ACTIVITY.label, AGENT.label)
OTHER = "other"
LABEL_CHARS = 28  # a node's caption under its marker; the full name is in the hover
POINTS_PER_INCH = 72.0
SELECTED_COLOUR = "#d62728"


def positions(hood: graph.Neighbourhood, focus: str | None) -> dict[str, tuple[float, float]]:
    """Each node's (x, y) in points from Graphviz's layered layout of `graph.to_dot`."""
    if not hood.nodes:
        return {}
    source = graph.to_dot(hood, focus, None)
    layout = json.loads(graphviz.Source(source).pipe(format="json0"))
    by_name = {graph.safe_name(node_id): node_id for node_id in hood.nodes}
    found: dict[str, tuple[float, float]] = {}
    for obj in layout.get("objects", []):
        node_id = by_name.get(obj.get("name", ""))
        if node_id is not None and "pos" in obj:
            x, y = obj["pos"].split(",")[:2]
            found[node_id] = (float(x), float(y))
    return found


def _kind(node: Mapping[str, Any]) -> str:
    return graph.kind_of(node["labels"]) or OTHER


def _caption(node_id: str, node: Mapping[str, Any]) -> str:
    return graph.caption(node_id, node, LABEL_CHARS)


def _hover(node_id: str, node: Mapping[str, Any]) -> str:
    kind = graph.kind_of(node["labels"]) or ""
    domain = graph.domain_of(node["labels"]) or ""
    name = graph.caption(node_id, node, 80)
    return f"<b>{name}</b><br>{kind} {domain}<br>{node_id}"


def figure(
    hood: graph.Neighbourhood,
    focus: str | None,
    selected: str | None,
    where: Mapping[str, tuple[float, float]] | None = None,
) -> go.Figure:
    """The neighbourhood as a figure: one trace per PROV kind (the legend), relations as
    lines with their PROV name at the midpoint (hover), each node's id in `customdata`."""
    where = where if where is not None else positions(hood, focus)
    fig = go.Figure()
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    mid_x, mid_y, mid_text = [], [], []
    for src, rel, dst in sorted(hood.edges):
        if src not in where or dst not in where:
            continue
        (x0, y0), (x1, y1) = where[src], where[dst]
        edge_x += [x0, x1, None]
        edge_y += [y0, y1, None]
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        mid_text.append(f"{graph.relation_name(rel)}<br>{src} → {dst}")
    fig.add_trace(
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"color": "#9a9a9a", "width": 1},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            marker={"size": 6, "color": "#9a9a9a", "symbol": "triangle-left"},
            hovertext=mid_text,
            hoverinfo="text",
            name="relation",
            showlegend=False,
        )
    )
    for kind in (*LEGEND_ORDER, OTHER):
        ids = [i for i, n in sorted(hood.nodes.items()) if _kind(n) == kind and i in where]
        if not ids:
            continue
        style = graph.PROV_STYLE.get(kind, graph.OTHER_STYLE)
        outline = [SELECTED_COLOUR if i == selected else style["color"] for i in ids]
        widths = [3 if i in (selected, focus) else 1 for i in ids]
        fig.add_trace(
            go.Scatter(
                x=[where[i][0] for i in ids],
                y=[where[i][1] for i in ids],
                mode="markers+text",
                name=kind.lower() if kind != OTHER else "other",
                marker={
                    "symbol": PROV_SYMBOL.get(kind, "diamond"),
                    "size": 22,
                    "color": style["fillcolor"],
                    "line": {"color": outline, "width": widths},
                },
                text=[_caption(i, hood.nodes[i]) for i in ids],
                textposition="bottom center",
                textfont={"size": 12},
                hovertext=[_hover(i, hood.nodes[i]) for i in ids],
                hoverinfo="text",
                customdata=ids,
            )
        )
    xs = [p[0] for p in where.values()] or [0.0]
    ys = [p[1] for p in where.values()] or [0.0]
    height = max(360, min(900, int(max(ys) - min(ys)) + 160))
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        dragmode="pan",
        clickmode="event+select",
        hovermode="closest",
        plot_bgcolor="white",
        legend={"orientation": "h", "y": 1.02, "x": 0, "title": "PROV"},
        xaxis={"visible": False, "range": [min(xs) - 80, max(xs) + 80]},
        yaxis={"visible": False, "range": [min(ys) - 50, max(ys) + 40]},
    )
    return fig


def clicked_node(event: Any) -> str | None:
    """The node id of a click (a one-point selection) on the figure, if any."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points:
        node_id = point.get("customdata")
        if isinstance(node_id, list):
            node_id = node_id[0] if node_id else None
        if isinstance(node_id, str):
            return node_id
    return None


SELECTED = "lin_selected"  # the page's selected node id


def apply_click(
    state: MutableMapping[str, Any],
    node_id: str | None,
    picker_key: str,
    expanded_key: str,
    show_all_key: str,
) -> None:
    """What a click on a node does to the page's state: the node is selected (its
    details show, the node picker follows) and its neighbours are expanded; a click on a
    folded group (`+ n more`) shows every neighbour instead."""
    if node_id is None:
        return
    if node_id.startswith(graph.MORE_PREFIX):
        state[show_all_key] = True
        return
    state[SELECTED] = node_id
    state.pop(picker_key, None)
    expanded = list(state.get(expanded_key) or [])
    if node_id not in expanded:
        state[expanded_key] = [*expanded, node_id]
