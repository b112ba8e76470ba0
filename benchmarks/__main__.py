"""`python -m benchmarks run [--quick] [--engine arcadedb|neo4j|both] [--out RESULTS.md]`.

Runs every benchmark (or `--only` some) on each engine in turn, each benchmark in an
empty store of its own (a fresh embedded store; on Neo4j a server this run starts and
empties before each benchmark, see `engines`), and writes RESULTS.md plus
results.json next to it. Exits non-zero
when a benchmark failed (its section then says why); targets are reported, never
enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import (
    capture_overhead,
    engines,
    export_import,
    fit_fixed_cost,
    ingestion,
    memory,
    metric_logging,
    predict_overhead,
    query_latency,
    responsiveness,
    step_logging,
)
from . import report as report_mod
from .common import load_average, log, machine_info
from .synthetic import KBSpec, sample_params

HERE = Path(__file__).resolve().parent
SECTIONS = (
    "capture",
    "ingestion",
    "queries",
    "export_import",
    "metric_logging",
    "responsiveness",
    "predict",
    "fixed_cost",
)


def plan(quick: bool) -> dict[str, Any]:
    """Sizes and repeats of a full or a quick run."""
    if quick:
        return {
            "mode": "quick",
            "capture": capture_overhead.CaptureConfig.quick(),  # one process per repeat
            "kb": KBSpec(runs=50, epochs=10, runs_per_experiment=10),
            "query_repeats": 5,
            "query_budget": 2.0,
            "export": export_import.ExportConfig(
                repeats=1, repeats_kb=1, task_timeout=45, budget=90, kb_formats=("provjson",)
            ),
            "logging": {
                "epochs": 5,
                "metrics": 50,
                "repeats": 1,
                "loop_points": None,
                "steps": 1_000,  # per-step metrics (step_logging)
                "fit": step_logging.FitConfig.quick(),
                "fit_one_process": True,  # its variants in turn in one worker process
            },
            "responsiveness": responsiveness.ResponsivenessConfig.quick(),  # idle only
            "predict": predict_overhead.PredictConfig.quick(),
            "fixed_cost": None,  # full mode only: another fresh TensorFlow process
        }
    return {
        "mode": "full",
        "capture": capture_overhead.CaptureConfig(),
        "kb": KBSpec(runs=1000, epochs=100, runs_per_experiment=100),
        "query_repeats": 20,
        "query_budget": 15.0,
        # whole-KB Turtle (1M records) takes minutes in prov's PROV-O encoder and rdflib
        "export": export_import.ExportConfig(
            repeats=3, repeats_kb=1, task_timeout=720, budget=1800
        ),
        "logging": {
            "epochs": 100,
            "metrics": 100,
            "repeats": 3,
            "loop_points": 10_000,
            "steps": 10_000,  # per-step metrics (step_logging)
            "fit": step_logging.FitConfig(),
        },
        "responsiveness": responsiveness.ResponsivenessConfig(),
        "predict": predict_overhead.PredictConfig(),
        "fixed_cost": fit_fixed_cost.FixedCostConfig(),
    }


def _section(results: dict[str, Any], key: str, fn) -> Any:
    """Run one benchmark of one engine; its figures, or None (the error kept)."""
    engine = results["engine"]
    log(f"{engine} {key} ...")
    t0 = time.perf_counter()
    try:
        value = fn()
    except Exception as exc:  # one failed figure must not lose the others
        results.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"
        log(f"{engine} {key} FAILED: {exc}")
        traceback.print_exc()
        return None
    results.setdefault("section_seconds", {})[key] = time.perf_counter() - t0
    log(f"{engine} {key} done in {time.perf_counter() - t0:.0f} s")
    return value


def _on_fresh_store(
    results: dict[str, Any],
    session: Any,
    key: str,
    measure: Callable[[Any], Any],
    worker_writes: bool = True,
) -> None:
    """Section `key`, measured by `measure(handle)` on a fresh store of this engine;
    `worker_writes`: a worker process writes to it, so this process's driver is closed
    and it only waits."""
    with session.fresh(key) as handle:
        _engine(results, handle)
        if worker_writes:
            handle.store.close()
        value = _section(results, key, lambda: measure(handle))
    if value:
        results[key] = value


def run_engine(
    engine: str, work: Path, p: dict[str, Any], only: set[str], keep: bool
) -> dict[str, Any]:
    """Every selected benchmark on one engine; its figures (`errors` says what failed).

    Order: capture, metric logging, predict, responsiveness, then the knowledge base
    (ingestion, queries, export/import), so that on a Neo4j server only small stores
    are emptied between benchmarks."""
    results: dict[str, Any] = {"engine": engine, "errors": {}, "info": {}}
    try:
        session = engines.Session(
            engine, work, keep, import_server="export_import" in only
        ).__enter__()
    except Exception as exc:
        results["errors"]["server"] = f"{type(exc).__name__}: {exc}"
        log(f"{engine}: {exc}")
        return results
    try:
        if session.server is not None:
            results["info"]["server_startup_seconds"] = session.server.startup_seconds
            results["info"]["servers"] = 1 + (session.importer is not None)
        if "capture" in only:
            with session.fresh("capture") as cap_store:
                _engine(results, cap_store)
                cap_store.store.close()  # the training processes write; this one waits
                cap = _section(
                    results,
                    "capture",
                    lambda: capture_overhead.run(
                        cap_store.target, work / "mlflow-capture", p["capture"]
                    ),
                )
            if cap:
                results["capture"] = cap
                results["memory"] = memory.summarize(cap)
        if "metric_logging" in only:
            with session.fresh("logging") as lg:
                _engine(results, lg)
                ml = _section(
                    results,
                    "metric_logging",
                    lambda: metric_logging.run(
                        lg.store, work / "logging", **p["logging"], target=lg.target
                    ),
                )
                if ml:
                    results["metric_logging"] = ml
        if "predict" in only:
            _on_fresh_store(
                results, session, "predict", lambda h: predict_overhead.run(h.target, p["predict"])
            )
        if "fixed_cost" in only and p["fixed_cost"] is not None:
            _on_fresh_store(
                results,
                session,
                "fixed_cost",
                lambda h: fit_fixed_cost.run(h.target, p["fixed_cost"]),
            )
        if "responsiveness" in only and engine == engines.ARCADEDB:
            resp = _section(
                results,
                "responsiveness",
                lambda: responsiveness.run(work / "responsiveness", p["responsiveness"]),
            )
            if resp:
                results["responsiveness"] = resp
        elif "responsiveness" in only and p["mode"] == "full":  # quick: embedded only
            _on_fresh_store(
                results,
                session,
                "responsiveness",
                lambda h: responsiveness.run_server(
                    h, work / "responsiveness", p["responsiveness"]
                ),
                worker_writes=False,  # this process seeds the KB and reads while it trains
            )
        if only & {"ingestion", "queries", "export_import"}:
            spec: KBSpec = p["kb"]
            with session.fresh("kb") as kb:
                _engine(results, kb)
                ing = _section(results, "ingestion", lambda: ingestion.run(kb.store, spec))
                if ing:
                    results["ingestion"] = ing
                sample = sample_params(spec)
                if "queries" in only and ing:
                    q = _section(
                        results,
                        "queries",
                        lambda: query_latency.run(
                            kb.store,
                            sample,
                            repeats=p["query_repeats"],
                            budget_seconds=p["query_budget"],
                        ),  # fmt: skip
                    )
                    if q:
                        results["queries"] = q
                if "export_import" in only and ing:
                    kb.store.close()
                    ex = _section(
                        results,
                        "export_import",
                        lambda: export_import.run(
                            kb.target,
                            work / "export",
                            sample["experiment"],
                            p["export"],
                            targets=session.import_targets(work / "import"),
                        ),
                    )
                    if ex:
                        results["export_import"] = ex
    finally:
        session.__exit__(None, None, None)
    return results


def run(args: argparse.Namespace) -> int:
    p = plan(args.quick)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    chosen, why = engines.choose(args.engine)
    if why:
        log(why)
    started = time.perf_counter()
    command = "python -m benchmarks run" + (" --quick" if args.quick else "")
    if args.engine:
        command += f" --engine {args.engine}"
    results: dict[str, Any] = {
        "meta": {
            "command": command,
            "mode": p["mode"],
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_info(),
            "kb_runs": p["kb"].runs,
            "kb_epochs": p["kb"].epochs,
            "noise_note": args.note or "",
            "engines": chosen,
            "engines_note": why,
        },
        "engines": {},
        "errors": {},
    }
    if engines.NEO4J in chosen:
        results["meta"]["neo4j_server"] = engines.neo4j_server_settings()
    work = Path(tempfile.mkdtemp(prefix="provkb-bench-", dir=args.workdir))
    log(f"mode {p['mode']}, engines {', '.join(chosen)}, working folder {work}")
    try:
        for engine in chosen:
            t0 = time.perf_counter()
            per = run_engine(engine, work / engine, p, only, args.keep)
            per["seconds"] = time.perf_counter() - t0
            results["engines"][engine] = per
            for key, error in per["errors"].items():
                results["errors"][f"{engine} {key}"] = error
            log(f"{engine} done in {per['seconds'] / 60:.1f} min")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results["meta"]["duration_seconds"] = time.perf_counter() - started
    results["meta"]["load_average_end"] = load_average()
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.with_name("results.json")
    report_mod.write(results, out, json_path)
    log(f"wrote {out} and {json_path} in {results['meta']['duration_seconds'] / 60:.1f} min")
    return 1 if results["errors"] else 0


def _engine(results: dict[str, Any], handle: Any) -> None:
    with contextlib.suppress(Exception):
        results["info"].setdefault("agent", handle.agent)
        if handle.engine == "arcadedb":
            results["info"].setdefault("startup_seconds", handle.startup_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmarks and write RESULTS.md + results.json")
    r.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, fewer fresh processes: the CI smoke (both engines, ~4 min)",
    )
    r.add_argument("--out", default=str(HERE / "RESULTS.md"), help="the Markdown report")
    r.add_argument("--json", default=None, help="the JSON results (default: next to --out)")
    r.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SECTIONS)}")
    r.add_argument("--workdir", default=None, help="parent of the temporary working folder")
    r.add_argument("--keep", action="store_true", help="keep the working folder and its stores")
    r.add_argument("--note", default=None, help="a sentence on the conditions, for RESULTS.md")
    r.add_argument(
        "--engine",
        choices=("arcadedb", "neo4j", "both"),
        default=None,
        help="the engines to measure (default: both where Neo4j can start, i.e. java and "
        "mvn are here; else arcadedb)",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
