"""Predict's capture overhead (issue 17): `model.predict` bare against
`model.predict(x, callbacks=[capture])`, which records a Prediction (capture/predictions.py:
the input described and fingerprinted at `on_predict_begin`, each batch's outputs
summarised, the Prediction sent to the background writer at `on_predict_end`).

One process (`python -m benchmarks.predict_overhead CONFIG`, a fresh one per engine)
trains the capture benchmark's MLP once with `ProvenanceCallback` (a predict is recorded
only for the model of a recorded run), then for each input size (rows x 64 features,
float32): one untimed predict of each variant (TensorFlow's tracing), then `repeats`
interleaved pairs (bare then callback, callback then bare, ...), each call timed
around `predict` alone. Beside every pair the input's description as
`on_predict_begin` makes it (`capture.datasets.describe`, the sha256 of its bytes) is
timed on its own: the share of the overhead spent fingerprinting. Overheads are paired
(callback minus bare of the same repeat). At the end the writer is flushed and the
store must hold every recorded Prediction (the `predictions` query).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .common import log, ratio, run_worker, stats, worker_main
from .engines import Target, as_target

ROOT = Path(__file__).resolve().parent.parent
FEATURES = 64  # the capture benchmark's MLP


@dataclass
class PredictConfig:
    """Input sizes, repeats and the predict's batch size."""

    rows: tuple[int, ...] = (1_000, 100_000)
    repeats: int = 9
    batch_size: int = 32  # Keras' default
    fit_samples: int = 2_000  # the recorded training the Predictions use the model of
    timeout: float = 900.0

    @classmethod
    def quick(cls) -> PredictConfig:
        return cls(rows=(1_000, 10_000), repeats=3, fit_samples=512, timeout=300.0)

    @classmethod
    def tiny(cls) -> PredictConfig:
        return cls(rows=(200, 2_000), repeats=2, fit_samples=256, timeout=300.0)


