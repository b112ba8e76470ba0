"""Compare: parallel coordinates of runs over hyperparameters and metrics, coloured by a
metric's value or by experiment, study, search session or status; picked runs side by
side (hyperparameters, architecture, curves), by default the best run and the best one
that differs from it. On one study (or a session chain, its last study), the next search
session starts from the chart's top k runs: highlighted on the chart, its narrowed
ranges previewed (nothing written) before it starts."""

from __future__ import annotations

from typing import Any

import streamlit as st

from provkb.ui import charts, common, compare_sessions, data, parcoords
from provkb.ui.common import fmt, load

PREFERRED_HPS = ("optimizer", "learning_rate", "batch_size", "epochs", "momentum", "dropout")
MAX_SIDE_BY_SIDE = 4
GAIN = data.GAIN
BY_VALUE = "metric value"
SESSION = "session"
COLOUR_CHOICES = (BY_VALUE, "experiment", "study", SESSION, "status")
STUDY_SCOPE, CHAIN_SCOPE = "study: ", "session chain: "


def _lower_is_better(metric: str) -> bool:
    return "loss" in metric or metric in ("mse", "mae", "rmse", "error")


def scope() -> dict[str, Any]:
    """The runs the page compares: `filters` (of the reads), `limit`, `scope` (the
    choice's text) and `chain` (the session chain of a study or chain scope, first
    session first; [] otherwise)."""
    choices = load("filter_choices")
    sessions = load("study_sessions")
    options = ["all runs"]
    options += [f"experiment: {e}" for e in choices["experiments"]]
    options += [f"{STUDY_SCOPE}{s}" for s in choices["studies"]]
    options += [f"{CHAIN_SCOPE}{s}" for s in choices["studies"] if sessions.get(s, 1) > 1]
    c1, c2 = st.columns([3, 1])
    chosen = c1.selectbox("Runs", options, key="cmp_scope")
    limit = c2.number_input("At most (newest)", 10, 1000, 300, step=10, key="cmp_limit")
    filters: dict[str, Any] = {}
    chain: list[dict[str, Any]] = []
    if chosen.startswith("experiment: "):
        filters["experiment"] = chosen.removeprefix("experiment: ")
    elif chosen.startswith(STUDY_SCOPE):
        filters["study"] = chosen.removeprefix(STUDY_SCOPE)
        chain = load("study_chain", filters["study"])
    elif chosen.startswith(CHAIN_SCOPE):
        chain = load("study_chain", chosen.removeprefix(CHAIN_SCOPE))
        filters["studies"] = [c["study"] for c in chain] or [chosen.removeprefix(CHAIN_SCOPE)]
    return {"filters": filters, "limit": int(limit), "scope": chosen, "chain": chain}


