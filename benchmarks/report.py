"""RESULTS.md and results.json from the figures of a benchmark run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGETS = {
    "capture_overhead": "median capture overhead <= 1% (ProvenanceCallback vs bare fit)",
    "ingestion": "ingestion >= 20,000 PROV records/s into the embedded store",
    "query_latency": "every named query p50 < 100 ms on the 1,000-run KB",
    "metric_logging": "10,000 metric points logged faster than MLflow's log_batch",
    "memory": "capture adds < 50 MB of peak memory",
}
MAX_OVERHEAD = 0.01
MIN_INGESTION = 20_000
MAX_P50_MS = 100.0
MAX_ADDED_MB = 50.0


# -- formatting ---------------------------------------------------------------------
def _n(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def _mmm(s: dict[str, Any] | None, digits: int = 2) -> tuple[str, str, str]:
    if not s:
        return ("n/a", "n/a", "n/a")
    return (_n(s.get("min"), digits), _n(s.get("median"), digits), _n(s.get("max"), digits))


def _pct(r: float | None) -> str:
    return "n/a" if r is None else f"{(r - 1) * 100:+.1f}%"


def _x(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


# -- targets ------------------------------------------------------------------------
def evaluate_targets(results: dict[str, Any]) -> dict[str, Any]:
    """Met / missed per target, with the figure it was judged on."""
    out: dict[str, Any] = {}
    cap = results.get("capture")
    if cap:
        worst = None
        parts = []
        for model, entry in cap["models"].items():
            r = (entry.get("ratio_provkb") or {}).get("median")
            if r is not None:
                worst = r if worst is None else max(worst, r)
                parts.append(f"{model} {_pct(r)}")
        out["capture_overhead"] = {
            "measured": ", ".join(parts) or "n/a",
            "met": None if worst is None else worst - 1 <= MAX_OVERHEAD,
        }
    ing = results.get("ingestion")
    if ing:
        rate = ing.get("records_per_second")
        out["ingestion"] = {
            "measured": f"{_n(rate)} records/s ({ing['runs']:,} runs x {ing['epochs']} epochs)",
            "met": None if rate is None else rate >= MIN_INGESTION,
        }
    qs = results.get("queries")
    if qs:
        timed = {k: v for k, v in qs.items() if "ms" in v}
        slow = sorted(
            (k for k, v in timed.items() if v["ms"]["median"] >= MAX_P50_MS),
            key=lambda k: -timed[k]["ms"]["median"],
        )
        full_size = results.get("meta", {}).get("kb_runs", 0) >= 1000
        measured = f"{len(timed) - len(slow)}/{len(timed)} under 100 ms"
        if slow:
            measured += "; over: " + ", ".join(
                f"{k} {timed[k]['ms']['median']:.0f} ms" for k in slow
            )
        if not full_size:
            measured += " (smaller KB than the target's 1,000 runs)"
        out["query_latency"] = {"measured": measured, "met": not slow if timed else None}
    ml = results.get("metric_logging")
    if ml and "mlflow_log_batch" in ml["variants"]:
        mine = ml["variants"]["provkb_epochs"]["seconds"]["median"]
        theirs = ml["variants"]["mlflow_log_batch"]["seconds"]["median"]
        out["metric_logging"] = {
            "measured": f"ProvKB {_n(mine)} s vs log_batch {_n(theirs)} s "
            f"({ml['points']:,} points)",
            "met": mine < theirs,
        }
    mem = results.get("memory")
    if mem and "provkb" in mem.get("added", {}):
        added = mem["added"]["provkb"]["median"]
        out["memory"] = {
            "measured": f"{_n(added, 1)} MB added peak RSS (median of paired differences)",
            "met": None if added is None else added < MAX_ADDED_MB,
        }
    return out


# -- sections -----------------------------------------------------------------------
def _machine(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    engine = meta.get("engine", {})
    pkgs = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
    rows = [
        ["CPU", f"{m.get('cpu')} ({m.get('cores')} logical cores)"],
        ["RAM", f"{m.get('ram_gb')} GB"],
        ["OS", f"{m.get('os')} ({m.get('platform')})"],
        ["Python", m.get("python", "")],
        ["Engine", f"{engine.get('engine', 'n/a')}: {engine.get('agent', 'n/a')} (embedded, Bolt)"],
        ["Packages", pkgs],
        ["Checkout", f"{m.get('git_commit')}{' + local changes' if m.get('git_dirty') else ''}"],
        [
            "Load average",
            f"{m.get('load_average_at_start')} at start, {meta.get('load_average_end')} at end",
        ],
    ]
    return _table(["", ""], rows)


def _capture(cap: dict[str, Any]) -> list[str]:
    cfg = cap["config"]
    out = [
        f"MLP: {cfg['mlp']['samples']:,} samples x 64 features, {cfg['mlp']['epochs']} epochs; "
        f"CNN: {cfg['cnn']['samples']:,} 28x28 images, {cfg['cnn']['epochs']} epochs; "
        f"batch 64, validation_split 0.2; {cfg['repeats']} interleaved repeats "
        f"({', '.join(cap['variants'])}, ...), each a fresh process; `fit` timed inside it.",
        "",
    ]
    rows = []
    for model, entry in cap["models"].items():
        for variant in cap["variants"]:
            r = entry.get(f"ratio_{variant}")
            server = (entry.get("server_cpu_seconds") or {}).get(variant)
            share = (entry.get("hook_share_provkb") or {}).get("median")
            rows.append(
                [
                    model,
                    variant,
                    *_mmm(entry[variant]),
                    *(("1", "1", "1") if variant == "none" else _mmm(r, 3)),
                    "" if variant == "none" else _pct((r or {}).get("median")),
                    "" if share is None or variant != "provkb" else f"{share * 100:.1f}%",
                    _n((server or {}).get("median")),
                ]
            )
    out += _table(
        [
            "model",
            "variant",
            "fit s min",
            "median",
            "max",
            "ratio to bare min",
            "median",
            "max",
            "median overhead",
            "hooks, share of fit",
            "server CPU s",
        ],
        rows,
    )
    out += [
        "",
        f"_{cap['note']}_ Hooks: the time `ProvenanceCallback`'s hooks took in the "
        "training thread (`hook_seconds`), as a share of the fit (median). Server CPU: "
        "CPU seconds the embedded server used during the fit (median; it runs, idle, "
        "beside every variant), on the same cores as the training.",
    ]
    return out


def _ingestion(ing: dict[str, Any]) -> list[str]:
    per = ing["per_write_submitted_per_second"]
    rows = [
        ["KB", f"{ing['runs']:,} runs x {ing['epochs']} epochs"],
        ["records stored (nodes + relationships)", f"{ing['records_stored']:,} "
         f"({ing['nodes']:,} + {ing['relationships']:,})"],
        ["records submitted (as the writer sends them)", f"{ing['records_submitted']:,}"],
        ["writes (transactions)", f"{ing['writes']:,} of up to {ing['max_records_per_write']:,}"],
        ["time in Store.write", f"{ing['write_seconds_total']:.1f} s"],
        ["**records stored per second**", f"**{_n(ing['records_per_second'])}**"],
        ["records submitted per second", _n(ing["submitted_per_second"])],
        ["per write, submitted/s min / median / max", " / ".join(_mmm(per))],
        ["by tenth of the ingestion, submitted/s",
         ", ".join(_n(x) for x in ing["by_tenth_submitted_per_second"])],
        ["generating the records (Python, not timed above)",
         f"{ing['generate_seconds_total']:.1f} s"],
    ]  # fmt: skip
    return _table(["", ""], rows)


def _queries(qs: dict[str, Any]) -> list[str]:
    rows = []
    for name, entry in qs.items():
        if "ms" not in entry:
            rows.append([name, entry.get("skipped", ""), "", "", "", "", "", "", ""])
            continue
        ms = entry["ms"]
        params = ", ".join(f"{k}={v}" for k, v in entry["params"].items()) or "(defaults)"
        rows.append(
            [
                f"`{name}`",
                params,
                str(entry["rows"]),
                str(ms["n"]),
                _n(ms["median"], 1),
                _n(ms["p95"], 1),
                _n(ms["min"], 1),
                _n(ms["max"], 1),
                "ok" if ms["median"] < MAX_P50_MS else "**over**",
            ]
        )
    return _table(
        ["query", "parameters", "rows", "n", "p50 ms", "p95 ms", "min", "max", "< 100 ms"], rows
    )


def _scopes(ex: dict[str, Any]) -> list[dict[str, Any]]:
    return [ex[k] for k in ("experiment", "kb") if k in ex]


def _label(scope: dict[str, Any]) -> str:
    return f"experiment {scope['experiment']}" if scope.get("experiment") else "whole KB"


def _rate_cell(entry: dict[str, Any], key: str, status_key: str) -> str:
    s = entry.get(key) or {}
    if s.get("n"):
        cell = " / ".join(_mmm(s, 0))
        return cell + (f" ({entry[status_key]})" if entry.get(status_key) else "")
    below = entry.get(key.replace("_records_per_second", "_records_per_second_below"))
    if below:
        return f"< {_n(below)} ({entry.get(status_key)})"
    return entry.get(status_key) or "n/a"


def _export(ex: dict[str, Any]) -> list[str]:
    rows = []
    for scope in _scopes(ex):
        base = scope.get("rdflib", {})
        ser = (base.get("serialize_records_per_second") or {}).get("median")
        par = (base.get("parse_records_per_second") or {}).get("median")
        for fmt, f in scope["formats"].items():
            rows.append(
                [
                    _label(scope),
                    fmt,
                    _n(scope.get("records")),
                    _rate_cell(f, "export_records_per_second", "export_status"),
                    _n(ser) if ser else base.get("status") or "n/a",
                    _x(f.get("export_vs_rdflib_serialize")),
                    _rate_cell(f, "import_records_per_second", "import_status"),
                    _n(par) if par else base.get("status") or "n/a",
                    _x(f.get("import_vs_rdflib_parse")),
                ]
            )
    out = _table(
        [
            "scope",
            "format",
            "records",
            "export rec/s min / median / max",
            "rdflib serialize rec/s (median)",
            "export / rdflib",
            "import rec/s min / median / max",
            "rdflib parse rec/s (median)",
            "import / rdflib",
        ],
        rows,
    )
    out.append("")
    for scope in _scopes(ex):
        base = scope.get("rdflib", {})
        parts = [f"- {_label(scope)}:"]
        if base.get("triples"):
            parts.append(
                f"{base['triples']:,} PROV-O triples; rdflib serialize "
                f"{_n((base.get('serialize_triples_per_second') or {}).get('median'))} "
                f"triples/s, parse "
                f"{_n((base.get('parse_triples_per_second') or {}).get('median'))} triples/s;"
            )
        sizes = [
            f"{fmt} {f['bytes'] / 1e6:.1f} MB"
            for fmt, f in scope["formats"].items()
            if f.get("bytes")
        ]
        if sizes:
            parts.append("files: " + ", ".join(sizes))
        if base.get("status"):
            parts.append(f"(baseline: {base['status']})")
        out.append(" ".join(parts))
    return out


def _logging(ml: dict[str, Any]) -> list[str]:
    labels = {
        "provkb_epochs": f"ProvKB, {ml['epochs']} epochs x {ml['metrics']} metrics "
        f"({ml.get('provkb_epochs_records', 0):,} records)",
        "provkb_points": f"ProvKB, {ml['points']:,} epochs x 1 metric "
        f"({ml.get('provkb_points_records', 0):,} records)",
        "mlflow_log_metric": "MLflow `log_metric` loop",
        "mlflow_log_batch": "MLflow `log_batch` (1000 per call)",
    }
    rows = []
    for name, entry in ml["variants"].items():
        rows.append(
            [
                labels.get(name, name),
                *_mmm(entry["seconds"], 3),
                _n(entry["points_per_second"]["median"]),
                _x(entry.get("speedup_vs_log_batch")),
            ]
        )
    out = _table(
        ["variant", "s min", "median", "max", "points/s (median)", "speed vs log_batch"], rows
    )
    measured = ml.get("mlflow_loop_points_measured")
    if measured and measured < ml["points"]:
        out += [
            "",
            f"_The `log_metric` loop was timed on {measured:,} points and scaled to "
            f"{ml['points']:,}._",
        ]
    return out


def _memory(mem: dict[str, Any]) -> list[str]:
    rows = []
    for variant, entry in mem["variants"].items():
        added = mem["added"].get(variant)
        rows.append(
            [
                variant,
                *_mmm(entry["peak_rss_mb"], 0),
                _n(entry["rss_before_fit_mb"]["median"], 0),
                "" if added is None else " / ".join(_mmm(added, 1)),
            ]
        )
    out = _table(
        [
            "variant",
            "peak RSS MB min",
            "median",
            "max",
            "RSS before fits MB (median)",
            "added vs bare MB min / median / max",
        ],
        rows,
    )
    return [*out, "", f"_{mem['note']}_"]


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    targets = evaluate_targets(results)
    lines = [
        "# ProvKB benchmarks",
        "",
        f"`{meta['command']}` — {meta['started']}, mode **{meta['mode']}**, "
        f"{meta['duration_seconds'] / 60:.1f} min.",
        "",
        "> **Noise.** Figures are min / median / max over repeats, and comparisons are "
        "ratios of runs interleaved in the same session (ABCABC...), because absolute "
        "numbers move with whatever else the machine does. " + (meta.get("noise_note") or ""),
        "",
        "## Machine",
        "",
        *_machine(meta),
        "",
        "## Targets",
        "",
        *_table(
            ["target", "measured", "status"],
            [
                [TARGETS[k], v["measured"], _status(v["met"])]
                for k, v in targets.items()
                if k in TARGETS
            ],
        ),
        "",
    ]
    sections = [
        ("capture", "1. Capture overhead", _capture),
        ("ingestion", "2. Ingestion", _ingestion),
        ("queries", "3. Query latency", _queries),
        ("export_import", "4. Export and import throughput", _export),
        ("metric_logging", "5. Logging metric points", _logging),
        ("memory", "6. Peak memory of a training process", _memory),
    ]
    for key, title, fn in sections:
        lines += [f"## {title}", ""]
        if key in results.get("errors", {}):
            lines += [f"**Failed:** `{results['errors'][key]}`", ""]
        elif key in results:
            try:
                lines += [*fn(results[key]), ""]
            except Exception as exc:  # a report bug must not lose the other figures
                lines += [
                    f"_Could not render ({type(exc).__name__}: {exc}); see results.json._",
                    "",
                ]
        else:
            lines += ["_Not run._", ""]
        intro = DESCRIPTIONS.get(key)
        if intro:
            lines += [intro, ""]
    if results.get("analysis"):
        lines += ["## Analysis", "", *results["analysis"], ""]
    return "\n".join(lines).rstrip() + "\n"


DESCRIPTIONS = {
    "ingestion": (
        "A synthetic KB built with capture's own graph builder (`benchmarks/synthetic.py`: "
        "~20 hyperparameters per run, per-epoch Epoch + Metrics, 2 learning-rate adaptations, "
        "2 steering requests and actions, early stopping on every 10th run, a model with "
        "layers, shared datasets, scripts, agents), merged into writes as the background "
        "writer merges them and sent with `Store.write` into a fresh embedded store. Only "
        "`Store.write` is timed."
    ),
    "queries": (
        "Every query of `provkb.queries.QUERIES`, warm (2 untimed calls first), through "
        "`queries.run` (what the CLI and UI call); n timed calls each, fewer for slow ones."
    ),
    "export_import": (
        "Export: `kb.export.export` (read graph, build PROV document, serialize to a file). "
        "Import: `kb.provimport.import_file` into an empty second embedded store. Baseline: "
        "rdflib alone on the same triples (the exported Turtle graph): parsing it, and "
        "serializing the parsed graph back, timed separately. Records = PROV elements + "
        "relations. Each task runs in a child process under a time limit; one that does "
        "not finish is reported as such (with the rate it stayed below when the record "
        "count is known). Known bottlenecks and proposed fixes: benchmarks/README.md."
    ),
    "metric_logging": (
        "ProvKB: capture's recorder + background writer with its journal, from the first "
        "submit until `flush()` returns (committed). MLflow: sqlite tracking store in a "
        "temporary folder. Runs created before timing on both sides."
    ),
}


def write(results: dict[str, Any], md_path: Path, json_path: Path) -> None:
    results = dict(results)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        results["targets"] = evaluate_targets(results)
    finally:
        json_path.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    md_path.write_text(render(results), encoding="utf-8")
