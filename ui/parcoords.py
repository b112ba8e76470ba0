"""Parallel coordinates of runs: one line per run over its hyperparameters and metrics,
coloured by a metric's value (a colour bar) or by a group (experiment, study, status).

The metric axes come first: Plotly writes an axis' tick labels on its left, where the
lines of the axes after it do not cross them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from .charts import PALETTE
from .common import fmt

NONE = "(none)"
TICK_FONT = {"size": 12, "color": "#222222"}
LABEL_FONT = {"size": 13, "color": "#111111"}


def _numeric(values: Sequence[Any]) -> bool:
    return all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
    )


def dimension(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """One axis: numbers as they are (missing ones as gaps), other values as sorted
    categories."""
    if _numeric(values):
        return {"label": name, "values": [float("nan") if v is None else float(v) for v in values]}
    shown = [NONE if v is None else fmt(v) for v in values]
    categories = sorted(set(shown))
    index = {c: i for i, c in enumerate(categories)}
    return {
        "label": name,
        "values": [index[c] for c in shown],
        "tickvals": list(range(len(categories))),
        "ticktext": categories,
    }


def group_colours(rows: Sequence[dict[str, Any]], colour_by: str) -> dict[str, str]:
    """The legend of a grouped colouring: group -> colour."""
    groups = sorted({str(r.get(colour_by) or NONE) for r in rows})
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}


def _group_line(rows: Sequence[dict[str, Any]], colour_by: str, legend: dict[str, str]):
    groups = list(legend)
    n = max(len(groups) - 1, 1)
    scale: list[list[Any]] = []
    for i, g in enumerate(groups):
        scale += [[i / n, legend[g]], [min((i + 0.999) / n, 1.0), legend[g]]]
    if len(groups) == 1:
        scale = [[0, legend[groups[0]]], [1, legend[groups[0]]]]
    code = {g: i for i, g in enumerate(groups)}
    return {
        "color": [code[str(r.get(colour_by) or NONE)] for r in rows],
        "colorscale": scale,
        "cmin": 0,
        "cmax": n if len(groups) > 1 else 1,
    }


def _value_line(rows: Sequence[dict[str, Any]], metric: str, lower_is_better: bool):
    values = [r.get(metric) for r in rows]
    known = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    return {
        "color": [float(v) if v is not None else low for v in values],
        "colorscale": "Viridis",
        "reversescale": lower_is_better,  # the best runs are always the bright ones
        "cmin": low,
        "cmax": high if high > low else low + 1.0,
        "showscale": True,
        "colorbar": {"title": {"text": metric}, "thickness": 14},
    }


def figure(
    rows: Sequence[dict[str, Any]],
    hyperparameters: Sequence[str],
    metrics: Sequence[str],
    colour_by: str,
    lower_is_better: bool = False,
) -> tuple[go.Figure, dict[str, str]]:
    """The chart and its group legend (empty when coloured by a metric's value, which
    has a colour bar). `metrics` are row columns; the first is the one coloured by when
    `colour_by` is one of them."""
    legend: dict[str, str] = {}
    if colour_by in metrics:
        line = _value_line(rows, colour_by, lower_is_better)
    else:
        legend = group_colours(rows, colour_by)
        line = _group_line(rows, colour_by, legend)
    dims = [dimension(name, [r.get(name) for r in rows]) for name in [*metrics, *hyperparameters]]
    fig = go.Figure(
        go.Parcoords(
            line=line,
            dimensions=dims,
            labelangle=-15,
            labelside="top",
            labelfont=LABEL_FONT,
            tickfont=TICK_FONT,
            rangefont={"size": 10, "color": "#666666"},
        )
    )
    fig.update_layout(height=480, margin={"l": 70, "r": 90, "t": 90, "b": 30})
    return fig, legend


def default_pair(ranked: list[dict[str, Any]], dims: list[str]) -> list[str]:
    """The best run and the best one whose hyperparameters (the axes shown) differ from
    it: two runs set up alike would show no difference side by side."""
    if not ranked:
        return []
    best = ranked[0]
    other = next(
        (r for r in ranked[1:] if any(r.get(d) != best.get(d) for d in dims)),
        ranked[1] if len(ranked) > 1 else None,
    )
    return [best["runId"]] + ([other["runId"]] if other else [])
