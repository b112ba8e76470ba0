"""Per-step metrics (issue 18 §1, §4): ProvKB's step series against MLflow and W&B.

Two figures:

* `stored`: N steps x 1 metric, from the first value logged until it is stored.
  ProvKB: capture's own path (`capture.step_series.StepSeries` fed as the callback's
  batch hook feeds it, epochs of 1,000 steps with their Epoch records, the process's
  `BackgroundWriter` with its journal), until `flush()` returns (committed). MLflow:
  `MlflowClient.log_batch` of `Metric(key, value, timestamp, step)` in calls of 1,000
  (its limit) on a sqlite tracking store. W&B: `wandb.log({key: value}, step=i)` in
  offline mode (`WANDB_MODE=offline`), until `wandb.finish()` returns (the run's
  `.wandb` file written). Runs are created before timing on every side.
* `fit`: one Keras fit of S steps logging 5 metrics every step, in a fresh process per
  variant (interleaved repeats): bare; `ProvenanceCallback` without and with
  `log_every_n_steps=1`; `mlflow.keras.autolog(log_every_n_steps=1)`; W&B offline
  with `WandbMetricsLogger(log_freq=1)`. Only `fit` is timed (W&B's `finish` after
  it is reported beside); ratios are paired with the bare fit of the same repeat.

    python -m benchmarks.step_logging '{"variant": "provkb", ...}'   # one fit (worker)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import log, ratio, run_worker, stats, version

ROOT = Path(__file__).resolve().parent.parent
STEPS_PER_EPOCH = 1_000  # `stored`: ProvKB's steps come in epochs of this many
FIT_VARIANTS = ("none", "provkb_epochs", "provkb", "mlflow", "wandb")
METRIC_KEY = "m000"


def available(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def versions() -> dict[str, str | None]:
    """The peers' versions that ran (for RESULTS.md)."""
    return {p: version(p) for p in ("mlflow", "wandb", "keras")}


def _value(i: int) -> float:
    return 1.0 / (i + 1)


