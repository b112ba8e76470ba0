"""The benchmark harness works: a tiny in-process run of every benchmark returns
well-formed figures and the report renders. No timing is asserted (CI machines are
noisy); `python -m benchmarks run` measures for real."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks package lives beside the tests
    sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    capture_overhead,
    engines,  # noqa: E402
    export_import,
    ingestion,
    memory,
    metric_logging,
    predict_overhead,
    query_latency,
    report,
)
from benchmarks.common import fresh_store, stats  # noqa: E402
from benchmarks.synthetic import KBSpec, run_batches, sample_params  # noqa: E402
from provkb.ontology import STEERING_ACTION, TRAINING_RUN  # noqa: E402
from provkb.queries import registry  # noqa: E402

ENGINE_OF = {"embedded": engines.ARCADEDB, "neo4j": engines.NEO4J}  # conftest's names

SPEC = KBSpec(runs=4, epochs=6, runs_per_experiment=2)


@pytest.fixture(scope="module")
def bench_store(
    engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[engines.Handle]:
    """A store of its own on each engine: the benchmarks write many runs and must not
    meet other tests (ArcadeDB: a fresh embedded store; Neo4j: the session's server,
    emptied first, as `python -m benchmarks run` empties its own)."""
    if engine == "embedded":
        with fresh_store(tmp_path_factory.mktemp("bench"), "smoke") as handle:
            yield handle
        return
    server = request.getfixturevalue("neo4j_server")
    home = tmp_path_factory.mktemp("bench-neo4j-home")
    target = engines.Target(
        engines.NEO4J,
        home,
        server["NEO4J_URI"],
        Path(server["NEO4J_HOME"]) if "NEO4J_HOME" in server else None,
        password=server["NEO4J_PASSWORD"],
    )
    handle = engines.connect(target)
    engines.clear(handle.store)
    yield handle
    engines.clear(handle.store)
    handle.stop()


@pytest.fixture(scope="module")
def kb(bench_store: engines.Handle) -> dict[str, Any]:
    return ingestion.run(bench_store.store, SPEC, max_records=500)


def _is_stats(value: Any) -> bool:
    return isinstance(value, dict) and {"n", "min", "median", "max", "p95"} <= set(value)


def test_stats_and_synthetic_runs_follow_the_graph_model() -> None:
    s = stats([3.0, 1.0, 2.0])
    assert (s["min"], s["median"], s["max"], s["n"]) == (1.0, 2.0, 3.0, 3)
    assert stats([])["median"] is None
    batches = list(run_batches(SPEC, 1))
    labels = {label for b in batches for n in b.nodes for label in n.extra_labels}
    assert {TRAINING_RUN.label, STEERING_ACTION.label, "Epoch", "Metrics", "Layer"} <= labels
    epochs = {n.props["epoch"] for b in batches for n in b.nodes if "Epoch" in n.extra_labels}
    assert epochs == set(range(1, SPEC.epochs + 1))


def test_ingestion_reports_records_per_second(kb: dict[str, Any]) -> None:
    assert kb["runs"] == SPEC.runs and kb["writes"] >= 1
    assert kb["records_stored"] == kb["nodes"] + kb["relationships"] > 0
    assert kb["records_submitted"] >= kb["records_stored"]
    assert kb["records_per_second"] > 0
    assert _is_stats(kb["per_write_submitted_per_second"])


def test_query_latency_covers_every_named_query(
    bench_store: engines.Handle, kb: dict[str, Any]
) -> None:
    out = query_latency.run(
        bench_store.store, sample_params(SPEC), repeats=1, budget_seconds=0.01, min_repeats=1
    )
    assert set(out) == set(registry.names())
    for name, entry in out.items():
        assert "skipped" in entry or (_is_stats(entry["ms"]) and entry["ms"]["n"] >= 1), name
    assert out["epochs"]["rows"] == SPEC.epochs


def test_export_import_against_rdflib(
    bench_store: engines.Handle, kb: dict[str, Any], tmp_path: Path
) -> None:
    """Imports go to an empty store of the same engine: a fresh embedded store, or a
    second Neo4j server that the targets start and stop."""
    cfg = export_import.ExportConfig(repeats=1, repeats_kb=1, task_timeout=600, budget=900)
    targets = engines.Session(bench_store.engine, tmp_path / "session").import_targets(
        tmp_path / "import"
    )
    out = export_import.run(
        bench_store.target,
        tmp_path,
        sample_params(SPEC)["experiment"],
        cfg,
        in_process=True,
        targets=targets,
    )
    if bench_store.engine == engines.NEO4J:
        assert not targets.started  # run() stopped the second server
    for scope in ("experiment", "kb"):
        entry = out[scope]
        assert entry["records"] > 0
        assert entry["rdflib"]["triples"] > 0
        for fmt in export_import.FORMATS:
            f = entry["formats"][fmt]
            assert f["export_status"] is None and f["import_status"] is None, f
            assert f["imported_records"] > 0
            assert f["export_vs_rdflib_serialize"] > 0 and f["import_vs_rdflib_parse"] > 0
    assert out["kb"]["records"] >= out["experiment"]["records"]


def test_metric_logging_against_mlflow(bench_store: engines.Handle, tmp_path: Path) -> None:
    out = metric_logging.run(bench_store.store, tmp_path, epochs=2, metrics=5, repeats=1)
    assert out["points"] == 10
    assert {"provkb_epochs", "provkb_points"} <= set(out["variants"])
    if metric_logging.mlflow_available():
        assert {"mlflow_log_metric", "mlflow_log_batch"} <= set(out["variants"])
    for entry in out["variants"].values():
        assert _is_stats(entry["seconds"]) and entry["seconds"]["n"] == 1


@pytest.mark.slow
def test_capture_overhead_and_memory_in_process(
    bench_store: engines.Handle, tmp_path: Path
) -> None:
    cap = capture_overhead.run(
        bench_store.target, tmp_path, capture_overhead.CaptureConfig.tiny(), in_process=True
    )
    assert cap["variants"][:2] == ["none", "provkb"]
    assert cap["engine"] == bench_store.engine
    for model in ("mlp", "cnn"):
        assert _is_stats(cap["models"][model]["none"])
        assert cap["models"][model]["ratio_provkb"]["median"] > 0
    provkb_sample = next(s for s in cap["samples"] if s["variant"] == "provkb")
    assert provkb_sample["provkb_records_written"] > 0
    assert not provkb_sample["provkb_records_dropped"]
    mem = memory.summarize(cap)
    assert _is_stats(mem["added"]["provkb"]) and mem["variants"]["none"]["peak_rss_mb"]["n"] == 1


@pytest.mark.slow
def test_predict_overhead_in_process(bench_store: engines.Handle, tmp_path: Path) -> None:
    """Bare against captured predicts on two input sizes; every Prediction stored; the
    report's table renders."""
    cfg = predict_overhead.PredictConfig.tiny()
    out = predict_overhead.run(bench_store.target, cfg, in_process=True)
    assert out["engine"] == bench_store.engine
    assert list(out["sizes"]) == [str(rows) for rows in cfg.rows]
    for rows, entry in zip(cfg.rows, out["sizes"].values(), strict=True):
        assert entry["rows"] == rows
        for key in ("bare_ms", "callback_ms", "overhead_ms", "hooks_ms", "fingerprint_ms"):
            assert _is_stats(entry[key]) and entry[key]["n"] == cfg.repeats, key
        assert entry["bare_ms"]["min"] > 0 and entry["fingerprint_ms"]["min"] > 0
        assert entry["hooks_ms"]["min"] > 0  # the callback's hooks ran in every predict
        assert entry["hooks_ms"]["median"] <= entry["callback_ms"]["median"]  # hooks within
    # a warm-up and `repeats` recorded predicts per size, all of them in the store
    assert out["predictions_recorded"] == len(cfg.rows) * (cfg.repeats + 1)
    assert out["predictions_stored"] == out["predictions_recorded"]
    assert out["flushed"] and not out["records_dropped"]
    name = bench_store.engine
    results = {
        "meta": _meta({}, engines.neo4j_server_settings()),
        "engines": {name: {"engine": name, "info": {}, "predict": out, "errors": {}}},
        "errors": {},
    }
    md, js = tmp_path / "RESULTS.md", tmp_path / "results.json"
    report.write(results, md, js)
    text = md.read_text()
    assert "## 8. Predict's capture overhead" in text
    assert f"| {report.ENGINE_NAMES[name]} | {cfg.rows[-1]:,} |" in text
    assert json.loads(js.read_text())["engines"][name]["predict"]["sizes"]


