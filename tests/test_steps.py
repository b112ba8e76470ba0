"""Per-step metrics (issue 18 §1): `ProvenanceCallback(log_every_n_steps=N)` stores the
batch logs Keras had as step series (`MetricSeries`: typed arrays per epoch and
metric), `provkb query steps` answers them downsampled, and they export and import
losslessly. On both engines, with real Keras training."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from provkb import ontology as o
from provkb.capture import step_series
from provkb.capture.autolog import autolog
from provkb.capture.callback import ProvenanceCallback
from provkb.capture.facts import Run, RunContext
from provkb.capture.recorder import RunRecorder
from provkb.kb.export import build_document, export
from provkb.kb.provimport import import_file
from provkb.kb.records import GraphBatch
from provkb.kb.store import Store
from provkb.queries import app as reads
from provkb.queries import registry
from tests.helpers import rows, unique
from tests.test_ui_app import app_env, open_page  # noqa: F401  (the app fixture)

SERIES, ENTITY = o.METRIC_SERIES.label, o.ENTITY.label
GEN, EPOCH = o.WAS_GENERATED_BY.rel_type, o.EPOCH.label
P = o.Prop

SERIES_OF_RUN = (
    f"MATCH (s:{ENTITY} {{{P.RUN_ID}: $run}}) WHERE s:{SERIES} "
    f"OPTIONAL MATCH (s)-[:{GEN}]->(e:{EPOCH}) "
    f"RETURN properties(s) AS props, e.{P.EPOCH} AS generatedBy "
    f"ORDER BY s.{P.METRIC}, s.{P.FIRST_STEP}"
)

N_TRAIN, BATCH, EPOCHS = 240, 32, 3  # 8 steps per epoch


class BatchLogs(keras.callbacks.Callback):
    """What Keras' batch logs said at each training step (1-based over the fit)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: dict[int, dict[str, float]] = {}
        self._first = 0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._first = len(self.steps)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.steps[self._first + batch + 1] = dict(logs or {})


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data[:300] / 16.0).astype("float32"), data.target[:300]


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _fit(digits: Any, callbacks: list[Any]) -> None:
    """Train 3 epochs of 8 steps, then wait until the store has everything."""
    x, y = digits
    _model().fit(
        x[:N_TRAIN],
        y[:N_TRAIN],
        validation_data=(x[N_TRAIN:], y[N_TRAIN:]),
        batch_size=BATCH,
        epochs=EPOCHS,
        callbacks=callbacks,
        verbose=0,
    )
    capture = next(c for c in callbacks if isinstance(c, ProvenanceCallback))
    assert capture.writer.flush(180)


def _series(store: Store, run_id: str) -> dict[str, list[tuple[int, float, int]]]:
    """{metric: [(step, value, epoch of its generation)]} of a run's step series."""
    out: dict[str, list[tuple[int, float, int]]] = {}
    for row in rows(store, SERIES_OF_RUN, run=run_id):
        props = row["props"]
        assert props[P.POINTS] == len(props[P.STEPS]) == len(props[P.VALUES])
        assert props[P.FIRST_STEP] == props[P.STEPS][0]
        assert props[P.LAST_STEP] == props[P.STEPS][-1]
        assert row["generatedBy"] == props[P.EPOCH]  # the epoch activity generated it
        points = zip(props[P.STEPS], props[P.VALUES], strict=True)
        out.setdefault(props[P.METRIC], []).extend((s, v, props[P.EPOCH]) for s, v in points)
    return out


