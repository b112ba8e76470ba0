"""Parallel coordinates of runs: one line per run over its hyperparameters and metrics,
coloured by a metric's value (a colour bar) or by a group (experiment, study, session,
status). A selection of runs (`highlight`) keeps its colours and is drawn on top; the
other runs turn a faint grey.

The metric axes come first: Plotly writes an axis' tick labels on its left, where the
lines of the axes after it do not cross them."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import sequential

from .charts import PALETTE
from .common import fmt

NONE = "(none)"
TICK_FONT = {"size": 12, "color": "#222222"}
LABEL_FONT = {"size": 13, "color": "#111111"}
OTHERS = "other runs (not selected)"  # the legend entry of the runs outside a selection
FAINT = "#d9d9d9"
_FAINT_END = 0.1  # of a value scale with a selection: [0, 0.1) is the faint grey


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


def _natural(text: str) -> list[Any]:
    """A sort key putting "session 2" before "session 10"."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _group(row: dict[str, Any], colour_by: str) -> str:
    return str(row.get(colour_by) or NONE)


def group_colours(rows: Sequence[dict[str, Any]], colour_by: str) -> dict[str, str]:
    """The legend of a grouped colouring: group -> colour."""
    groups = sorted({_group(r, colour_by) for r in rows}, key=_natural)
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}


def _group_line(groups_of_rows: Sequence[str], legend: dict[str, str]) -> dict[str, Any]:
    groups = list(legend)
    n = max(len(groups) - 1, 1)
    scale: list[list[Any]] = []
    for i, g in enumerate(groups):
        scale += [[i / n, legend[g]], [min((i + 0.999) / n, 1.0), legend[g]]]
    if len(groups) == 1:
        scale = [[0, legend[groups[0]]], [1, legend[groups[0]]]]
    code = {g: i for i, g in enumerate(groups)}
    return {
        "color": [code[g] for g in groups_of_rows],
        "colorscale": scale,
        "cmin": 0,
        "cmax": n if len(groups) > 1 else 1,
    }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_line(
    rows: Sequence[dict[str, Any]],
    metric: str,
    lower_is_better: bool,
    selected: Sequence[bool] | None = None,
) -> dict[str, Any]:
    values = [r.get(metric) for r in rows]
    chosen = [s for s in selected] if selected is not None else [True] * len(rows)
    known = [float(v) for v, c in zip(values, chosen, strict=True) if c and _number(v)]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    high = high if high > low else low + 1.0
    line: dict[str, Any] = {
        "color": [float(v) if _number(v) else low for v in values],
        "colorscale": "Viridis",
        "reversescale": lower_is_better,  # the best runs are always the bright ones
        "cmin": low,
        "cmax": high,
        "showscale": True,
        "colorbar": {"title": {"text": metric}, "thickness": 14},
    }
    if selected is None:
        return line
    # The selection over the whole Viridis scale; the others below it, in a faint grey.
    colours = list(sequential.Viridis)
    if lower_is_better:
        colours.reverse()
    span = 1.0 - _FAINT_END
    # grey up to half the band, then a blend: the least selected value (at the band's
    # end) is drawn in Viridis' first colour even after Plotly's colour lookup rounds it
    scale = [[0.0, FAINT], [_FAINT_END / 2, FAINT]]
    last = len(colours) - 1
    # stops rounded, and the last exactly 1: Plotly silently drops a scale ending at
    # 0.9999999999999999 and draws its default (the theme's blues) instead
    scale += [[1.0 if i == last else round(_FAINT_END + span * i / last, 9), c]
              for i, c in enumerate(colours)]  # fmt: skip
    bottom = low - (high - low) * _FAINT_END / span
    line.update(
        color=[c if s else bottom for c, s in zip(line["color"], chosen, strict=True)],
        colorscale=scale,
        reversescale=False,
        cmin=bottom,
    )
    return line


def figure(
    rows: Sequence[dict[str, Any]],
    hyperparameters: Sequence[str],
    metrics: Sequence[str],
    colour_by: str,
    lower_is_better: bool = False,
    highlight: Collection[str] | None = None,
) -> tuple[go.Figure, dict[str, str]]:
    """The chart and its group legend (empty when coloured by a metric's value, which
    has a colour bar). `metrics` are row columns; the first is the one coloured by when
    `colour_by` is one of them. `highlight` (run ids): the selected runs keep their
    colours and are drawn last (on top), the others are faint grey (legend: OTHERS)."""
    legend: dict[str, str] = {}
    selected: list[bool] | None = None
    if highlight is not None:
        chosen = set(highlight)
        rows = [r for r in rows if r.get("runId") not in chosen] + [
            r for r in rows if r.get("runId") in chosen
        ]
        selected = [r.get("runId") in chosen for r in rows]
    if colour_by in metrics:
        line = _value_line(rows, colour_by, lower_is_better, selected)
        if selected is not None and not all(selected):
            legend = {OTHERS: FAINT}
    else:
        picked = [r for r, s in zip(rows, selected or [True] * len(rows), strict=True) if s]
        legend = group_colours(picked, colour_by)
        groups = [
            _group(r, colour_by) if s else OTHERS
            for r, s in zip(rows, selected or [True] * len(rows), strict=True)
        ]
        if OTHERS in groups:
            legend[OTHERS] = FAINT
        line = _group_line(groups, legend)
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