@pytest.mark.slow
def test_fixed_cost_per_fit_in_process(bench_store: engines.Handle, tmp_path: Path) -> None:
    """Short fits bare, captured, and captured with `final_wait=0`: each captured fit's
    hook time, split into start, between and end (the end's store wait within it), every
    run stored; the report's table and target render."""
    from benchmarks import fit_fixed_cost

    cfg = fit_fixed_cost.FixedCostConfig(fits=2, samples=256, epochs=2)
    out = fit_fixed_cost.run(bench_store.target, cfg, in_process=True)
    assert out["engine"] == bench_store.engine and out["fits"] == 2  # every run stored
    assert isinstance(out["complete"], bool)  # whether each was stored when fit returned
    first, later = out["first"], out["later"]
    assert first["begin_ms"] > 0 and first["end_ms"] >= first["end_wait_ms"] > 0
    parts = first["begin_ms"] + first["between_ms"] + first["end_ms"]
    assert abs(first["hooks_ms"] - parts) < 0.5  # the parts add up (to rounding)
    assert _is_stats(later["hooks_ms"]) and later["hooks_ms"]["n"] == 1
    assert _is_stats(out["bare_fit_s"]) and out["bare_fit_s"]["n"] == 2
    no_wait = out["no_wait"]  # final_wait=0: every one of its fits counts as a later one
    assert no_wait["fits"] == 2 and no_wait["later"]["hooks_ms"]["n"] == 2
    name = bench_store.engine
    results = {
        "meta": _meta({}, engines.neo4j_server_settings()),
        "engines": {name: {"engine": name, "info": {}, "fixed_cost": out, "errors": {}}},
        "errors": {},
    }
    md, js = tmp_path / "RESULTS.md", tmp_path / "results.json"
    report.write(results, md, js)
    text = md.read_text()
    assert "## 9. Capture's fixed cost per fit" in text
    assert f"| {report.ENGINE_NAMES[name]} | first of the process |" in text
    assert f"| {report.ENGINE_NAMES[name]} | final_wait=0 (median of 2) |" in text
    target = json.loads(js.read_text())["targets"][name]["fixed_cost"]
    assert target["met"] == (later["hooks_ms"]["median"] < fit_fixed_cost.TARGET_MS)


