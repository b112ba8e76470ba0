"""Plotly figures of the app: TensorBoard-style metric panels (smoothing, log axes,
several runs), metric curves with event markers, hyperparameters over
time, the DL-Steer gain chart, parallel coordinates, query charts."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import series
from .common import fmt
from .data import metric_of

STEERING_COLOUR = "#d62728"
ADAPTATION_COLOUR = "#ff7f0e"
EARLY_STOP_COLOUR = "#7f7f7f"
PALETTE = (
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#ff7f0e",
    "#d62728",
    "#7f7f7f",
)
LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    "hovermode": "closest",
    "template": "plotly_white",
}


def _integer_axis(fig: go.Figure, xs: Sequence[Any]) -> None:
    """Epochs and iterations are whole numbers: no 1.5 ticks."""
    span = max((x for x in xs if isinstance(x, int | float)), default=0)
    fig.update_xaxes(tickformat="d", **({"dtick": 1} if span <= 15 else {}))


def _esc(value: Any) -> str:
    return html.escape(fmt(value))


def event_colour(event: dict[str, Any]) -> str:
    if event.get("source") == "steering":
        return STEERING_COLOUR
    if event.get("kind") == "early_stopping":
        return EARLY_STOP_COLOUR
    return ADAPTATION_COLOUR


def event_title(event: dict[str, Any]) -> str:
    """`steering: set learning_rate` / `adaptation: learning_rate` / `early stopping`."""
    if event.get("source") == "steering":
        what = event.get("action") or "steering"
        hp = event.get("hyperparameter")
        return f"steering: {what}{' ' + hp if hp else ''}"
    if event.get("kind") == "early_stopping":
        return "early stopping"
    return f"adaptation: {event.get('hyperparameter') or ''}".strip()


def event_details(event: dict[str, Any], window: series.Window | None, metric: str) -> str:
    """Hover text of an event marker (HTML, escaped)."""
    lines = [f"<b>{_esc(event_title(event))}</b> at epoch {_esc(event.get('epoch'))}"]
    if event.get("oldValue") is not None or event.get("newValue") is not None:
        lines.append(f"value: {_esc(event.get('oldValue'))} → {_esc(event.get('newValue'))}")
    who = event.get("person") or event.get("callback")
    if who:
        lines.append(f"by: {_esc(who)}")
    if event.get("reason"):
        lines.append(f"reason: {_esc(event.get('reason'))}")
    if event.get("note"):
        lines.append(f"note: {_esc(event.get('note'))}")
    if window is not None:
        lines.append(
            f"{_esc(metric)} avg before: {_esc(window.before)} ({window.points_before} pts)"
            f" → after: {_esc(window.after)} ({window.points_after} pts)"
        )
    return "<br>".join(lines)


def _curve(pts: Sequence[tuple[float, float]], name: str, i: int) -> go.Scatter:
    """The i-th line of a figure: its (x, y) points in the palette's i-th colour."""
    return go.Scatter(
        x=[p[0] for p in pts],
        y=[p[1] for p in pts],
        mode="lines+markers",
        name=name,
        line={"color": PALETTE[i % len(PALETTE)]},
    )


def curves(
    metrics: Sequence[dict[str, Any]],
    keys: Sequence[str],
    events: Sequence[dict[str, Any]] = (),
    k: int = 3,
    title: str = "",
) -> go.Figure:
    """Metric curves by epoch; adaptations and steering actions as vertical markers
    with their details (value before/after, the moving average of the first key
    before/after) on hover."""
    fig = go.Figure()
    epochs = [m.get("epoch") for m in metrics]
    by_key = {key: series.points(epochs, [metric_of(m, key) for m in metrics]) for key in keys}
    for i, (key, pts) in enumerate(by_key.items()):
        fig.add_trace(_curve(pts, key, i))
    main = keys[0] if keys else ""
    ys_all = [p[1] for pts in by_key.values() for p in pts]
    _add_events(fig, events, by_key[main] if main else [], main, k, max(ys_all, default=1.0))
    fig.update_layout(
        title=title or None, xaxis_title="epoch", height=380, **LAYOUT, uirevision="keep"
    )
    _integer_axis(fig, [e for e in epochs if e is not None])
    return fig