@pytest.mark.slow
def test_a_fit_stores_exactly_the_steps_keras_ran(store: Store, digits: Any) -> None:
    seen = BatchLogs()
    capture = ProvenanceCallback(
        experiment=unique("steps"), store=store, person="ada", log_every_n_steps=1
    )
    _fit(digits, [seen, capture])
    steps_per_epoch = math.ceil(N_TRAIN / BATCH)
    assert sorted(seen.steps) == list(range(1, EPOCHS * steps_per_epoch + 1))
    series = _series(store, capture.run_id)
    assert set(series) == set(seen.steps[1]) == {"loss", "accuracy"}
    for metric, points in series.items():
        assert [s for s, _, _ in points] == sorted(seen.steps)
        assert [v for _, v, _ in points] == [seen.steps[s][metric] for s, _, _ in points]
        assert [e for _, _, e in points] == [(s - 1) // steps_per_epoch + 1 for s, _, _ in points]
    answer = registry.run(store, "steps", run=capture.run_id, metric="loss").rows
    assert [(r["step"], r["value"], r["points"]) for r in answer] == [
        (s, seen.steps[s]["loss"], 1) for s in sorted(seen.steps)
    ]
    assert all(r["min"] == r["max"] == r["value"] for r in answer)


@pytest.mark.slow
def test_every_nth_step_and_batch_steering_together(store: Store, digits: Any) -> None:
    seen = BatchLogs()
    capture = ProvenanceCallback(
        experiment=unique("steps"),
        store=store,
        person="ada",
        log_every_n_steps=5,
        steer_every_n_batches=3,
    )
    assert capture.async_safe is False  # a batch end that steers stays on the training thread
    _fit(digits, [capture, seen])
    series = _series(store, capture.run_id)
    logged = [s for s in sorted(seen.steps) if s % 5 == 0]
    assert [s for s, _, _ in series["accuracy"]] == logged == [5, 10, 15, 20]
    assert [v for _, v, _ in series["accuracy"]] == [seen.steps[s]["accuracy"] for s in logged]
    one_epoch = registry.run(store, "steps", run=capture.run_id, metric="loss", epoch=2).rows
    assert [r["step"] for r in one_epoch] == [10, 15]


def test_bad_intervals_are_refused_with_their_name() -> None:
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="log_every_n_steps"):
            ProvenanceCallback(log_every_n_steps=bad)
        with pytest.raises(ValueError, match="log_every_n_steps"):
            autolog(log_every_n_steps=bad)
    assert ProvenanceCallback().log_every_n_steps is None  # default: epochs only
    assert ProvenanceCallback(log_every_n_steps=50).async_safe is True


# -- series built without Keras: downsampling and export -------------------------------
def _run(store: Store, run_id: str, epochs: int = 1) -> RunRecorder:
    recorder = RunRecorder(
        Run(run_id, run_id, unique("steps"), "steps", "ada", "2026-01-01T00:00:00+00:00", epochs)
    )
    batch = recorder.start(RunContext(recorder.run))
    for n in range(1, epochs + 1):
        batch.extend(recorder.epoch(n, "2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00",
                                    60.0, {"loss": 1.0 / n}))  # fmt: skip
    store.write(batch)
    return recorder


def _write_series(store: Store, run_id: str, epochs: list[list[float]]) -> None:
    """Values of one metric `m`, one list per epoch, through `StepSeries`."""
    batches: list[GraphBatch] = []
    series = step_series.StepSeries(run_id, 1, batches.append, steps_per_epoch=None)
    for n, values in enumerate(epochs, start=1):
        series.begin_epoch(n)
        for b, value in enumerate(values):
            series.record(b, {"m": value, "note": "text is no metric"})
        series.end_epoch(n)
    assert series.close()
    store.write(GraphBatch.concat(batches))


def test_downsampling_keeps_first_last_and_bounds(store: Store) -> None:
    run_id = unique("ds")[-12:]
    _run(store, run_id, epochs=2)
    rng = np.random.default_rng(1)
    first = [float(v) for v in rng.normal(size=12_000)]  # two parts (MAX_PART_POINTS)
    second = [float(v) for v in rng.normal(size=3_000)]
    first[1234], second[17] = 9.5, -8.25  # the bounds
    second[100], second[200] = float("nan"), float("inf")  # counted, not in statistics
    _write_series(store, run_id, [first, second])
    values = first + second
    parts = rows(
        store, f"MATCH (s:{ENTITY} {{{P.RUN_ID}: $run}}) WHERE s:{SERIES} RETURN count(s) AS n",
        run=run_id,
    )  # fmt: skip
    assert parts == [{"n": 3}]
    answer = registry.run(store, "steps", run=run_id, metric="m", max_points=50).rows
    assert 3 <= len(answer) <= 50
    assert (answer[0]["step"], answer[0]["value"], answer[0]["points"]) == (1, values[0], 1)
    assert (answer[-1]["step"], answer[-1]["value"]) == (len(values), values[-1])
    assert sum(r["points"] for r in answer) == len(values)
    assert max(r["max"] for r in answer) == 9.5 and min(r["min"] for r in answer) == -8.25
    for before, after in zip(answer, answer[1:], strict=False):
        assert before["lastStep"] < after["step"]  # ordered buckets, no overlap
    inner = answer[1:-1]
    assert all(r["min"] <= r["value"] <= r["max"] for r in inner)
    assert {r["epoch"] for r in answer} == {1, 2}
    everything = registry.run(store, "steps", run=run_id, metric="m", max_points=20_000).rows
    assert len(everything) == len(values)
    assert math.isnan(everything[12_000 + 100]["value"])
    assert everything[12_000 + 200]["value"] == math.inf
    assert registry.run(store, "steps", run=run_id, metric="nosuch").rows == []
    assert reads.run_step_metrics(store, run_id) == ["m"]  # the Run monitor's reads
    assert reads.run_steps(store, run_id, "m", max_points=50) == answer
    with pytest.raises(Exception, match="max_points"):
        registry.run(store, "steps", run=run_id, metric="m", max_points=2)