def main() -> None:
    st.title("Compare runs")
    if not common.has_runs():
        return
    sel = scope()
    filters, limit = sel["filters"], sel["limit"]
    parent = sel["chain"][-1] if sel["chain"] else None  # a next session's parent
    # Widgets keyed by what their choices depend on: another set of runs (or metric)
    # starts from fresh defaults.
    sfx = sel["scope"]
    names = load("hyperparameter_names", limit=limit, **filters)
    varying = [n["name"] for n in names if (n.get("distinctValues") or 0) > 1]
    all_names = [n["name"] for n in names]
    default = [n for n in PREFERRED_HPS if n in varying]
    default += [n for n in PREFERRED_HPS if n in all_names and n not in default]
    default = default[:4] or varying[:4] or all_names[:3]
    metrics = load("compare_metric_keys", **filters)
    if filters.get("study") or filters.get("studies"):
        metrics = [GAIN, *metrics]
    c1, c2, c3, c4, c5 = st.columns([3, 1.3, 0.8, 1.6, 1])
    dims = c1.multiselect(
        "Hyperparameters (initial values)", all_names, default=default, key=f"cmp_hps:{sfx}"
    )
    if not metrics:
        st.info("These runs have no epoch metrics yet.")
        return
    preferred = GAIN if GAIN in metrics else ("val_accuracy" if "val_accuracy" in metrics else None)
    metric = c2.selectbox(
        "Metric",
        metrics,
        index=metrics.index(preferred) if preferred else 0,
        key=f"cmp_metric:{sfx}",
    )
    lower = _lower_is_better(metric)
    if metric == GAIN and parent and parent.get("mode") in ("min", "max"):
        lower = parent["mode"] == "min"  # the study's own sense of a better gain
    mode = c3.selectbox(
        "Best is", ("min", "max"), index=0 if lower else 1, key=f"cmp_mode:{sfx}:{metric}"
    )
    extra = c4.multiselect(
        "More metrics",
        [m for m in metrics if m not in (metric, GAIN)],
        key=f"cmp_more:{sfx}:{metric}",
        help="More metric axes (each at its best: min for losses and errors, else max)",
    )
    colour_by = c5.selectbox("Colour by", COLOUR_CHOICES, key="cmp_colour")
    column = f"{mode} {metric}"
    table = run_table(dims, metric, mode, limit, filters)
    if not table:
        st.info("No run to compare.")
        return
    columns = [column]
    for other in extra:
        other_mode = "min" if _lower_is_better(other) else "max"
        columns.append(f"{other_mode} {other}")
        best = {
            r["runId"]: r[columns[-1]] for r in run_table(dims, other, other_mode, limit, filters)
        }
        for r in table:
            r[columns[-1]] = best.get(r["runId"])
    chart = st.container()
    highlight = None
    if parent:
        highlight = compare_sessions.next_session(parent, table, column, mode, dims)
    with chart:
        fig, legend = parcoords.figure(
            table,
            dims,
            columns,
            column if colour_by == BY_VALUE else colour_by,
            lower_is_better=mode == "min",
            highlight=highlight,
        )
        st.plotly_chart(fig, width="stretch", key="cmp_parcoords")
        if legend:
            st.markdown(
                "Colours: "
                + " · ".join(
                    f"<span style='color:{c}'>■</span> {fmt(g)}" for g, c in legend.items()
                ),
                unsafe_allow_html=True,
            )
        caption = f"{len(table)} run(s); drag along an axis to filter the lines"
        if highlight is not None:
            caption += f"; the {len(highlight)} selected run(s) in colour, the others grey."
        elif colour_by == BY_VALUE:
            caption += "; the best runs are the brightest."
        st.caption(caption)

    st.subheader("Side by side")
    reverse = mode == "max"
    ranked = sorted(
        table, key=lambda r: (r[column] is None, -(r[column] or 0) if reverse else (r[column] or 0))
    )
    labels = {r["runId"]: f"{r.get('name')} · {fmt(r[column])} · {r['runId']}" for r in ranked}
    picked = st.multiselect(
        f"Runs (best {column} first; up to {MAX_SIDE_BY_SIDE})",
        list(labels),
        default=parcoords.default_pair(ranked, dims),
        format_func=labels.get,
        max_selections=MAX_SIDE_BY_SIDE,
        key=f"cmp_pick:{sfx}:{column}",
    )
    if len(picked) < 1:
        st.caption("Pick runs to compare them.")
        return
    side_by_side(picked, {r["runId"]: r for r in table}, metric if metric != GAIN else None)