def _add_events(
    fig: go.Figure,
    events: Sequence[dict[str, Any]],
    main_pts: Sequence[tuple[float, float]],
    main: str,
    k: int,
    top: float,
) -> None:
    """Adaptations and steering actions as vertical lines (where the new value is in
    force) and hover markers at `top`, one legend entry per kind."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event.get("epoch") is None:
            continue
        groups.setdefault(event_colour(event), []).append(event)
        fig.add_vline(
            x=event["epoch"] - 0.5,
            line_dash="dash" if event.get("source") == "steering" else "dot",
            line_color=event_colour(event),
            opacity=0.7,
        )
    names = {STEERING_COLOUR: "steering", ADAPTATION_COLOUR: "adaptation"}
    names[EARLY_STOP_COLOUR] = "early stopping"
    for colour, group in groups.items():
        hover = [
            event_details(e, series.around(main_pts, e["epoch"], k) if main else None, main)
            for e in group
        ]
        fig.add_trace(
            go.Scatter(
                x=[e["epoch"] - 0.5 for e in group],
                y=[top] * len(group),
                mode="markers",
                marker={
                    "symbol": "triangle-down" if colour == STEERING_COLOUR else "diamond",
                    "size": 13,
                    "color": colour,
                    "line": {"width": 1, "color": "white"},
                },
                name=names.get(colour, "event"),
                hovertext=hover,
                hoverinfo="text",
            )
        )


def _faded(colour: str, alpha: float) -> str:
    """A `#rrggbb` colour as `rgba(...)` with opacity `alpha` (the raw line under a
    smoothed one)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def metric_panel(
    runs: dict[str, Sequence[dict[str, Any]]],
    name: str,
    keys: Sequence[str],
    *,
    smoothing: float = 0.0,
    k: int = 1,
    log: bool = False,
    events: Sequence[dict[str, Any]] = (),
) -> go.Figure:
    """One TensorBoard-style panel: the metric family `name` (e.g. loss and val_loss)
    of every run in `runs` (label -> `run_metrics` points) by epoch.

    Each (run, key) line has its colour; with `smoothing` > 0 the raw values are a
    faint line under TensorBoard's debiased exponential moving average; with `k` > 1
    the mean of the last k epochs is drawn dotted. The y axis is titled with the
    family's unit, logarithmic when `log`; hover shows every line's exact value at an
    epoch. `events` (adaptations, steering) are marked as on `curves`, with the
    moving averages of the first run's first key around them.
    """
    fig = go.Figure()
    epochs_seen: list[Any] = []
    main_pts: list[tuple[float, float]] = []
    tops: list[float] = []
    line = 0
    several = len(runs) > 1
    for label, metrics in runs.items():
        epochs = [m.get("epoch") for m in metrics]
        epochs_seen += epochs
        for key in keys:
            pts = series.points(epochs, [metric_of(m, key) for m in metrics])
            if not pts:
                continue
            if not main_pts:
                main_pts = pts
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            tops += ys
            colour = PALETTE[line % len(PALETTE)]
            line += 1
            shown = f"{key} · {label}" if several else key
            smooth = smoothing > 0 and len(ys) > 1
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=f"{shown} (raw)" if smooth else shown,
                    legendgroup=shown,
                    line={"color": _faded(colour, 0.3) if smooth else colour, "width": 1.5},
                    marker={"size": 4, "color": _faded(colour, 0.45) if smooth else colour},
                    hovertemplate="%{y}<extra>" + html.escape(shown) + "</extra>",
                )
            )
            if smooth:
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=series.ema(ys, smoothing),
                        mode="lines",
                        name=f"{shown} (smoothed {smoothing:g})",
                        legendgroup=shown,
                        line={"color": colour, "width": 2.5},
                        hovertemplate="%{y:.6g}<extra>smoothed</extra>",
                    )
                )
            if k > 1 and len(ys) > 1:
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=series.trailing_mean(ys, k),
                        mode="lines",
                        name=f"{shown} (mean of last {k})",
                        legendgroup=shown,
                        line={"color": colour, "width": 2, "dash": "dot"},
                        hovertemplate="%{y:.6g}<extra>mean of last " + str(k) + "</extra>",
                    )
                )
    positive = [y for y in tops if y > 0]
    top = max(positive if log else tops, default=1.0)
    _add_events(fig, events, main_pts, keys[0] if keys else "", k, top)
    fig.update_layout(
        title={"text": name.replace("_", " "), "x": 0.01},
        xaxis_title="epoch",
        yaxis_title=series.axis_title(name),
        height=330,
        **{**LAYOUT, "hovermode": "x unified", "margin": {"l": 10, "r": 10, "t": 70, "b": 10}},
        uirevision=name,
    )
    fig.update_yaxes(type="log" if log else "linear", exponentformat="power" if log else "none")
    if log and positive:
        fig.update_yaxes(range=_decades(positive), dtick=1)  # one label per power of ten
    _integer_axis(fig, [e for e in epochs_seen if e is not None])
    return fig


def _decades(values: Sequence[float]) -> list[float]:
    """A log axis' range (log10 units) over whole decades around `values`: at least one
    decade, so that a constant learning rate gets one 10^k label, not digits."""
    lo, hi = math.log10(min(values)), math.log10(max(values))
    if hi - lo < 1:
        middle = (lo + hi) / 2
        return [middle - 0.5, middle + 0.5]
    return [lo - 0.05, hi + 0.05]


