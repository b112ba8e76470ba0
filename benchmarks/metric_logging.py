"""Logging metric points: ProvKB's capture path against MLflow's `log_metric` / `log_batch`.

ProvKB, through what `ProvenanceCallback` uses (capture's `RunRecorder` builds each
epoch's records, the process's `BackgroundWriter` with its journal sends them), timed
from the first submit until `flush()` returns (every record committed):

* `provkb_epochs`: E epochs x K metrics, one `Metrics` entity per epoch holding all K
  values (what a Keras run writes), plus its `Epoch` activity and relations;
* `provkb_points`: E*K epochs x 1 metric, one PROV entity per point (the shape of
  MLflow's rows; far more records).

MLflow (sqlite tracking store in a temporary folder): `mlflow.log_metric` once per
point in a loop, and `MlflowClient.log_batch` in calls of at most 1000 metrics (its
limit). Runs are created before timing on both sides, and one small untimed round of
each comes first (the embedded server's JIT warm-up; MLflow's database creation).

With `steps`, also per-step metrics (`step_logging`): `steps` x 1 metric stored by
capture's step series, MLflow's `log_batch` and W&B offline (`steps_stored`); with
`fit` and `target`, one Keras fit of that many steps logging 5 metrics every step,
bare and with each tracker (`step_fit`; `fit_one_process`, the quick mode: a repeat's
variants in turn in one worker process instead of a fresh one each).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from provkb.capture.facts import Hyperparameter, Run, RunContext, Source
from provkb.capture.recorder import RunRecorder
from provkb.kb.journal import Journal
from provkb.kb.store import Store
from provkb.kb.writer import BackgroundWriter

from . import step_logging
from .common import log, ratio, run_worker, stats

MLFLOW_BATCH_LIMIT = 1000


def _values(epochs: int, metrics: int) -> list[list[float]]:
    return [[1.0 / (e + 1) + k * 1e-3 for k in range(metrics)] for e in range(epochs)]


def provkb_log(
    store: Store, folder: Path, epochs: int, metrics: int, timeout: float = 600.0
) -> dict[str, Any]:
    """Seconds to log epochs x metrics values through the capture path, until committed."""
    run_id = uuid.uuid4().hex[:12]
    recorder = RunRecorder(
        Run(
            run_id,
            f"log-{run_id}",
            "bench-logging",
            "bench",
            "bench",
            "2026-01-01T00:00:00+00:00",
            epochs,
        )
    )
    ctx = RunContext(recorder.run)
    ctx.hyperparameters = [Hyperparameter("learning_rate", 0.001, Source.OPTIMIZER, tracked=True)]
    journal = Journal(folder / "journal", f"bench-{os.getpid()}-{run_id}")
    writer = BackgroundWriter(store, journal=journal)
    writer.submit(recorder.start(ctx))
    if not writer.flush(timeout):
        raise RuntimeError(f"the run's start was not written: {writer.stats.last_error}")
    keys = [f"m{k:03d}" for k in range(metrics)]
    values = _values(epochs, metrics)
    submitted = writer.stats.submitted
    t0 = time.perf_counter()
    for e in range(epochs):
        at = f"2026-01-01T00:{(e // 60) % 60:02d}:{e % 60:02d}+00:00"
        writer.submit(recorder.epoch(e + 1, at, at, 0.5, dict(zip(keys, values[e], strict=True))))
    submit_seconds = time.perf_counter() - t0
    flushed = writer.flush(timeout)
    seconds = time.perf_counter() - t0
    records = writer.stats.submitted - submitted
    ok = flushed and not writer.stats.dropped and not writer.stats.rejected
    writer.close(timeout)
    if not ok:
        raise RuntimeError(f"ProvKB did not write every record: {writer.stats}")
    return {"seconds": seconds, "submit_seconds": submit_seconds, "records": records}


def mlflow_log(
    tracking_uri: str, epochs: int, metrics: int, batch: bool, artifacts: str | None = None
) -> dict[str, Any]:
    """Seconds to log epochs x metrics values with MLflow, in a loop or in batches."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("provkb-bench-logging")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("provkb-bench-logging")
    )
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    keys = [f"m{k:03d}" for k in range(metrics)]
    values = _values(epochs, metrics)
    now = int(time.time() * 1000)
    t0 = time.perf_counter()
    if batch:
        pending: list[Any] = []
        for e in range(epochs):
            for key, value in zip(keys, values[e], strict=True):
                pending.append(Metric(key, value, now, e))
                if len(pending) == MLFLOW_BATCH_LIMIT:
                    client.log_batch(run_id, metrics=pending)
                    pending = []
        if pending:
            client.log_batch(run_id, metrics=pending)
    else:
        with mlflow.start_run(run_id=run_id):
            for e in range(epochs):
                for key, value in zip(keys, values[e], strict=True):
                    mlflow.log_metric(key, value, step=e)
    seconds = time.perf_counter() - t0
    with contextlib.suppress(Exception):
        client.set_terminated(run_id)
    return {"seconds": seconds}


def mlflow_available() -> bool:
    try:
        import mlflow  # noqa: F401
    except Exception:
        return False
    return True


