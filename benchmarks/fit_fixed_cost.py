"""Capture's fixed cost per fit in the training thread (issue 18 §3): what a short fit,
such as a study's trial of a few seconds, pays for `ProvenanceCallback` whatever its
length.

One process (`python -m benchmarks.fit_fixed_cost CONFIG`, a fresh one per engine)
connects to the store (so a server's start is not counted), trains one untimed bare fit
(TensorFlow's tracing), then `fits` interleaved pairs of short fits of the capture
benchmark's MLP: bare, then with a new `ProvenanceCallback` (as each trial of a study
has its own), or the other way round. For each captured fit it reports the time the
callback's hooks took in the training thread (`hook_seconds`) and its parts: the run's
start (`on_train_begin`: hyperparameters, model, datasets' fingerprints, environment),
the end (`on_train_end`, mostly the wait for the store to hold the run:
`end_wait_seconds`, at most `PROVKB_FINAL_WAIT`), and the epoch and batch hooks
between. The first captured fit of the process also pays one-time costs (the installed
packages, the script's git state); the later ones are what every further fit pays.
A third variant sets `final_wait=0` (`PROVKB_FINAL_WAIT=0`): `fit` returns without
waiting for the store, which gets the run from the background writer (the journal holds
it meanwhile); what a person trades for it is a run that may not be queryable the moment
`fit` returns.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from .common import log, run_worker, stats, worker_main
from .engines import Target, as_target

TARGET_MS = 20.0  # issue 18: the fixed cost per fit in the training thread under 20 ms
HOOKS = ("on_train_begin", "on_train_end")  # timed on their own; the rest is "between"
BARE, DEFAULT, NO_WAIT = "bare", "default", "final_wait=0"
VARIANTS = (BARE, DEFAULT, NO_WAIT)


@dataclass
class FixedCostConfig:
    """The short fits: pairs, samples (64 features), epochs, batch size."""

    fits: int = 8
    samples: int = 2_000
    epochs: int = 3
    batch_size: int = 64
    timeout: float = 600.0

    @classmethod
    def quick(cls) -> FixedCostConfig:
        return cls(fits=3, samples=1_000)


# -- the measurement (in the worker process, or here for smoke tests) -----------------
def _timed_hooks(callback_class: type, spent: dict[str, float]) -> None:
    """Wrap `HOOKS` of `callback_class` so each call adds its seconds to `spent`."""
    for name in HOOKS:
        original = getattr(callback_class, name)

        def timed(self: Any, *args: Any, _original: Any = original, _name: str = name) -> Any:
            started = time.perf_counter()
            try:
                return _original(self, *args)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - started

        setattr(callback_class, name, timed)


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """Interleaved bare and captured short fits; each captured fit's hook time, split."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from provkb import ProvenanceCallback
    from provkb.capture import sink
    from provkb.queries import registry

    from . import _train_worker

    target = config.get("target_object") or as_target(config["target"])
    cfg = FixedCostConfig(**config["cfg"])
    store = target.capture_store()
    writer = sink.writer_for(store)
    writer.store.connect()
    spent: dict[str, float] = {}
    callback_class = type(
        "TimedCallback", (ProvenanceCallback,), {"__module__": ProvenanceCallback.__module__}
    )
    _timed_hooks(callback_class, spent)

    def fit(variant: str, rep: int) -> dict[str, Any]:
        model, x, y = _train_worker.build("mlp", cfg.samples, rep)
        callbacks = []
        captured = variant != BARE
        if captured:
            spent.clear()
            callbacks = [
                callback_class(
                    experiment="bench-fixed-cost",
                    run_name=f"fixed-{variant}-{rep}",
                    store=store,
                    person="bench",
                    final_wait=0.0 if variant == NO_WAIT else None,
                )
            ]
        started = time.perf_counter()
        model.fit(
            x,
            y,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            validation_split=0.2,
            callbacks=callbacks,
            verbose=0,
        )
        seconds = time.perf_counter() - started
        if not captured:
            return {"fit_s": seconds}
        cb = callbacks[0]
        hooks = cb.hook_seconds
        begin, end = spent.get("on_train_begin", 0.0), spent.get("on_train_end", 0.0)
        return {
            "fit_s": seconds,
            "run": cb.run_id,
            "hooks_ms": hooks * 1000,
            "begin_ms": begin * 1000,
            "end_ms": end * 1000,
            "end_wait_ms": (cb.end_wait_seconds or 0.0) * 1000,
            "between_ms": max(0.0, hooks - begin - end) * 1000,
            "complete": cb.final_flush_complete,
        }

    fit(BARE, 0)  # untimed: TensorFlow's tracing
    fits: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for rep in range(cfg.fits):  # the first captured fit of the process: the default
        order = VARIANTS if rep % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            fits[variant].append(fit(variant, rep))
    flushed = writer.flush(120)
    runs = {row["runId"] for row in registry.run(writer.store, "runs", limit=1000).rows}
    missing = [f["run"] for v in VARIANTS[1:] for f in fits[v] if f["run"] not in runs]
    if not flushed or missing:
        raise RuntimeError(f"{len(missing)} captured fits not in the store (flushed {flushed})")
    out = summarize(fits[BARE], fits[DEFAULT])
    no_wait = summarize(fits[BARE], fits[NO_WAIT], first_is_later=True)
    return {"engine": target.engine, **out, "no_wait": no_wait}