# -- the measurement (in the worker process, or here for smoke tests) -----------------
def measure(config: dict[str, Any]) -> dict[str, Any]:
    """Train once with capture, then interleaved bare / callback predicts per size."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    t0 = time.perf_counter()
    import numpy as np

    from provkb import ProvenanceCallback
    from provkb.capture import datasets, sink
    from provkb.queries import registry

    from . import _train_worker

    import_seconds = time.perf_counter() - t0
    target = config.get("target_object") or as_target(config["target"])
    cfg = PredictConfig(**{**config["cfg"], "rows": tuple(config["cfg"]["rows"])})
    store = target.capture_store()
    writer = sink.writer_for(store)
    writer.store.connect()
    model, x_fit, y_fit = _train_worker.build("mlp", cfg.fit_samples, 0)
    capture = ProvenanceCallback(
        experiment="bench-predict", run_name="predict", store=store, person="bench"
    )
    model.fit(x_fit, y_fit, epochs=1, batch_size=64, callbacks=[capture], verbose=0)
    rng = np.random.default_rng(1)
    sizes: dict[str, Any] = {}
    recorded = 0
    for rows in cfg.rows:
        x = rng.standard_normal((rows, FEATURES)).astype("float32")

        def bare(x: Any = x) -> float:
            start = time.perf_counter()
            model.predict(x, batch_size=cfg.batch_size, verbose=0)
            return time.perf_counter() - start

        def captured(x: Any = x) -> tuple[float, float]:
            hooks = capture.hook_seconds
            start = time.perf_counter()
            model.predict(x, batch_size=cfg.batch_size, verbose=0, callbacks=[capture])
            return time.perf_counter() - start, capture.hook_seconds - hooks

        bare()  # untimed: predict's tracing for this input size
        captured()
        recorded += 1
        samples: dict[str, list[float]] = {"bare": [], "callback": [], "hooks": [], "fp": []}
        for rep in range(cfg.repeats):
            order = ("bare", "callback") if rep % 2 == 0 else ("callback", "bare")
            for variant in order:
                if variant == "bare":
                    samples["bare"].append(bare())
                else:
                    seconds, hooks = captured()
                    samples["callback"].append(seconds)
                    samples["hooks"].append(hooks)
                    recorded += 1
            start = time.perf_counter()
            described = datasets.describe(x, salt=f"bench/{rows}/{rep}")
            samples["fp"].append(time.perf_counter() - start)
            assert described is not None and described.fingerprint
        sizes[str(rows)] = summarize_size(rows, samples)
    flushed = writer.flush(120)
    stored = registry.run(writer.store, "predictions", run=capture.run_id).rows
    out = {
        "engine": target.engine,
        "import_seconds": import_seconds,
        "sizes": sizes,
        "predictions_recorded": recorded,
        "predictions_stored": len(stored),
        "flushed": flushed,
        "records_dropped": writer.stats.dropped + writer.stats.rejected,
        "last_error": writer.stats.last_error,
    }
    if not flushed or len(stored) != recorded:
        raise RuntimeError(
            f"{len(stored)} of {recorded} recorded predictions stored "
            f"(flushed {flushed}, writer {writer.stats})"
        )
    # each used its input, fingerprinted, of one of the sizes predicted
    unlinked = [r for r in stored if not r.get("input") or r.get("samples") not in cfg.rows]
    if unlinked:
        raise RuntimeError(f"{len(unlinked)} stored predictions lack their fingerprinted input")
    return out


def summarize_size(rows: int, samples: dict[str, list[float]]) -> dict[str, Any]:
    """One input size: ms of each variant, paired overheads, fingerprinting's share."""
    ms = {k: [v * 1000 for v in vals] for k, vals in samples.items()}
    pairs = list(zip(ms["callback"], ms["bare"], strict=True))
    overhead = [c - b for c, b in pairs]
    ratios = [ratio(c, b) for c, b in pairs]
    over_median = statistics.median(overhead)
    fp_median = statistics.median(ms["fp"])
    return {
        "rows": rows,
        "bare_ms": stats(ms["bare"]),
        "callback_ms": stats(ms["callback"]),
        "overhead_ms": stats(overhead),
        "overhead_ratio": stats(ratios),
        "hooks_ms": stats(ms["hooks"]),
        "fingerprint_ms": stats(ms["fp"]),
        # of the median overhead; noise can make the overhead tiny or negative
        "fingerprint_share": fp_median / over_median if over_median > 0 else None,
    }


# -- orchestration --------------------------------------------------------------------
def worker_config(target: Target | Path, cfg: PredictConfig) -> dict[str, Any]:
    return {"target": as_target(target).to_json(), "cfg": asdict(cfg)}


def _spawn(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    return run_worker("benchmarks.predict_overhead", config, timeout, "predict worker")


def run(
    target: Target | Path, cfg: PredictConfig | None = None, in_process: bool = False
) -> dict[str, Any]:
    """Predict's overhead writing to `target` (an engine's store, or an embedded store
    folder), in a fresh process (`in_process`, smoke tests: in this one)."""
    cfg = cfg or PredictConfig()
    started = time.perf_counter()
    config = worker_config(target, cfg)
    if in_process:
        out = measure({**config, "target_object": as_target(target)})
    else:
        out = _spawn(config, cfg.timeout)
    for rows, entry in out["sizes"].items():
        log(
            f"  predict {int(rows):,} rows: bare {entry['bare_ms']['median']:.1f} ms, "
            f"overhead {entry['overhead_ms']['median']:+.1f} ms, "
            f"fingerprint {entry['fingerprint_ms']['median']:.2f} ms"
        )
    return {
        "config": asdict(cfg),
        **out,
        "seconds": time.perf_counter() - started,
        "note": (
            "One process per engine: the MLP trained once with the callback, then per "
            "input size an untimed predict of each variant and interleaved repeats "
            "(bare / callback, then callback / bare); paired differences."
        ),
    }


def main(argv: list[str]) -> None:
    worker_main(measure, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