def run(
    store: Store,
    folder: Path,
    epochs: int = 100,
    metrics: int = 100,
    repeats: int = 3,
    loop_points: int | None = None,
    steps: int | None = None,
    fit: step_logging.FitConfig | None = None,
    target: Any = None,
    fit_one_process: bool = False,
) -> dict[str, Any]:
    """Interleaved repeats of every variant; seconds and points per second.

    `loop_points` caps MLflow's one-call-per-point loop (it takes minutes on sqlite);
    its figures are then per point, scaled to the full count.
    """
    points = epochs * metrics
    folder.mkdir(parents=True, exist_ok=True)
    tracking = f"sqlite:///{folder / 'mlflow.db'}"
    artifacts = (folder / "mlflow-artifacts").as_uri()
    have_mlflow = mlflow_available()
    loop_epochs = epochs
    if loop_points is not None and loop_points < points:
        loop_epochs = max(1, loop_points // metrics)
    results: dict[str, list[float]] = {}
    extra: dict[str, Any] = {}
    # Untimed warm-up of both sides: the embedded server's JIT, MLflow's schema migrations.
    provkb_log(store, folder, 5, metrics)
    if have_mlflow:
        mlflow_log(tracking, 5, metrics, batch=True, artifacts=artifacts)
        mlflow_log(tracking, 1, metrics, batch=False, artifacts=artifacts)
    for rep in range(repeats):
        one = provkb_log(store, folder, epochs, metrics)
        results.setdefault("provkb_epochs", []).append(one["seconds"])
        extra["provkb_epochs_records"] = one["records"]
        one = provkb_log(store, folder, points, 1)
        results.setdefault("provkb_points", []).append(one["seconds"])
        extra["provkb_points_records"] = one["records"]
        if have_mlflow:
            one = mlflow_log(tracking, loop_epochs, metrics, batch=False)
            results.setdefault("mlflow_log_metric", []).append(
                one["seconds"] * epochs / loop_epochs
            )
            one = mlflow_log(tracking, epochs, metrics, batch=True)
            results.setdefault("mlflow_log_batch", []).append(one["seconds"])
        log(
            f"  logging rep {rep + 1}/{repeats}: "
            + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in results.items())
        )
    out: dict[str, Any] = {
        "points": points,
        "epochs": epochs,
        "metrics": metrics,
        "mlflow_loop_points_measured": loop_epochs * metrics if have_mlflow else None,
        **extra,
        "variants": {},
    }
    for name, secs in results.items():
        out["variants"][name] = {
            "seconds": stats(secs),
            "points_per_second": stats([points / s for s in secs]),
        }
    base = out["variants"].get("mlflow_log_batch")
    for entry in out["variants"].values():
        if base:
            entry["speedup_vs_log_batch"] = ratio(
                base["seconds"]["median"], entry["seconds"]["median"]
            )
    if steps:
        out["peers"] = step_logging.versions()
        out["steps_stored"] = step_logging.stored(store, folder / "steps", steps, repeats)
    if fit is not None and target is not None:
        if fit_one_process:
            out["step_fit"] = step_fit_one_process(target, folder / "step-fit", fit)
        else:
            out["step_fit"] = step_logging.fit(target, folder / "step-fit", fit)
    return out


# -- the quick mode's step fit: every variant in one process --------------------------
STEP_FIT_ONE_PROCESS_NOTE = (
    "_Quick mode: the step fit's variants of a repeat ran one after the other in one "
    "process (one TensorFlow import), not each in a fresh process as in the full run; "
    "a later variant trains in a process warmed by the earlier ones, so its ratio is a "
    "smoke test, not a measurement._"
)


def step_fit_one_process(target: Any, folder: Path, cfg: step_logging.FitConfig) -> dict[str, Any]:
    """`step_logging.fit`'s figures with each repeat's variants run in turn by one worker
    process (`python -m benchmarks.metric_logging`, calling `step_logging.train`)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = step_logging._fit_variants(cfg)  # noqa: SLF001 (the same variants as fit())
    samples: list[dict[str, Any]] = []
    for rep in range(cfg.repeats):
        configs = [step_logging.fit_config(v, rep, target, folder, cfg) for v in names]
        timeout = cfg.timeout * len(names)
        done = run_worker("benchmarks.metric_logging", configs, timeout, "step fit worker")
        for sample in done["samples"]:
            samples.append(sample)
            log(f"  step fit rep {rep + 1}/{cfg.repeats} {sample['variant']:13s}: "
                f"{sample['fit']:.2f}s (one process)")  # fmt: skip
    out = step_logging.summarize_fit(samples, cfg, names)
    out["one_process"] = True
    out["note"] = STEP_FIT_ONE_PROCESS_NOTE
    return out


def _step_fit_worker(configs: list[dict[str, Any]]) -> None:
    samples = [step_logging.train(config) for config in configs]
    print(json.dumps({"samples": samples}), flush=True)
    os._exit(0)  # skip TensorFlow's slow teardown; every variant flushed its own


if __name__ == "__main__":
    _step_fit_worker(json.loads(sys.argv[1]))