def _meta(packages: dict[str, str], neo4j_server: dict[str, Any]) -> dict[str, Any]:
    """The `meta` of a quick run's results on a 2-core machine."""
    return {
        "command": "python -m benchmarks run --quick",
        "mode": "quick",
        "started": "now",
        "duration_seconds": 1.0,
        "kb_runs": SPEC.runs,
        "machine": {"cpu": "x", "cores": 2, "packages": packages},
        "neo4j_server": neo4j_server,
    }


def test_report_renders_every_section(
    engine: str, kb: dict[str, Any], bench_store: engines.Handle, tmp_path: Path
) -> None:
    """One engine's figures: its engine column, its server and its targets."""
    name = ENGINE_OF[engine]
    results = {
        "meta": _meta({}, engines.neo4j_server_settings()),
        "engines": {
            name: {
                "engine": name,
                "info": {"agent": bench_store.agent},
                "ingestion": kb,
                "errors": {"capture": "RuntimeError: example"},
            }
        },
        "errors": {f"{name} capture": "RuntimeError: example"},
    }
    md, js = tmp_path / "RESULTS.md", tmp_path / "results.json"
    report.write(results, md, js)
    text = md.read_text()
    for title in ("Capture overhead", "Ingestion", "Query latency", "Logging metric points"):
        assert title in text
    assert "records stored per second" in text and "RuntimeError: example" in text
    label = report.ENGINE_NAMES[name]
    assert f"|  | {label} |" in text  # the ingestion table's engine column
    assert f"| {label} | {bench_store.agent}" in text  # the machine table names the server
    if name == engines.NEO4J:
        assert "-Xmx1g" in text and "page cache 256 MiB" in text
    assert json.loads(js.read_text())["targets"][name]["ingestion"]["met"] in (True, False)


def _figures(kb: dict[str, Any]) -> dict[str, Any]:
    """A run's figures for the report: this module's ingestion, one query's latency."""
    return {
        "ingestion": kb,
        "queries": {"epochs": {"params": {"run": "r"}, "rows": 6, "ms": stats([1.0, 2.0])}},
        "errors": {},
        "info": {},
    }


