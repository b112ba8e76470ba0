"""One training process of the capture-overhead and memory benchmarks.

    python -m benchmarks._train_worker '{"variant": "provkb", "store": "...", ...}'
    python -m benchmarks._train_worker '{"variants": ["none", "provkb"], ...}'  # in turn

Trains the MLP and then the small CNN on synthetic data (TensorFlow backend, CPU) with
no instrumentation (`none`), a `ProvenanceCallback` (`provkb`) or
`mlflow.keras.autolog(log_models=False)` on a sqlite tracking store (`mlflow`), and
prints one JSON line: the seconds of each `fit` (timed around `fit` only), the
process's peak RSS and its RSS before the first timed fit.

Before anything is timed every variant runs the same one-epoch bare fit of a tiny
model (TensorFlow's own first-use costs), and the instrumentation's store is made
ready (ProvKB: the background writer's store connected to the running server,
embedded ArcadeDB or Neo4j; MLflow: the tracking database created and the experiment
set). What the instrumentation does at its first fit (capturing the environment and script, the
first writes) stays in the first timed fit: that is what a training script pays.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="utf-8") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError, IndexError):
        return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _target(config: dict[str, Any]) -> Any:
    """The store this process writes to (`engines.Target`; a plain folder: embedded)."""
    from benchmarks.engines import as_target

    if config.get("target_object") is not None:  # in process: it may hold a password
        return config["target_object"]
    return as_target(config.get("target") or config["store"])


def _server_cpu_seconds(config: dict[str, Any]) -> float | None:
    """CPU seconds the store's server process (embedded or Neo4j) has used so far."""
    try:
        import psutil
    except ImportError:
        return None
    pid = _target(config).server_pid()
    if pid is None:
        return None
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def build(model_name: str, samples: int, seed: int) -> tuple[Any, Any, Any]:
    """A compiled model and synthetic data (same seed: same model, same data)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    if model_name == "mlp":
        x = rng.standard_normal((samples, 64)).astype("float32")
        y = (x[:, :10].argmax(axis=1)).astype("int32")
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dropout(0.1),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
    elif model_name == "cnn":
        x = rng.random((samples, 28, 28, 1), dtype=np.float32)
        y = (x[:, :10, 0, 0].argmax(axis=1)).astype("int32")
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Conv2D(8, 3, activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(16, 3, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
    else:  # the warm-up model
        x = rng.standard_normal((samples, 8)).astype("float32")
        y = (x[:, 0] > 0).astype("int32")
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model, x, y


def prepare(config: dict[str, Any]) -> Any:
    """Make the variant's store ready; returns what `callbacks()` needs."""
    variant = config["variant"]
    if variant == "provkb":
        from provkb.capture import sink

        writer = sink.writer_for(_target(config).capture_store())
        writer.store.connect()
        return writer
    if variant == "mlflow":
        import mlflow

        mlflow.set_tracking_uri(config["mlflow_uri"])
        name = "provkb-bench-capture"
        if mlflow.get_experiment_by_name(name) is None:  # artifacts beside the database
            mlflow.create_experiment(name, artifact_location=config["mlflow_artifacts"])
        mlflow.set_experiment(name)
        mlflow.keras.autolog(log_models=False, silent=True)
        return mlflow
    return None


def callbacks(config: dict[str, Any], model_name: str, rep: int) -> list[Any]:
    if config["variant"] != "provkb":
        return []
    from provkb import ProvenanceCallback

    return [
        ProvenanceCallback(
            experiment="bench-capture",
            run_name=f"{model_name}-{rep}",
            store=_target(config).capture_store(),
            person="bench",
        )
    ]


def train(config: dict[str, Any]) -> dict[str, Any]:
    """Warm up, prepare the variant, time each model's fit; the figures of this process."""
    t0 = time.perf_counter()
    import keras  # noqa: F401  (TensorFlow import time, not measured)

    out: dict[str, Any] = {
        "variant": config["variant"],
        "rep": config.get("rep", 0),
        "engine": _target(config).engine,
        "fits": {},
        "hook_seconds": {},  # ProvenanceCallback.hook_seconds of each fit
        "server_cpu_seconds": {},  # the store server's CPU time during each fit
    }
    out["import_seconds"] = time.perf_counter() - t0
    warm, wx, wy = build("warmup", 256, 0)
    warm.fit(wx, wy, epochs=1, batch_size=64, verbose=0)
    t1 = time.perf_counter()
    handle = prepare(config)
    out["prepare_seconds"] = time.perf_counter() - t1
    out["rss_before_mb"] = _rss_mb()
    try:
        for model_name in config["models"]:
            spec = config["spec"][model_name]
            model, x, y = build(model_name, spec["samples"], config.get("seed", 0))
            cbs = callbacks(config, model_name, config.get("rep", 0))
            capture = cbs[0] if cbs else None  # before fit: MLflow appends its own
            server_before = _server_cpu_seconds(config)
            start = time.perf_counter()
            model.fit(
                x,
                y,
                epochs=spec["epochs"],
                batch_size=spec["batch_size"],
                validation_split=0.2,
                callbacks=cbs,
                verbose=0,
            )
            out["fits"][model_name] = time.perf_counter() - start
            server_after = _server_cpu_seconds(config)
            if server_before is not None and server_after is not None:
                out["server_cpu_seconds"][model_name] = server_after - server_before
            if capture is not None:
                out["hook_seconds"][model_name] = capture.hook_seconds
    finally:
        if config["variant"] == "mlflow":
            handle.keras.autolog(disable=True)
    out["rss_after_mb"] = _rss_mb()
    out["peak_rss_mb"] = _peak_mb()
    if config["variant"] == "provkb":
        stats = handle.stats
        out["provkb_records_written"] = stats.written
        out["provkb_records_dropped"] = stats.dropped + stats.rejected
        out["provkb_last_error"] = stats.last_error
    return out


def train_many(config: dict[str, Any]) -> dict[str, Any]:
    """Every variant of `config["variants"]` in turn in this one process (the quick
    mode's capture benchmark: one TensorFlow import instead of one per variant); the
    later variants' fits run in a process warmed by the earlier ones."""
    samples = []
    for variant in config["variants"]:
        samples.append(train({**config, "variant": variant}))
        if variant == "provkb":
            from provkb.capture import sink

            sink.close_all()  # its records committed before the next variant trains
    return {"samples": samples}


def main(argv: list[str]) -> None:
    config = json.loads(argv[0])
    if "variants" in config:
        out = train_many(config)
    else:
        out = train(config)
        if out["variant"] == "provkb":
            from provkb.capture import sink

            sink.close_all()  # journal acknowledged and removed, as at interpreter exit
    print(json.dumps(out), flush=True)
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (TensorFlow's is slow); everything is flushed


if __name__ == "__main__":
    main(sys.argv[1:])
