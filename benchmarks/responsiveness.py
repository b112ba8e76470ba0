"""Responsiveness while training: how fast the knowledge base answers a person while a
CPU-bound training with capture runs on the same machine, and what a higher priority
of the embedded server costs that training.

For each priority of the embedded server (`PROVKB_SERVER_PRIORITY`: `idle`, Linux's
SCHED_IDLE, the default; `low`, niceness +10; `normal`), a fresh store with a small
synthetic KB is started at that priority. The same training (the capture benchmark's
MLP, with `ProvenanceCallback` writing to that store, in its own process) runs twice:
once alone ("quiet"), once while this process asks what the Overview and Run monitor
ask (`runs`, `epochs` of a run) every `pause` seconds, as a person clicking would.
Reported: the latency of those reads while the training runs (p50 / p95), and the
fit's seconds, quiet and with reads, as ratios to the `idle` server's quiet fit.
With `pages`, at the default priority a third fit runs while this process renders the
app's pages and runs `provkb query` (`page_timing`): what a person waits for, before the
training (quiet) and during it.

On Neo4j (`run_server`) the server's priority is its operator's: the same fits, reads
and pages run once, against the server the benchmark started.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provkb.queries import registry

from . import page_timing, synthetic
from .capture_overhead import ROOT, CaptureConfig, worker_config
from .common import environment, log, ratio, start_store, stats

PRIORITIES = ("idle", "low", "normal")
SERVER = "server"  # a server's own priority (Neo4j: its operator's)
READS = ("runs", "epochs")  # the Overview's list and the Run monitor's curve
EXPERIMENT = "bench-capture"  # the training worker's (benchmarks/_train_worker.py)


@dataclass
class ResponsivenessConfig:
    """Sizes: the seeded KB, the training, the reads' pace."""

    runs: int = 50
    epochs: int = 20
    training: dict[str, int] = field(
        default_factory=lambda: {"samples": 20_000, "epochs": 12, "batch_size": 64}
    )
    pause: float = 0.5
    priorities: tuple[str, ...] = PRIORITIES
    timeout: float = 900.0
    pages: bool = True  # page renders and `provkb query` at the default priority
    pages_epochs: int = 36  # the third fit: long enough for about ten of each

    @classmethod
    def quick(cls) -> ResponsivenessConfig:
        return cls(
            runs=6,
            epochs=4,
            training={"samples": 1_500, "epochs": 3, "batch_size": 64},
            priorities=("idle",),  # the default priority only: the CI smoke < 5 min
            pages=False,  # a third fit; tests/test_benchmarks_smoke covers page_timing
        )


def _server_priority(priority: str) -> contextlib.AbstractContextManager[None]:
    """Servers started inside run at `priority` (they read it from the environment)."""
    return environment({"PROVKB_SERVER_PRIORITY": priority})


def _config(
    target: Any, cfg: ResponsivenessConfig, folder: Path, rep: int, epochs: int | None = None
) -> str:
    training = cfg.training if epochs is None else {**cfg.training, "epochs": epochs}
    capture = CaptureConfig(mlp=training)
    config = worker_config("provkb", rep, capture, target, folder / "mlflow")
    config["models"] = ["mlp"]
    return json.dumps(config)