@pytest.mark.parametrize("fmt", ["provjson", "turtle"])
def test_step_series_export_and_import_losslessly(
    clean_store: Store, tmp_path: Path, fmt: str
) -> None:
    run_id = "5eed5e7e5000"
    _run(clean_store, run_id, epochs=1)
    values = [0.5, 1.0, 2.0, float("nan"), float("-inf"), 1e-300, 3.141592653589793]
    _write_series(clean_store, run_id, [values])
    before = rows(clean_store, SERIES_OF_RUN, run=run_id)
    doc = build_document(clean_store, run_id=run_id)
    (entity,) = [r for r in doc.get_records() if str(r.identifier).endswith("/steps/m/1")]
    types = {str(t) for t in entity.get_asserted_types()}
    assert f"{o.PROVKB_PREFIX}:{SERIES}" in types
    (steps,) = entity.get_attribute(f"{o.PROVKB_PREFIX}:{P.STEPS}")
    assert str(steps.datatype) == f"{o.PROVKB_PREFIX}:json"  # a typed array literal
    path = tmp_path / f"run.{'json' if fmt == 'provjson' else 'ttl'}"
    export(clean_store, fmt, path, run_id=run_id)
    clean_store.clear()
    import_file(clean_store, path)
    after = rows(clean_store, SERIES_OF_RUN, run=run_id)
    assert len(after) == len(before) == 1
    got, want = after[0]["props"], before[0]["props"]
    assert got[P.STEPS] == want[P.STEPS] == list(range(1, len(values) + 1))
    assert all(type(s) is int for s in got[P.STEPS])
    assert all(type(v) is float for v in got[P.VALUES])
    assert _same(got[P.VALUES], values) and after[0]["generatedBy"] == 1
    assert {k: v for k, v in got.items() if k != P.VALUES} == {
        k: v for k, v in want.items() if k != P.VALUES
    }


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


# -- the benchmark's per-step figures (benchmarks/step_logging.py) ---------------------
def test_step_logging_benchmark_figures_and_report(store: Store, tmp_path: Path) -> None:
    """A tiny `stored` run (ProvKB's side: the peers' start-up takes minutes on a busy
    machine) and the report's rows and targets from it and from a per-step fit's
    samples. No timing is asserted."""
    from benchmarks import step_logging

    out = step_logging.stored(store, tmp_path, steps=1_500, repeats=1, peers=())
    assert out["provkb_parts"] >= 2  # epochs of 1,000 steps: a MetricSeries each at least
    names = {"provkb_steps"}
    assert set(out["variants"]) == names
    cfg = step_logging.FitConfig(repeats=1, epochs=1, steps_per_epoch=10)
    samples = [
        {"variant": v, "rep": 0, "fit": f, "peak_rss_mb": 100.0}
        for v, f in (("none", 1.0), ("provkb", 1.005), ("wandb", 1.5))
    ]
    samples[1] |= {"hook_seconds": 0.001, "after_seconds": 0.2}
    fit = step_logging.summarize_fit(samples, cfg, ["none", "provkb", "wandb"])
    ml = {"steps_stored": out, "step_fit": fit, "peers": step_logging.versions()}
    rows, bullets = step_logging.report_rows(ml)
    assert len(rows) == len(names) and all(len(r) == 6 for r in rows)
    assert any("+0.5% vs bare" in b and "hooks 0.10%" in b for b in bullets)
    met = step_logging.targets(ml)
    assert met["step_fit"]["met"] is True and "+0.5%" in met["step_fit"]["measured"]
    assert met["step_logging"]["met"] in (True, False, None)


# -- the Run monitor's x axis "epochs | steps" -----------------------------------------
@pytest.mark.usefixtures("app_env")
def test_run_monitor_plots_steps_on_the_x_axis(store: Store) -> None:
    from provkb.ui import common

    run_id = unique("ui")[-12:]
    _run(store, run_id, epochs=2)
    _write_series(store, run_id, [[1.0, 0.5, 0.25], [0.2, 0.1]])
    at = open_page("page_monitor.py", **{common.SELECTED_RUN: run_id})
    axis = at.radio(key="mon_axis")
    assert axis.options == ["epochs", "steps"] and axis.value == "epochs"
    axis.set_value("steps").run()
    assert not at.exception, [e.value for e in at.exception]
    charts = {c.key: c for c in at.get("plotly_chart")}
    spec = json.loads(charts["mon_steps_m"].proto.spec)
    (line,) = [t for t in spec["data"] if t.get("name") == "m"]
    assert line["x"] == [1, 2, 3, 4, 5] and line["y"] == [1.0, 0.5, 0.25, 0.2, 0.1]
    assert spec["layout"]["xaxis"]["title"]["text"] == "step"