# -- stored: N steps x 1 metric --------------------------------------------------------
def provkb_steps(store: Any, folder: Path, steps: int, timeout: float = 600.0) -> dict[str, Any]:
    """Seconds to store `steps` values of one metric through capture's step series."""
    from provkb.capture.facts import Run, RunContext
    from provkb.capture.recorder import RunRecorder
    from provkb.capture.step_series import StepSeries
    from provkb.kb.journal import Journal
    from provkb.kb.writer import BackgroundWriter

    run_id = uuid.uuid4().hex[:12]
    epochs = max(1, -(-steps // STEPS_PER_EPOCH))
    recorder = RunRecorder(
        Run(run_id, run_id, "bench-steps", "bench", "bench", "2026-01-01T00:00:00+00:00", epochs)
    )
    writer = BackgroundWriter(store, journal=Journal(folder / "journal", f"steps-{run_id}"))
    writer.submit(recorder.start(RunContext(recorder.run)))
    if not writer.flush(timeout):
        raise RuntimeError(f"the run's start was not written: {writer.stats.last_error}")
    series = StepSeries(run_id, 1, writer.submit, STEPS_PER_EPOCH).start()
    at = "2026-01-01T00:00:00+00:00"
    t0 = time.perf_counter()
    step = 0
    for epoch in range(1, epochs + 1):
        series.begin_epoch(epoch)
        for batch in range(min(STEPS_PER_EPOCH, steps - step)):
            series.record(batch, {METRIC_KEY: _value(step)})
            step += 1
        writer.submit(recorder.epoch(epoch, at, at, 0.5, {METRIC_KEY: _value(step - 1)}))
        series.end_epoch(epoch)
    closed = series.close(timeout)
    flushed = writer.flush(timeout)
    seconds = time.perf_counter() - t0
    ok = closed and flushed and not writer.stats.dropped and not writer.stats.rejected
    writer.close(timeout)
    if not ok or series.points != steps:
        raise RuntimeError(f"ProvKB did not store every step: {series.points}, {writer.stats}")
    return {"seconds": seconds, "parts": series.parts}


def mlflow_steps(tracking_uri: str, steps: int) -> dict[str, Any]:
    """Seconds to log `steps` values of one metric with `log_batch` (1,000 a call)."""
    from .metric_logging import mlflow_log

    return mlflow_log(tracking_uri, steps, 1, batch=True)


def _wandb_env(folder: Path) -> None:
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    os.environ["WANDB_DIR"] = str(folder)
    os.environ.setdefault("WANDB_CONSOLE", "off")
    folder.mkdir(parents=True, exist_ok=True)


def wandb_steps(folder: Path, steps: int) -> dict[str, Any]:
    """Seconds to log `steps` values of one metric with `wandb.log` offline, to `finish`."""
    import wandb

    _wandb_env(folder)
    run = wandb.init(project="provkb-bench-steps", mode="offline", dir=str(folder))
    t0 = time.perf_counter()
    for i in range(steps):
        run.log({METRIC_KEY: _value(i)}, step=i)
    logged = time.perf_counter() - t0
    run.finish()
    return {"seconds": time.perf_counter() - t0, "log_seconds": logged}


def stored(
    store: Any, folder: Path, steps: int, repeats: int, peers: tuple[str, ...] = ("mlflow", "wandb")
) -> dict[str, Any]:
    """Interleaved repeats of ProvKB and every installed peer storing `steps` x 1 metric."""
    folder.mkdir(parents=True, exist_ok=True)
    tracking = f"sqlite:///{folder / 'mlflow-steps.db'}"
    peers = {p: p in peers and available(p) for p in ("mlflow", "wandb")}
    provkb_steps(store, folder, 100)  # untimed warm-up of every side
    if peers["mlflow"]:
        mlflow_steps(tracking, 100)
    if peers["wandb"]:
        wandb_steps(folder / "wandb", 100)
    results: dict[str, list[float]] = {}
    extra: dict[str, Any] = {}
    for rep in range(repeats):
        one = provkb_steps(store, folder, steps)
        results.setdefault("provkb_steps", []).append(one["seconds"])
        extra["provkb_parts"] = one["parts"]
        if peers["mlflow"]:
            results.setdefault("mlflow_log_batch", []).append(
                mlflow_steps(tracking, steps)["seconds"]
            )
        if peers["wandb"]:
            one = wandb_steps(folder / "wandb", steps)
            results.setdefault("wandb_offline", []).append(one["seconds"])
            extra.setdefault("wandb_log_seconds", []).append(one["log_seconds"])
        log(
            f"  steps rep {rep + 1}/{repeats}: "
            + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in results.items())
        )
    out: dict[str, Any] = {"steps": steps, "metrics": 1, **extra, "variants": {}}
    for name, secs in results.items():
        out["variants"][name] = {
            "seconds": stats(secs),
            "points_per_second": stats([steps / s for s in secs]),
        }
    mine = out["variants"]["provkb_steps"]["seconds"]["median"]
    for entry in out["variants"].values():
        entry["provkb_speedup"] = ratio(entry["seconds"]["median"], mine)
    return out


# -- fit: S steps x 5 metrics in one Keras fit -----------------------------------------
@dataclass
class FitConfig:
    """The fit of the per-step overhead figure: steps = epochs x steps_per_epoch."""

    repeats: int = 3
    epochs: int = 10
    steps_per_epoch: int = 10_000
    batch_size: int = 8
    features: int = 16
    timeout: float = 1800.0
    variants: tuple[str, ...] = field(default_factory=lambda: FIT_VARIANTS)

    @classmethod
    def quick(cls) -> FitConfig:
        # the CI smoke: ProvKB beside no logging and beside MLflow, each once
        return cls(
            repeats=1,
            epochs=1,
            steps_per_epoch=300,
            timeout=300.0,
            variants=("none", "provkb", "mlflow"),
        )

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def _fit_variants(cfg: FitConfig) -> list[str]:
    need = {"mlflow": "mlflow", "wandb": "wandb"}
    return [v for v in cfg.variants if v not in need or available(need[v])]


def fit_config(variant: str, rep: int, target: Any, folder: Path, cfg: FitConfig) -> dict:
    """What a fit worker is told: its variant and repeat, where to write, the sizes."""
    from .engines import as_target

    return {
        "variant": variant,
        "rep": rep,
        "target": as_target(target).to_json(),
        "mlflow_uri": f"sqlite:///{folder / 'mlflow-fit.db'}",
        "mlflow_artifacts": (folder / "mlflow-artifacts").as_uri(),
        "wandb_dir": str(folder / "wandb"),
        "spec": asdict(cfg) | {"variants": list(cfg.variants)},
    }


def fit(target: Any, folder: Path, cfg: FitConfig | None = None) -> dict[str, Any]:
    """Interleaved repeats of every fit variant, each in a fresh process."""
    cfg = cfg or FitConfig()
    folder.mkdir(parents=True, exist_ok=True)
    names = _fit_variants(cfg)
    samples: list[dict[str, Any]] = []
    for rep in range(cfg.repeats):
        for variant in names:
            sample = _spawn(fit_config(variant, rep, target, folder, cfg), cfg.timeout)
            samples.append(sample)
            log(f"  step fit rep {rep + 1}/{cfg.repeats} {variant:13s}: {sample['fit']:.2f}s")
    return summarize_fit(samples, cfg, names)


def summarize_fit(
    samples: list[dict[str, Any]], cfg: FitConfig, names: list[str]
) -> dict[str, Any]:
    by = {(s["variant"], s["rep"]): s for s in samples}
    variants: dict[str, Any] = {}
    for variant in names:
        mine = [s for s in samples if s["variant"] == variant]
        entry: dict[str, Any] = {"fit_seconds": stats([s["fit"] for s in mine])}
        if variant != "none":
            entry["ratio"] = stats(
                [
                    ratio(by[(variant, r)]["fit"], by[("none", r)]["fit"])
                    for r in range(cfg.repeats)
                    if (variant, r) in by and ("none", r) in by
                ]
            )
        hooks = [s["hook_seconds"] / s["fit"] for s in mine if s.get("hook_seconds") is not None]
        if hooks:
            entry["hook_share"] = stats(hooks)
        after = [s["after_seconds"] for s in mine if s.get("after_seconds") is not None]
        if after:
            entry["after_fit_seconds"] = stats(after)
        entry["peak_rss_mb"] = stats([s["peak_rss_mb"] for s in mine])
        points = [s.get("series_points") for s in mine if s.get("series_points") is not None]
        if points:
            entry["series_points"] = points[-1]
        variants[variant] = entry
    return {
        "config": asdict(cfg) | {"variants": names},
        "steps": cfg.steps,
        "metrics": 5,
        "variants": variants,
        "samples": samples,
    }


def _spawn(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    return run_worker(
        "benchmarks.step_logging", config, timeout, f"step fit worker {config['variant']}"
    )


# -- the worker ------------------------------------------------------------------------
def _build(spec: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A small classifier logging 5 metrics (loss, accuracy, top3, top5, xent)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    samples = spec["steps_per_epoch"] * spec["batch_size"]
    x = rng.standard_normal((samples, spec["features"])).astype("float32")
    y = x[:, :10].argmax(axis=1).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((spec["features"],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=[
            "accuracy",
            keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
            keras.metrics.SparseCategoricalCrossentropy(name="xent"),
        ],
    )
    return model, x, y


def _callbacks(config: dict[str, Any]) -> tuple[list[Any], Any]:
    variant = config["variant"]
    if variant in ("provkb", "provkb_epochs"):
        from benchmarks.engines import as_target
        from provkb import ProvenanceCallback
        from provkb.capture import sink

        store = as_target(config["target"]).capture_store()
        sink.writer_for(store).store.connect()
        capture = ProvenanceCallback(
            experiment="bench-steps",
            run_name=f"{variant}-{config['rep']}",
            store=store,
            person="bench",
            log_every_n_steps=1 if variant == "provkb" else None,
        )
        return [capture], capture
    if variant == "mlflow":
        import mlflow

        mlflow.set_tracking_uri(config["mlflow_uri"])
        name = "provkb-bench-steps"
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=config["mlflow_artifacts"])
        mlflow.set_experiment(name)
        mlflow.keras.autolog(log_every_n_steps=1, log_models=False, log_datasets=False, silent=True)
        return [], mlflow
    if variant == "wandb":
        import wandb
        from wandb.integration.keras import WandbMetricsLogger

        _wandb_env(Path(config["wandb_dir"]))
        run = wandb.init(project="provkb-bench-steps", mode="offline", dir=config["wandb_dir"])
        return [WandbMetricsLogger(log_freq=1)], run
    return [], None


def train(config: dict[str, Any]) -> dict[str, Any]:
    """Warm up, prepare the variant, time the fit; the figures of this process."""
    import resource

    import keras

    spec = config["spec"]
    warm, wx, wy = _build({**spec, "steps_per_epoch": 4})
    warm.fit(wx, wy, epochs=1, batch_size=spec["batch_size"], verbose=0)
    model, x, y = _build(spec)
    callbacks, handle = _callbacks(config)
    t0 = time.perf_counter()
    model.fit(x, y, epochs=spec["epochs"], batch_size=spec["batch_size"], callbacks=callbacks,
              verbose=0)  # fmt: skip
    out: dict[str, Any] = {"variant": config["variant"], "rep": config["rep"]}
    out["fit"] = time.perf_counter() - t0
    out["keras"] = keras.__version__
    t1 = time.perf_counter()
    if config["variant"].startswith("provkb"):
        out["hook_seconds"] = handle.hook_seconds
        handle.writer.flush(300)
        from provkb.capture import sink

        sink.close_all()
    elif config["variant"] == "wandb":
        handle.finish()
    elif config["variant"] == "mlflow":
        with contextlib.suppress(Exception):
            handle.flush_async_logging()
        handle.keras.autolog(disable=True)
    out["after_seconds"] = time.perf_counter() - t1
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str]) -> None:
    out = train(json.loads(argv[0]))
    print(json.dumps(out), flush=True)
    os._exit(0)  # skip TensorFlow's slow teardown; everything is flushed


if __name__ == "__main__":
    main(sys.argv[1:])


# -- the report (benchmarks/report.py's metric-logging section and targets) ------------
MIN_SPEEDUP_VS_LOG_BATCH = 5.0  # issue 18: >= 5x faster than MLflow's log_batch
MAX_FIT_OVERHEAD = 0.01  # issue 18: a per-step fit at most 1 % slower than bare
FIT_LABELS = {
    "provkb_epochs": "ProvKB, epochs only",
    "provkb": "ProvKB, `log_every_n_steps=1`",
    "mlflow": "MLflow `keras.autolog(log_every_n_steps=1)`",
    "wandb": "W&B offline `WandbMetricsLogger(log_freq=1)`",
}


def _f(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def report_rows(ml: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """Rows for the logging table (steps stored) and bullets (the per-step fit)."""
    rows: list[list[str]] = []
    st = ml.get("steps_stored")
    if st:
        base = st["variants"].get("mlflow_log_batch")
        labels = {
            "provkb_steps": f"ProvKB step series, {st['steps']:,} steps x 1 metric "
            f"({st.get('provkb_parts')} MetricSeries)",
            "mlflow_log_batch": f"MLflow `log_batch`, {st['steps']:,} steps x 1 metric",
            "wandb_offline": f"W&B offline `wandb.log`, {st['steps']:,} steps x 1 metric",
        }
        for name, entry in st["variants"].items():
            s = entry["seconds"]
            speed = ratio(base["seconds"]["median"], s["median"]) if base else None
            rows.append(
                [
                    labels.get(name, name),
                    *(_f(s[k], 3) for k in ("min", "median", "max")),
                    _f(entry["points_per_second"]["median"], 0),
                    "n/a" if speed is None else f"{speed:.2f}x",
                ]
            )
    bullets: list[str] = []
    fit = ml.get("step_fit")
    if fit:
        bare = fit["variants"].get("none", {}).get("fit_seconds", {}).get("median")
        bullets.append(
            f"- per-step fit, {fit['steps']:,} steps x {fit['metrics']} metrics in one "
            f"`fit` (fresh process per variant, {fit['config']['repeats']} interleaved "
            f"repeats): bare {_f(bare)} s"
        )
        for name, entry in fit["variants"].items():
            if name == "none":
                continue
            r = (entry.get("ratio") or {}).get("median")
            text = f"- {FIT_LABELS.get(name, name)}: fit {_f(entry['fit_seconds']['median'])} s"
            text += "" if r is None else f", {(r - 1) * 100:+.1f}% vs bare (median, paired)"
            hooks = (entry.get("hook_share") or {}).get("median")
            if hooks is not None:
                text += f", hooks {hooks * 100:.2f}% of the fit"
            after = (entry.get("after_fit_seconds") or {}).get("median")
            if after is not None:
                text += f", {_f(after)} s after fit until stored/finished"
            bullets.append(text)
    peers = ml.get("peers")
    if peers:
        bullets.append(
            "- versions: " + ", ".join(f"{k} {v}" for k, v in peers.items() if v is not None)
        )
    return rows, bullets


def targets(ml: dict[str, Any]) -> dict[str, Any]:
    """Met / missed of issue 18's per-step targets, from one engine's figures."""
    out: dict[str, Any] = {}
    st = ml.get("steps_stored")
    if st:
        variants = st["variants"]
        mine = variants["provkb_steps"]["seconds"]["median"]
        batch = (variants.get("mlflow_log_batch") or {}).get("seconds", {}).get("median")
        wandb = (variants.get("wandb_offline") or {}).get("seconds", {}).get("median")
        speed = ratio(batch, mine)
        out["step_logging"] = {
            "measured": f"ProvKB {_f(mine, 3)} s, log_batch {_f(batch, 3)} s "
            f"({'n/a' if speed is None else f'{speed:.1f}x'}), W&B offline {_f(wandb, 3)} s "
            f"({st['steps']:,} steps)",
            "met": None
            if speed is None
            else speed >= MIN_SPEEDUP_VS_LOG_BATCH and (wandb is None or mine < wandb),
        }
    fit = ml.get("step_fit")
    if fit and fit.get("one_process"):  # quick mode: warmed later variants, no verdict
        out["step_fit"] = {"measured": "not measured (quick mode)", "met": None}
    elif fit and "provkb" in fit["variants"]:
        r = (fit["variants"]["provkb"].get("ratio") or {}).get("median")
        out["step_fit"] = {
            "measured": "n/a"
            if r is None
            else f"{(r - 1) * 100:+.1f}% ({fit['steps']:,} steps x 5 metrics)",
            "met": None if r is None else r - 1 <= MAX_FIT_OVERHEAD,
        }
    return out