def _worker(config: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks._train_worker", config],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _fit_seconds(proc: subprocess.Popen[str], timeout: float) -> float:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(err.splitlines()[-15:])
        raise RuntimeError(f"training worker failed:\n{tail}")
    return float(json.loads(lines[-1])["fits"]["mlp"])


def _read_while(proc: subprocess.Popen[str], store: Any, params: dict, pause: float) -> list:
    """Latencies (ms) of the reads asked until the training process ends."""
    latencies: list[float] = []
    turn = 0
    while proc.poll() is None:
        name = READS[turn % len(READS)]
        turn += 1
        t0 = time.perf_counter()
        registry.run(store, name, **params.get(name, {}))
        latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(pause)
    return latencies


def _pages(handle: Any, folder: Path, cfg: ResponsivenessConfig, run: str) -> dict:
    """Pages and the CLI quiet, then while a third fit runs (its worker killed if the
    timing fails); the Run monitor shows the training's own run once it has started."""

    def training_run() -> str:
        rows = registry.run(handle.store, "runs", experiment=EXPERIMENT, limit=1).rows
        return rows[0]["runId"] if rows else run

    target = handle.target
    page_timing.time_pages(target, lambda: run, lambda: False, 0)  # untimed: imports, warm
    pages = {"quiet": page_timing.time_pages(target, lambda: run, lambda: False, 0)}
    proc = _worker(_config(target, cfg, folder, 2, cfg.pages_epochs))
    try:
        alive = lambda: proc.poll() is None  # noqa: E731
        pages["training"] = page_timing.time_pages(
            target, training_run, alive, cfg.pause, deadline=cfg.timeout
        )
        pages["fit"] = _fit_seconds(proc, cfg.timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log(f"  pages quiet: {page_timing.summary(pages['quiet'])}")
    log(f"  pages while training: {page_timing.summary(pages['training'])}")
    return pages


def measure(priority: str, folder: Path, cfg: ResponsivenessConfig) -> dict[str, Any]:
    """One priority: a fresh embedded store at it, the quiet fit, then the fit with reads
    (and the pages at the default priority)."""
    home = Path(tempfile.mkdtemp(prefix=f"provkb-bench-resp-{priority}-", dir=folder))
    with _server_priority(priority):
        handle = start_store(home)
    try:
        pages = cfg.pages and priority == PRIORITIES[0]
        return _measure(handle, folder, cfg, priority, pages)
    finally:
        handle.stop()


def _measure(
    handle: Any, folder: Path, cfg: ResponsivenessConfig, label: str, pages: bool
) -> dict[str, Any]:
    """On `handle`'s (empty) store: the KB, the quiet fit, the fit with reads, the pages."""
    spec = synthetic.KBSpec(runs=cfg.runs, epochs=cfg.epochs)
    for batch in synthetic.kb_batches(spec):
        handle.store.write(batch)
    sample = synthetic.sample_params(spec)
    params = {"runs": {}, "epochs": {"run": sample["run"]}}
    for name in READS:  # warm: the first call of each query is not a person's click
        registry.run(handle.store, name, **params[name])
    quiet = _fit_seconds(_worker(_config(handle.target, cfg, folder, 0)), cfg.timeout)
    proc = _worker(_config(handle.target, cfg, folder, 1))
    latencies = _read_while(proc, handle.store, params, cfg.pause)
    busy = _fit_seconds(proc, cfg.timeout)
    timed = _pages(handle, folder, cfg, sample["run"]) if pages else None
    log(
        f"  responsiveness {label:6s}: reads p50 {stats(latencies).get('median', 0):.0f} ms "
        f"({len(latencies)}), fit quiet {quiet:.2f}s, with reads {busy:.2f}s"
    )
    return {
        "read_ms": stats(latencies),
        "reads": len(latencies),
        "fit_quiet": quiet,
        "fit_reads": busy,
        **({} if timed is None else {"pages": timed}),
    }


def run(folder: Path, cfg: ResponsivenessConfig | None = None) -> dict[str, Any]:
    """Every priority of `cfg`, the fits as ratios to the idle server's quiet fit."""
    cfg = cfg or ResponsivenessConfig()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    return _result(cfg, {p: measure(p, folder, cfg) for p in cfg.priorities}, started)


def run_server(handle: Any, folder: Path, cfg: ResponsivenessConfig | None = None) -> dict:
    """A server's store (Neo4j: its priority is its operator's): the fits, reads and
    pages once, the fits as ratios to its own quiet fit."""
    cfg = cfg or ResponsivenessConfig()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    entry = _measure(handle, folder, cfg, SERVER, cfg.pages)
    return _result(cfg, {SERVER: entry}, started)


def _result(cfg: ResponsivenessConfig, results: dict[str, dict], started: float) -> dict:
    base = results.get("idle", next(iter(results.values())))["fit_quiet"]
    for entry in results.values():
        entry["fit_quiet_ratio"] = ratio(entry["fit_quiet"], base)
        entry["fit_reads_ratio"] = ratio(entry["fit_reads"], base)
    return {
        "config": asdict(cfg),
        "priorities": results,
        "seconds": time.perf_counter() - started,
    }