def summarize(
    bare: list[dict[str, Any]], captured: list[dict[str, Any]], first_is_later: bool = False
) -> dict[str, Any]:
    """The first captured fit on its own, the later ones as stats (`first_is_later`: all
    of them, the process's first captured fit was another variant); paired overheads."""
    later = captured if first_is_later else (captured[1:] or captured)
    parts = ("hooks_ms", "begin_ms", "between_ms", "end_ms", "end_wait_ms")
    overhead = [(c["fit_s"] - b["fit_s"]) * 1000 for c, b in zip(captured, bare, strict=True)]
    return {
        "first": {k: captured[0][k] for k in (*parts, "fit_s")},
        "later": {k: stats([f[k] for f in later]) for k in parts},
        "bare_fit_s": stats([b["fit_s"] for b in bare]),
        "captured_fit_s": stats([c["fit_s"] for c in captured]),
        "overhead_ms": stats(overhead),
        "fits": len(captured),
        "complete": all(f["complete"] for f in captured),
    }


# -- orchestration --------------------------------------------------------------------
def worker_config(target: Target, cfg: FixedCostConfig) -> dict[str, Any]:
    return {"target": as_target(target).to_json(), "cfg": asdict(cfg)}


def run(
    target: Target, cfg: FixedCostConfig | None = None, in_process: bool = False
) -> dict[str, Any]:
    """The fixed cost writing to `target`, in a fresh process (`in_process`: this one)."""
    cfg = cfg or FixedCostConfig()
    started = time.perf_counter()
    config = worker_config(target, cfg)
    if in_process:
        out = measure({**config, "target_object": as_target(target)})
    else:
        out = run_worker("benchmarks.fit_fixed_cost", config, cfg.timeout, "fixed-cost worker")
    later = out["later"]
    log(
        f"  fixed cost per fit: first {out['first']['hooks_ms']:.0f} ms, later "
        f"{later['hooks_ms']['median']:.0f} ms (start {later['begin_ms']['median']:.0f}, "
        f"between {later['between_ms']['median']:.0f}, end {later['end_ms']['median']:.0f}); "
        f"final_wait=0: {out['no_wait']['later']['hooks_ms']['median']:.0f} ms"
    )
    return {"config": asdict(cfg), **out, "seconds": time.perf_counter() - started}


def main(argv: list[str]) -> None:
    worker_main(measure, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
