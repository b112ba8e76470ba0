"""Predictions, confusion matrices and stored models (issue 17 §2, §3), on both engines.

One digits classifier is trained with `ProvenanceCallback(save_model=True)`; then a
recorded `predict`, an `evaluate` of the same inputs (its confusion matrix, compared
with scikit-learn's), the explicit `confusion_matrix(x, y)`, the stored `.keras` file
(its sha256), a test of it through `KnowledgeBase.test_model` (what the app's Test tab
calls) and the Test tab itself (`streamlit.testing`), autolog, and last the export
round trip of the run (the store is emptied and the file imported back).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from provkb import ontology as o
from provkb.capture import datasets
from provkb.capture.autolog import autolog
from provkb.capture.callback import ProvenanceCallback, callback_for
from provkb.errors import PredictionError
from provkb.kb import confusion as confusions
from provkb.kb import prediction_outputs as summaries
from provkb.kb.export import build_document, export
from provkb.kb.provimport import import_file
from provkb.kb.store import Store
from provkb.knowledge_base import KnowledgeBase

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

PRED, PREDS, CM = o.PREDICTION.label, o.PREDICTIONS.label, o.CONFUSION_MATRIX.label
STORED, EVAL, MODEL, DATASET = (
    o.STORED_MODEL.label,
    o.EVALUATION.label,
    o.MODEL.label,
    o.DATASET.label,
)
RUN, PERSON = o.TRAINING_RUN.label, o.PERSON.label
USED, GEN, ASSOC = o.USED.rel_type, o.WAS_GENERATED_BY.rel_type, o.WAS_ASSOCIATED_WITH.rel_type
DERIVED = o.WAS_DERIVED_FROM.rel_type
N_TRAIN, CLASSES = 1400, list(range(10))


def rows(store: Store, query: str, **params: Any) -> list[dict[str, Any]]:
    return store.read(query, **params).rows


def one(store: Store, query: str, **params: Any) -> Any:
    found = rows(store, query, **params)
    assert len(found) == 1, found
    return next(iter(found[0].values()))


@dataclass
class Trained:
    cb: ProvenanceCallback
    model: keras.Model
    x_test: np.ndarray
    y_test: np.ndarray
    outputs: np.ndarray  # what the recorded predict returned
    keras_accuracy: float  # what the evaluate after it returned

    @property
    def run_id(self) -> str:
        return self.cb.run_id


def make_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data / 16.0).astype("float32"), data.target


@pytest.fixture(scope="module")
def trained(store: Store, digits: tuple[np.ndarray, np.ndarray]) -> Trained:
    x, y = digits
    cb = ProvenanceCallback(
        experiment=f"predict-{os.getpid()}", store=store, person="ada", save_model=True
    )
    model = make_model()
    model.fit(x[:N_TRAIN], y[:N_TRAIN], epochs=3, batch_size=64, callbacks=[cb], verbose=0)
    x_test, y_test = x[N_TRAIN:], y[N_TRAIN:]
    outputs = model.predict(x_test, batch_size=50, callbacks=[cb], verbose=0)
    result = model.evaluate(x_test, y_test, callbacks=[cb], verbose=0, return_dict=True)
    assert cb.writer.flush(60)
    return Trained(cb, model, x_test, y_test, outputs, result["accuracy"])


# -- pure -------------------------------------------------------------------------------
def test_the_app_fingerprints_an_input_as_capture_does() -> None:
    arr = np.arange(24, dtype="float32").reshape(4, 6)
    assert summaries.array_fingerprint(arr) == datasets.describe(arr).fingerprint


def test_outputs_in_any_batch_order_summarise_as_the_whole() -> None:
    outputs = np.random.default_rng(1).random((23, 4)).astype("float32")
    acc = summaries.OutputAccumulator()
    for step, start in reversed(list(enumerate(range(0, 23, 5)))):  # as a thread pool may
        acc.add(outputs[start : start + 5], step)
    summary, whole = acc.summary(), summaries.summarize(outputs)
    same = {"mean": 0.0, "std": 0.0}  # float sums in another order: compared below
    assert replace(summary, **same) == replace(whole, **same)
    assert summary.fingerprint == summaries.array_fingerprint(outputs)
    assert summary.mean == pytest.approx(outputs.mean(), rel=1e-6)
    assert summary.std == pytest.approx(outputs.std(), rel=1e-5)
    assert np.array_equal(acc.labels, outputs.argmax(axis=1))
    assert np.allclose(json.loads(summary.sample), outputs[:5], rtol=1e-5)


def test_confusion_matrix_equals_scikit_learn_on_random_labels() -> None:
    rng = np.random.default_rng(2)
    true, pred = rng.integers(0, 6, 300), rng.integers(0, 5, 300)  # class 5 never predicted
    matrix = confusions.confusion_matrix(true, pred, range(7))  # class 6 never occurs
    labels = list(range(7))
    assert np.array_equal(matrix.matrix, confusion_matrix(true, pred, labels=labels))
    kw: dict[str, Any] = {"labels": labels, "average": None, "zero_division": 0}
    assert matrix.precision == pytest.approx(precision_score(true, pred, **kw).tolist())
    assert matrix.recall == pytest.approx(recall_score(true, pred, **kw).tolist())
    with pytest.raises(ValueError, match="differ in shape"):
        confusions.confusion_matrix(true, pred[:-1])


# -- predict ------------------------------------------------------------------------------
def test_predict_is_recorded_with_its_relations(store: Store, trained: Trained) -> None:
    found = rows(
        store,
        f"MATCH (p:{PRED} {{runId: $run}})-[u:{USED} {{role: 'model'}}]->(m:{MODEL}) "
        f"MATCH (p)-[i:{USED} {{role: 'input'}}]->(d:{DATASET}) "
        f"MATCH (out:{PREDS})-[:{GEN}]->(p) MATCH (p)-[:{ASSOC}]->(who:{PERSON}) "
        f"RETURN properties(p) AS p, m.id AS model, properties(d) AS d, "
        f"properties(out) AS out, who.name AS person",
        run=trained.run_id,
    )
    assert len(found) == 1, found  # the explicit confusion_matrix test adds its own later
    row = found[0]
    assert row["model"] == f"provkb:run/{trained.run_id}/model" and row["person"] == "ada"
    assert row["p"]["id"].startswith(f"provkb:run/{trained.run_id}/prediction/")
    assert row["p"]["startedAtTime"] <= row["p"]["endedAtTime"]
    assert row["d"]["fingerprint"] == datasets.describe(trained.x_test).fingerprint
    assert row["d"]["samples"] == len(trained.x_test) and row["d"]["shape"] == [397, 64]
    out, outputs = row["out"], trained.outputs
    assert out["id"] == row["p"]["id"] + "/output"
    assert out["shape"] == [397, 10] and out["dtype"] == "float32" and out["samples"] == 397
    assert out["fingerprint"] == summaries.array_fingerprint(outputs)
    assert out["mean"] == pytest.approx(float(outputs.mean()), rel=1e-5)
    assert out["min"] == pytest.approx(float(outputs.min())) and out["nanCount"] == 0
    assert out["max"] == pytest.approx(float(outputs.max()))
    assert np.allclose(json.loads(out["sample"]), outputs[:5], rtol=1e-4, atol=1e-7)
    assert out["predictedClasses"] == outputs[:5].argmax(axis=1).tolist()


def test_evaluate_after_predict_records_the_confusion_matrix_of_scikit_learn(
    store: Store, trained: Trained
) -> None:
    found = rows(
        store,
        f"MATCH (c:{CM} {{runId: $run}})-[:{GEN}]->(e:{EVAL}) "
        f"MATCH (e)-[:{USED} {{role: 'predictions'}}]->(out:{PREDS}) "
        f"MATCH (c)-[:{DERIVED}]->(out) "
        f"RETURN properties(c) AS c, e.id AS evaluation, out.id AS predictions",
        run=trained.run_id,
    )
    assert len(found) >= 1
    first = min(found, key=lambda r: r["evaluation"])
    assert first["evaluation"] == f"provkb:run/{trained.run_id}/evaluation/1"
    c = first["c"]
    predicted = trained.outputs.argmax(axis=1)
    expected = confusion_matrix(trained.y_test, predicted, labels=CLASSES)
    assert json.loads(c["matrix"]) == expected.tolist()
    assert c["classes"] == CLASSES and c["samples"] == len(trained.y_test)
    kw: dict[str, Any] = {"labels": CLASSES, "average": None, "zero_division": 0}
    assert c["precision"] == pytest.approx(
        precision_score(trained.y_test, predicted, **kw).tolist()
    )
    assert c["recall"] == pytest.approx(recall_score(trained.y_test, predicted, **kw).tolist())
    assert c["support"] == np.bincount(trained.y_test, minlength=10).tolist()
    assert c["accuracy"] == pytest.approx(trained.keras_accuracy, abs=1e-6)


def test_evaluate_of_other_inputs_makes_no_confusion_matrix(
    store: Store, trained: Trained, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = digits
    trained.model.evaluate(x[:397], y[:397], callbacks=[trained.cb], verbose=0)  # same size
    assert trained.cb.writer.flush(60)
    k = trained.cb.recorder.evaluations
    evaluation = f"provkb:run/{trained.run_id}/evaluation/{k}"
    assert one(store, f"MATCH (e:{EVAL} {{id: $id}}) RETURN count(e) AS n", id=evaluation) == 1
    assert not rows(
        store, f"MATCH (c:{CM})-[:{GEN}]->(:{EVAL} {{id: $id}}) RETURN c.id", id=evaluation
    )


def test_explicit_confusion_matrix(store: Store, trained: Trained) -> None:
    matrix = trained.cb.confusion_matrix(trained.x_test, trained.y_test, batch_size=100)
    assert trained.cb.writer.flush(60)
    predicted = trained.model.predict(trained.x_test, verbose=0).argmax(axis=1)
    assert np.array_equal(
        matrix.matrix, confusion_matrix(trained.y_test, predicted, labels=CLASSES)
    )
    k = trained.cb.recorder.evaluations
    evaluation = f"provkb:run/{trained.run_id}/evaluation/{k}"
    found = one(
        store,
        f"MATCH (c:{CM})-[:{GEN}]->(e:{EVAL} {{id: $id}}) "
        f"MATCH (m {{kind: 'test'}})-[:{GEN}]->(e) "
        f"MATCH (e)-[:{USED} {{role: 'predictions'}}]->(:{PREDS})-[:{GEN}]->(p:{PRED}) "
        f"MATCH (e)-[:{USED} {{role: 'test'}}]->(d:{DATASET}) "
        f"RETURN {{matrix: c.matrix, accuracy: m.`metric.accuracy`, samples: d.samples}} AS r",
        id=evaluation,
    )
    assert json.loads(found["matrix"]) == matrix.matrix.tolist()
    assert found["accuracy"] == pytest.approx(matrix.accuracy) and found["samples"] == 397
    with pytest.raises(PredictionError, match="class labels"):
        trained.cb.confusion_matrix(trained.x_test, trained.x_test)
    with pytest.raises(PredictionError, match="fit it with this callback first"):
        ProvenanceCallback(store=store).confusion_matrix(trained.x_test, trained.y_test)


# -- stored models ------------------------------------------------------------------------
def stored_model(store: Store, run_id: str) -> dict[str, Any]:
    return one(
        store,
        f"MATCH (f:{STORED} {{runId: $run}})-[:{GEN}]->(:{RUN} {{runId: $run}}) "
        f"MATCH (f)-[:{DERIVED}]->(:{MODEL} {{runId: $run}}) RETURN properties(f) AS f",
        run=run_id,
    )


def test_save_model_writes_a_file_whose_sha256_matches_its_entity(
    store: Store, trained: Trained
) -> None:
    f = stored_model(store, trained.run_id)
    path = Path(f["path"])
    home = store.settings.home
    assert path == home / "artifacts" / "models" / trained.run_id / "model.keras"
    assert path == trained.cb.stored_model_path
    data = path.read_bytes()
    assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["sizeBytes"] == len(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f["format"] == "keras" and f["id"] == f"provkb:run/{trained.run_id}/model/file"
    weights = one(
        store, f"MATCH (m:{MODEL} {{runId: $run}}) RETURN m.weightsSha256 AS w", run=trained.run_id
    )
    assert f["weightsSha256"] == weights
    loaded = keras.saving.load_model(path)
    x = trained.x_test[:20]
    assert np.allclose(loaded.predict(x, verbose=0), trained.model.predict(x, verbose=0))


def test_a_test_of_the_stored_model_is_a_prediction_by_the_person(
    store: Store, trained: Trained, tmp_path: Path
) -> None:
    kb = KnowledgeBase(store)
    (model,) = kb.stored_models(trained.run_id)
    result = kb.test_model(model["id"], trained.x_test[3], person="grace")
    assert result.classes == [int(trained.outputs[3].argmax())]
    assert np.allclose(result.outputs, trained.outputs[3:4], atol=1e-5)
    found = one(
        store,
        f"MATCH (p:{PRED} {{id: $id}})-[:{USED} {{role: 'model'}}]->(f:{STORED}) "
        f"MATCH (p)-[:{ASSOC}]->(who:{PERSON}) MATCH (out:{PREDS})-[:{GEN}]->(p) "
        f"MATCH (p)-[:{USED} {{role: 'input'}}]->(d:{DATASET}) "
        f"RETURN {{file: f.id, person: who.name, classes: out.predictedClasses, "
        f"shape: d.shape, osUser: p.osUser}} AS r",
        id=result.prediction,
    )
    assert found["file"] == model["id"] and found["person"] == "grace"
    assert found["classes"] == result.classes and found["shape"] == [1, 64]
    assert found["osUser"]
    csv_row = ", ".join(str(v) for v in trained.x_test[3])
    assert kb.test_model(model["id"], csv_row, name="row.csv").classes == result.classes
    with pytest.raises(PredictionError, match=r"takes inputs of shape \(None, 64\); .* \(3, 5\)"):
        kb.test_model(model["id"], np.zeros((3, 5), "float32"))
    with pytest.raises(PredictionError, match="unknown input kind .pdf"):
        kb.test_model(model["id"], b"%PDF", name="x.pdf")
    with pytest.raises(PredictionError, match="no stored model"):
        kb.test_model("provkb:run/nothing/model/file", trained.x_test[3])
    copy = tmp_path / "changed.keras"
    copy.write_bytes(Path(model["path"]).read_bytes() + b"\0")
    with pytest.raises(PredictionError, match="changed since its run saved it"):
        from provkb.kb.model_test import run_model_test

        run_model_test(store, {**model, "path": str(copy)}, trained.x_test[3])


def test_the_test_tab_predicts_and_records(
    store: Store, trained: Trained, monkeypatch: pytest.MonkeyPatch, store_env: dict[str, str]
) -> None:
    from streamlit import dataframe_util
    from streamlit.testing.v1 import AppTest
    from test_ui_app import APP

    from provkb.ui import common, run_test_tab

    for name, value in store_env.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    if "PROVKB_HOME" in store_env:
        monkeypatch.setenv(common.ENV_EMBEDDED, "1")
    else:
        monkeypatch.delenv(common.ENV_EMBEDDED, raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[common.SELECTED_RUN] = trained.run_id
    at.run()
    at.switch_page("page_monitor.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.tabs][:3] == ["Confusion matrix", "Test", "Predictions"]
    assert any("accuracy" in c.value for c in at.caption)  # the heat map's caption
    run = trained.run_id
    at.radio(key=f"test_kind_{run}").set_value(run_test_tab.ROW)
    at.text_input(key=f"test_row_{run}").input(", ".join(str(v) for v in trained.x_test[7]))
    # the page's two person fields say what each records (issue 17)
    assert at.text_input(key=f"test_person_{run}").label == "Tested by (person)"
    assert at.text_input(key="steer_person").label == "Requested by (person)"
    at.text_input(key=f"test_person_{run}").input("hopper")
    next(b for b in at.button if b.label == "Predict").click().run()
    assert not at.exception, [e.value for e in at.exception]
    expected = int(trained.outputs[7].argmax())
    assert f"Predicted class: **{expected}**" in [s.value for s in at.success]
    # the outputs' bar chart holds one bar per output of the model, the model's outputs
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["x"]["field"] == "output"
    (data,) = chart.proto.datasets
    bars = dataframe_util.convert_arrow_bytes_to_pandas_df(data.data.data)
    assert list(bars["output"]) == list(range(trained.outputs.shape[1]))
    assert list(bars["value"]) == pytest.approx(trained.outputs[7].tolist(), abs=1e-5)
    # the section's tables show a missing value as an empty cell (issue 15)
    tables = [d for d in at.dataframe if {"precision", "fingerprint"} & set(d.value.columns)]
    assert len(tables) == 2
    assert all(t.proto.HasField("placeholder") and t.proto.placeholder == "" for t in tables)
    tested = rows(
        store,
        f"MATCH (p:{PRED} {{runId: $run}})-[:{ASSOC}]->(:{PERSON} {{name: 'hopper'}}) "
        f"MATCH (p)-[:{USED} {{role: 'model'}}]->(:{STORED}) RETURN p.id AS id",
        run=run,
    )
    assert len(tested) == 1


def test_named_queries_list_predictions_and_per_class_figures(
    store: Store, trained: Trained
) -> None:
    from provkb.queries import run as run_query

    kb = KnowledgeBase(store)
    kb.test_model(kb.stored_models(trained.run_id)[0]["id"], trained.x_test[0])  # a test
    made = run_query(store, "predictions", run=trained.run_id).rows
    used = sorted(r["used"] for r in made)
    assert "model" in used and "stored model" in used  # predict, and the tests of the file
    fingerprint = summaries.array_fingerprint(trained.outputs)
    first = next(r for r in made if r["fingerprint"] == fingerprint)
    assert first["person"] == "ada" and first["samples"] == 397 and first["shape"] == [397, 10]
    per_class = run_query(store, "confusion-matrix", run=trained.run_id).rows
    evaluation = f"provkb:run/{trained.run_id}/evaluation/1"
    rows_1 = [r for r in per_class if r["evaluation"] == evaluation]
    predicted = trained.outputs.argmax(axis=1)
    kw: dict[str, Any] = {"labels": CLASSES, "average": None, "zero_division": 0}
    assert [r["class"] for r in rows_1] == CLASSES
    assert [r["recall"] for r in rows_1] == pytest.approx(
        recall_score(trained.y_test, predicted, **kw).tolist()
    )


# -- autolog --------------------------------------------------------------------------------
@pytest.fixture
def autologged(store: Store, tmp_path: Path) -> Iterator[Path]:
    autolog(experiment=f"predict-autolog-{os.getpid()}", store=store, save_model=tmp_path)
    try:
        yield tmp_path
    finally:
        autolog(disable=True)
    assert "predict" not in vars(keras.Model)


def test_autolog_records_predict_and_saves_the_model(
    store: Store, digits: tuple[np.ndarray, np.ndarray], autologged: Path
) -> None:
    x, y = digits
    model = make_model()
    model.fit(x[:300], y[:300], epochs=1, batch_size=64, verbose=0)
    outputs = model.predict(x[300:360], verbose=0)
    model.evaluate(x[300:360], y[300:360], verbose=0)
    cb = callback_for(model)
    assert cb is not None and cb.writer.flush(60)
    out = one(
        store,
        f"MATCH (out:{PREDS})-[:{GEN}]->(p:{PRED} {{runId: $run}}) RETURN properties(out) AS o",
        run=cb.run_id,
    )
    assert out["fingerprint"] == summaries.array_fingerprint(outputs) and out["samples"] == 60
    assert one(store, f"MATCH (c:{CM} {{runId: $run}}) RETURN c.samples AS n", run=cb.run_id) == 60
    f = stored_model(store, cb.run_id)
    assert Path(f["path"]) == autologged / f"{cb.run_id}.keras"
    assert hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest() == f["sha256"]


def test_save_model_takes_a_file_uri_and_refuses_remote_ones(tmp_path: Path) -> None:
    """`file://` is a local path; s3:// and kin fail when the callback is made, before
    any training, with the reason (ProvKB writes local files only)."""
    from provkb.capture import model_store
    from provkb.errors import ConfigError

    folder = tmp_path / "my models"
    cb = ProvenanceCallback(experiment="uri", save_model=folder.as_uri())
    assert cb.save_model == folder
    assert model_store.target_path(cb.save_model, tmp_path, "r1") == folder / "r1.keras"
    for bad in ("s3://bucket/models", "file://otherhost/models", ""):
        with pytest.raises(ConfigError, match="save_model"):
            ProvenanceCallback(experiment="uri", save_model=bad)
    with pytest.raises(ConfigError, match="s3://"):
        autolog(experiment="uri", save_model="s3://bucket/models")
    assert "predict" not in vars(keras.Model)  # refused: nothing patched


def test_predict_without_a_recorded_run_records_nothing(
    store: Store, digits: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    cb = ProvenanceCallback(store=store)
    make_model().predict(digits[0][:10], callbacks=[cb], verbose=0)
    assert "predict without a recorded training run" in caplog.text
    assert cb.predictions.last is None


# -- export round trip (last: it empties the store) --------------------------------------------
def test_export_round_trip_keeps_the_new_records(
    store: Store, trained: Trained, tmp_path: Path
) -> None:
    before = build_document(store, run_id=trained.run_id)
    kinds = {PRED, PREDS, CM, STORED}
    types = {
        str(t)
        for r in before.get_records()
        for t in r.get_asserted_types() or ()
        if str(t).removeprefix("provkb:") in kinds
    }
    assert types == {f"provkb:{k}" for k in kinds}
    path = tmp_path / "run.json"
    export(store, "provjson", path, run_id=trained.run_id)
    store.clear()
    import_file(store, path)
    assert build_document(store, run_id=trained.run_id) == before
    matrix = one(
        store, f"MATCH (c:{CM} {{runId: $run}}) RETURN c.matrix AS m LIMIT 1", run=trained.run_id
    )
    assert np.asarray(json.loads(matrix)).shape == (10, 10)
