"""Capture overhead: the same Keras training bare, with ProvenanceCallback, with MLflow.

Every repeat runs the variants one after the other (none, provkb, mlflow; none,
provkb, mlflow; ...), each in a fresh Python process (`_train_worker`), so nothing
one variant patches, starts or leaves in memory reaches another, and slow drifts of a
shared machine hit all variants alike (the quick mode's `one_process`: the variants of a
repeat in turn in one process, one TensorFlow import). A process trains the MLP, then
the CNN; only `fit` is timed, inside the process. Ratios are paired: variant / bare of the same
repeat. The same processes give the peak-memory figures (`memory`).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import log, ratio, run_worker, stats
from .engines import Target, as_target

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("none", "provkb", "mlflow")
FRESH_NOTE = (
    "Each variant in a fresh process; fit timed inside it. The MLP is the first "
    "instrumented fit of its process (one-time costs of the instrumentation "
    "included), the CNN the second."
)
ONE_PROCESS_NOTE = (
    "Quick mode: the variants of a repeat ran one after the other in one process "
    "(none, provkb, mlflow; one TensorFlow import instead of one per variant), not each "
    "in a fresh process as in the full run: a later variant trains in a process warmed "
    "by the earlier ones, so these ratios are a smoke test, not a measurement; fit "
    "timed inside the process."
)


@dataclass
class CaptureConfig:
    """Sizes of the trainings and number of repeats."""

    repeats: int = 8
    mlp: dict[str, int] = field(
        default_factory=lambda: {"samples": 20_000, "epochs": 20, "batch_size": 64}
    )
    cnn: dict[str, int] = field(
        default_factory=lambda: {"samples": 6_000, "epochs": 10, "batch_size": 64}
    )
    timeout: float = 900.0
    # Every variant of a repeat in one process, one after the other (the quick mode:
    # one TensorFlow import instead of three; RESULTS.md says so). False: each variant
    # in a fresh process, as the figures need.
    one_process: bool = False

    @classmethod
    def quick(cls) -> CaptureConfig:
        return cls(
            repeats=1,  # once per engine: both engines' quick run stays < 5 min on CI
            mlp={"samples": 2_000, "epochs": 3, "batch_size": 64},
            cnn={"samples": 512, "epochs": 1, "batch_size": 64},
            one_process=True,
        )

    @classmethod
    def tiny(cls) -> CaptureConfig:
        return cls(
            repeats=1,
            mlp={"samples": 256, "epochs": 2, "batch_size": 64},
            cnn={"samples": 64, "epochs": 1, "batch_size": 32},
        )


def mlflow_available() -> bool:
    return importlib.util.find_spec("mlflow") is not None


def worker_config(
    variant: str, rep: int, cfg: CaptureConfig, target: Target | Path, mlflow_dir: Path
) -> dict[str, Any]:
    mlflow_uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    return {
        "variant": variant,
        "rep": rep,
        "target": as_target(target).to_json(),  # no password: children read the server's file
        "mlflow_uri": mlflow_uri,
        "mlflow_artifacts": (mlflow_dir / "artifacts").as_uri(),
        "models": ["mlp", "cnn"],
        "spec": {"mlp": cfg.mlp, "cnn": cfg.cnn},
        "seed": 0,
    }


def _spawn(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    return run_worker(
        "benchmarks._train_worker", config, timeout, f"training worker {config['variant']}"
    )


def variants() -> tuple[str, ...]:
    return VARIANTS if mlflow_available() else VARIANTS[:2]


def run(
    target: Target | Path,
    mlflow_dir: Path,
    cfg: CaptureConfig | None = None,
    in_process: bool = False,
) -> dict[str, Any]:
    """Interleaved repeats of every variant, ProvKB writing to `target` (an engine's
    store, or an embedded store folder); `in_process` (smoke tests) skips the
    subprocesses and trains in this process."""
    cfg = cfg or CaptureConfig()
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    samples: list[dict[str, Any]] = []
    started = time.perf_counter()
    for rep in range(cfg.repeats):
        if cfg.one_process and not in_process:
            config = worker_config("none", rep, cfg, target, mlflow_dir)
            config["variants"] = list(variants())
            rep_samples = _spawn(config, cfg.timeout * len(variants()))["samples"]
        else:
            rep_samples = None
        for i, variant in enumerate(variants()):
            config = worker_config(variant, rep, cfg, target, mlflow_dir)
            if rep_samples is not None:
                sample = rep_samples[i]
            elif in_process:
                from . import _train_worker

                sample = _train_worker.train({**config, "target_object": as_target(target)})
            else:
                sample = _spawn(config, cfg.timeout)
            samples.append(sample)
            fits = ", ".join(f"{m} {s:.2f}s" for m, s in sample["fits"].items())
            log(f"  capture rep {rep + 1}/{cfg.repeats} {variant:6s}: {fits}")
    return summarize(samples, cfg, time.perf_counter() - started)


def summarize(
    samples: list[dict[str, Any]], cfg: CaptureConfig, seconds: float = 0.0
) -> dict[str, Any]:
    """Per model: seconds per variant and paired ratios to the bare run."""
    by = {(s["variant"], s["rep"]): s for s in samples}
    names = sorted({v for v, _ in by}, key=VARIANTS.index)
    models: dict[str, Any] = {}
    for model in ("mlp", "cnn"):
        entry: dict[str, Any] = {}
        for variant in names:
            entry[variant] = stats([s["fits"][model] for s in samples if s["variant"] == variant])
        for variant in names:
            if variant == "none":
                continue
            paired = [
                ratio(by[(variant, rep)]["fits"][model], by[("none", rep)]["fits"][model])
                for rep in range(cfg.repeats)
                if (variant, rep) in by and ("none", rep) in by
            ]
            entry[f"ratio_{variant}"] = stats(paired)
        entry["server_cpu_seconds"] = {
            variant: stats(
                [
                    s["server_cpu_seconds"][model]
                    for s in samples
                    if s["variant"] == variant and model in s.get("server_cpu_seconds", {})
                ]
            )
            for variant in names
        }
        shares = [
            s["hook_seconds"][model] / s["fits"][model]
            for s in samples
            if s["variant"] == "provkb" and model in s.get("hook_seconds", {})
        ]
        entry["hook_share_provkb"] = stats(shares)
        models[model] = entry
    return {
        "config": asdict(cfg),
        "variants": names,
        "models": models,
        "samples": samples,
        "seconds": seconds,
        "engine": samples[0].get("engine") if samples else None,
        "note": ONE_PROCESS_NOTE if cfg.one_process else FRESH_NOTE,
    }