def run_table(
    dims: list[str], metric: str, mode: str, limit: int, filters: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per run: its name, groups, initial `dims` values and `"{mode} {metric}"`
    (the gain of a study's trial when `metric` is the gain)."""
    rows = load(
        "compare_rows", tuple(dims), metric if metric != GAIN else "loss", limit=limit, **filters
    )
    sessions = load("study_sessions")
    column = f"{mode} {metric}"
    table = []
    for r in rows:
        value = (
            r.get("gain")
            if metric == GAIN
            else r.get("maxMetric" if mode == "max" else "minMetric")
        )
        table.append(
            {
                "runId": r["runId"],
                "name": r.get("name"),
                "experiment": r.get("experiment"),
                "study": r.get("study"),
                SESSION: compare_sessions.session_label(r.get("study"), sessions),
                "status": r.get("status"),
                "iteration": r.get("iteration"),
                "trialGain": r.get("gain"),
                **r["hyperparameters"],
                column: value,
            }
        )
    return table


def side_by_side(run_ids: list[str], rows: dict[str, dict], metric: str | None) -> None:
    heads = {rid: f"{rows[rid].get('name')} ({rid[:6]})" for rid in run_ids}
    hp_tab, arch_tab, curve_tab = st.tabs(["Hyperparameters", "Architecture", "Curves"])
    with hp_tab:
        values: dict[str, dict[str, Any]] = {}
        for rid in run_ids:
            for name, row in data.current_values(load("run_hyperparameters", rid)).items():
                values.setdefault(name, {})[rid] = row
        only_diff = st.toggle("Only differences", value=True, key="cmp_only_diff")
        diff_rows = []
        for name in sorted(values):
            cells = {heads[r]: _hp_cell(values[name].get(r)) for r in run_ids}
            differs = len(set(cells.values())) > 1
            if only_diff and not differs:
                continue
            diff_rows.append({"hyperparameter": name, **cells})
        if diff_rows:
            common.dataframe(
                common.cell_table(diff_rows, list(diff_rows[0])),
                hide_index=True,
                width="stretch",
                key="cmp_hp_diff",
            )
        else:
            st.caption("No difference in hyperparameters.")
    with arch_tab:
        arch_rows: dict[int, dict[str, Any]] = {}
        for rid in run_ids:
            for layer in load("run_layers", rid):
                idx = layer.get("index")
                arch_rows.setdefault(idx, {"index": idx})[heads[rid]] = _layer_cell(layer)
        if arch_rows:
            ordered = [arch_rows[i] for i in sorted(arch_rows, key=lambda x: (x is None, x))]
            common.dataframe(
                common.cell_table(ordered, ["index", *heads.values()]),
                hide_index=True,
                width="stretch",
                key="cmp_layers",
            )
        else:
            st.caption("No layers recorded for these runs.")
        summary = []
        for rid in run_ids:
            model = load("run_model", rid) or {}
            summary.append(
                {
                    "run": heads[rid],
                    "model": model.get("name"),
                    "class": model.get("class"),
                    "layers": model.get("layerCount"),
                    "parameters": model.get("totalParams"),
                }
            )
        common.dataframe(
            common.cell_table(summary, list(summary[0])),
            hide_index=True,
            width="stretch",
            key="cmp_models",
        )
    with curve_tab:
        series_by_run = {heads[rid]: load("run_metrics", rid) for rid in run_ids}
        keys = sorted({k for ms in series_by_run.values() for k in data.metric_keys(ms)})
        if not keys:
            st.caption("No epoch metrics.")
            return
        default = metric if metric in keys else keys[0]
        key = st.selectbox("Curve", keys, index=keys.index(default), key="cmp_curve")
        st.plotly_chart(
            charts.compare_curves(series_by_run, key), width="stretch", key="cmp_curves"
        )


def _hp_cell(row: dict | None) -> str:
    if row is None:
        return "-"
    text = fmt(row.get("value"))
    if (row.get("version") or 1) > 1:
        text += f" (v{row['version']} from epoch {row.get('fromEpoch')})"
    return text


def _layer_cell(layer: dict) -> str:
    parts = [str(layer.get("class") or ""), str(layer.get("name") or "")]
    for key in ("units", "filters", "kernelSize", "activation", "rate"):
        if layer.get(key) is not None:
            parts.append(f"{key}={fmt(layer[key])}")
    return " ".join(p for p in parts if p)


common.run_page(main)