def test_report_has_an_engine_column_for_both_engines(kb: dict[str, Any], tmp_path: Path) -> None:
    """Both engines in one session: every figure shows both, side by side."""
    results = {
        "meta": _meta({"arcadedb-embedded": "1"}, {"heap_max": "1g", "page_cache_mib": 256}),
        "engines": {
            engines.ARCADEDB: {**_figures(kb), "seconds": 60.0},
            engines.NEO4J: {**_figures(kb), "seconds": 90.0, "errors": {"export_import": "E"}},
        },
        "errors": {"neo4j export_import": "E"},
    }
    md, js = tmp_path / "RESULTS.md", tmp_path / "results.json"
    report.write(results, md, js)
    text = md.read_text()
    assert "|  | ArcadeDB | Neo4j |" in text  # ingestion: a column per engine
    assert "| ArcadeDB | `epochs` |" in text and "| Neo4j | `epochs` |" in text
    assert "| engine | query |" in text
    assert "**Neo4j: failed:** `E`" in text
    assert "ArcadeDB 1.0 min, Neo4j 1.5 min" in text
    assert "-Xmx1g" in text and "page cache 256 MiB" in text
    assert set(json.loads(js.read_text())["targets"]) == {"arcadedb", "neo4j"}


def test_engine_choice() -> None:
    """`--engine`: both by default where Neo4j can start, else ArcadeDB with the reason."""
    why = engines.neo4j_unavailable()
    chosen, note = engines.choose(None)
    assert chosen == (["arcadedb"] if why else ["arcadedb", "neo4j"])
    assert (note == "") == (why is None) and (why or "") in note
    assert engines.choose("arcadedb") == (["arcadedb"], "")
    assert engines.choose("both")[0] == chosen


def test_quick_plan_runs_every_section_with_fewer_processes() -> None:
    """`--quick` (the CI smoke): every section, the new `predict` too, with a repeat's
    variants in one process and the default server priority only; the full plan keeps
    a fresh process per variant and every priority."""
    from benchmarks.__main__ import SECTIONS, plan

    assert "predict" in SECTIONS
    quick, full = plan(True), plan(False)
    assert quick["capture"].one_process and not full["capture"].one_process
    assert quick["logging"]["fit_one_process"] and "fit_one_process" not in full["logging"]
    assert quick["responsiveness"].priorities == ("idle",)
    assert full["responsiveness"].priorities == ("idle", "low", "normal")
    assert quick["predict"].rows[-1] < full["predict"].rows[-1] == 100_000
    assert "fixed_cost" in SECTIONS and quick["fixed_cost"] is None  # full mode only
    assert full["fixed_cost"].fits >= 8


@pytest.mark.slow
def test_page_timing_renders_the_pages_and_runs_the_cli(
    bench_store: engines.Handle, kb: dict[str, Any]
) -> None:
    """Section 7's pages on each engine: each page renders (no exception) and `provkb
    query` answers, timed once each when nothing trains; the report shows them in a
    table. The environment the app and the CLI were given is put back."""
    import os

    from benchmarks import page_timing, responsiveness

    before = {name: os.environ.get(name) for name in ("PROVKB_URI", "PROVKB_HOME")}
    target = bench_store.target
    run = sample_params(SPEC)["run"]
    times = page_timing.time_pages(target, lambda: run, lambda: False, 0)
    more = iter([True])  # one more turn: the Overview comes round again
    again = page_timing.time_pages(target, lambda: run, lambda: next(more, False), 0)
    assert {name: os.environ.get(name) for name in before} == before
    assert set(times) == {*page_timing.PAGES, page_timing.CLI}
    assert all(entry["n"] == 1 and entry["median"] > 0 for entry in times.values())
    assert [again[name]["n"] for name in (*page_timing.PAGES, page_timing.CLI)] == [2, 1, 1, 1]
    entry = {"reads": 1, "read_ms": stats([1.0]), "fit_quiet": 1.0, "fit_reads": 1.0}
    entry["pages"] = {"quiet": times, "training": times, "fit": 2.0}
    res = {"config": {"runs": 4}, "priorities": {"idle": entry}}
    _, _, notes = report._responsiveness(res)  # noqa: SLF001
    text = "\n".join(notes)
    for name in (*page_timing.PAGES, page_timing.CLI):
        assert f"| {name} | " in text
    assert responsiveness.ResponsivenessConfig().pages  # the full run measures them