def hyperparameters_over_time(
    versions: dict[str, list[dict[str, Any]]], last_epoch: int, events: Sequence[dict] = ()
) -> go.Figure:
    """One step line per numeric hyperparameter (rows sharing the epoch axis)."""
    names = list(versions)
    fig = make_subplots(
        rows=len(names), cols=1, shared_xaxes=True, subplot_titles=names, vertical_spacing=0.12
    )
    for i, name in enumerate(names, start=1):
        xs, ys = series.step_series(versions[name], last_epoch)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                line={"shape": "hv", "color": PALETTE[(i - 1) % len(PALETTE)]},
                name=name,
                hovertemplate=f"{html.escape(name)} = %{{y}} from epoch %{{x}}<extra></extra>",
            ),
            row=i,
            col=1,
        )
        numbers = [y for y in ys if isinstance(y, int | float)]
        if numbers and max(numbers) == min(numbers):  # a flat line: centre it, keep its scale
            spread = abs(numbers[0]) * 0.5 or 1.0
            fig.update_yaxes(range=[numbers[0] - spread, numbers[0] + spread], row=i, col=1)
        for event in events:
            if event.get("hyperparameter") == name and event.get("epoch") is not None:
                fig.add_vline(
                    x=event["epoch"], line_dash="dot", line_color=event_colour(event), row=i, col=1
                )
    fig.update_layout(height=max(220, 170 * len(names)), showlegend=False, **LAYOUT)
    fig.update_xaxes(title_text="epoch", row=len(names), col=1)
    _integer_axis(fig, [last_epoch])
    return fig


def gain_chart(
    iterations: Sequence[dict[str, Any]],
    edits: Sequence[dict[str, Any]],
    k: int,
    title: str = "",
) -> go.Figure:
    """DL-Steer: gain per iteration, its moving average (last k iterations), and the
    queue edits marked where they take effect (iteration + 1), with their details."""
    pts = series.points(
        [r.get("iteration") for r in iterations], [r.get("gain") for r in iterations]
    )
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+lines",
            name="gain",
            line={"color": "#9fb1fc"},
            marker={"color": "#1f4eb4", "size": 6},
        )
    )
    ma = series.moving_average(ys, k)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ma,
            mode="lines",
            name=f"moving average (last {k})",
            line={"color": "#2ca02c", "width": 3},
        )
    )
    top = max(ys) if ys else 1.0
    marks = [e for e in edits if e.get("iteration") is not None]
    hover = []
    for e in marks:
        at = e["iteration"] + 1
        w = series.around(pts, at, k)
        text = [
            f"<b>queue edit: {_esc(e.get('action'))}</b> item {_esc(e.get('itemId'))}, "
            f"from iteration {at}",
            f"before: {_esc(e.get('before'))}",
            f"after: {_esc(e.get('after'))}",
        ]
        if e.get("person"):
            text.append(f"by: {_esc(e.get('person'))}")
        if e.get("reason"):
            text.append(f"reason: {_esc(e.get('reason'))}")
        text.append(f"gain avg before: {_esc(w.before)} → after: {_esc(w.after)} (k={k})")
        hover.append("<br>".join(text))
        fig.add_vline(x=at - 0.5, line_dash="dash", line_color=STEERING_COLOUR, opacity=0.7)
    if marks:
        fig.add_trace(
            go.Scatter(
                x=[e["iteration"] + 0.5 for e in marks],
                y=[top] * len(marks),
                mode="markers",
                marker={"symbol": "triangle-down", "size": 14, "color": STEERING_COLOUR},
                name="steering (queue edits)",
                hovertext=hover,
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=title or None, xaxis_title="iteration", yaxis_title="gain", height=400, **LAYOUT
    )
    _integer_axis(fig, xs)
    return fig


def compare_curves(series_by_run: dict[str, list[dict[str, Any]]], metric: str) -> go.Figure:
    fig = go.Figure()
    for i, (label, metrics) in enumerate(series_by_run.items()):
        pts = series.points(
            [m.get("epoch") for m in metrics], [metric_of(m, metric) for m in metrics]
        )
        fig.add_trace(_curve(pts, label, i))
    fig.update_layout(xaxis_title="epoch", yaxis_title=metric, height=380, **LAYOUT)
    _integer_axis(fig, [m.get("epoch") for ms in series_by_run.values() for m in ms])
    return fig


def query_chart(
    rows: Sequence[dict[str, Any]],
    kind: str,
    x: str,
    ys: Sequence[str],
    series_column: str | None = None,
) -> go.Figure:
    """A chart of query rows (line, bar or scatter) from a ChartHint or the user's pick."""
    fig = go.Figure()
    if series_column:
        split: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            split.setdefault(fmt(r.get(series_column)), []).append(r)
    else:
        split = {"": list(rows)}
    for part, part_rows in split.items():
        for y in ys:
            name = f"{y} ({part})" if part else y
            xs = [fmt(r.get(x)) if kind == "bar" else r.get(x) for r in part_rows]
            vals = [r.get(y) for r in part_rows]
            if kind == "bar":
                fig.add_trace(go.Bar(x=xs, y=vals, name=name))
            else:
                mode = "markers" if kind == "scatter" else "lines+markers"
                fig.add_trace(go.Scatter(x=xs, y=vals, mode=mode, name=name))
    fig.update_layout(xaxis_title=x, height=380, barmode="group", **LAYOUT)
    return fig
