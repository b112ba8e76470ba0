"""Capture from Keras: real training on a digits subset, written to the real store.

Every element of docs/graph-model.md is checked on one run (`main_run`); adaptations
(LearningRateScheduler, ReduceLROnPlateau, in every order), early stopping, evaluate,
autolog, idempotence and an unreachable store each train their own small model.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import platform
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from provkb import ontology as o
from provkb.capture import attribution, environment, model_info, safety
from provkb.capture.autolog import autolog
from provkb.capture.callback import ProvenanceCallback, callback_for
from provkb.capture.facts import Hyperparameter, Run, RunContext
from provkb.capture.recorder import RunRecorder
from provkb.config import resolve_settings
from provkb.kb.records import GraphBatch
from provkb.kb.store import Store

pytestmark = [
    pytest.mark.slow,
    # Keras' own LR callbacks trip this numpy 2 deprecation, not ProvKB.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

# Labels and relationship types, from the ontology only.
RUN, EPOCH, METRICS, HP = (
    o.TRAINING_RUN.label,
    o.EPOCH.label,
    o.METRICS.label,
    o.HYPERPARAMETER.label,
)
ADAPT, EVAL, MODEL, LAYER = o.ADAPTATION.label, o.EVALUATION.label, o.MODEL.label, o.LAYER.label
DATASET, PLAN, SCRIPT, ENV = o.DATASET.label, o.PLAN.label, o.SCRIPT.label, o.ENVIRONMENT.label
PROJECT, EXPERIMENT, PERSON = o.PROJECT.label, o.EXPERIMENT.label, o.PERSON.label
SOFTWARE, MACHINE = o.SOFTWARE_AGENT.label, o.MACHINE.label
USED, GEN, ASSOC = o.USED.rel_type, o.WAS_GENERATED_BY.rel_type, o.WAS_ASSOCIATED_WITH.rel_type
INFORMED, BEHALF = o.WAS_INFORMED_BY.rel_type, o.ACTED_ON_BEHALF_OF.rel_type
REVISION, DERIVED = o.WAS_REVISION_OF.rel_type, o.WAS_DERIVED_FROM.rel_type
MEMBER, ATTRIBUTED = o.HAD_MEMBER.rel_type, o.WAS_ATTRIBUTED_TO.rel_type

N_TRAIN, BATCH, LR = 240, 64, 0.01


@dataclass
class Data:
    x: np.ndarray
    y: np.ndarray

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:N_TRAIN], self.y[:N_TRAIN]

    @property
    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[N_TRAIN:], self.y[N_TRAIN:]


@pytest.fixture(scope="module")
def data() -> Data:
    digits = load_digits()
    return Data((digits.data[:300] / 16.0).astype("float32"), digits.target[:300])


def make_model(lr: float = LR) -> keras.Model:
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def rows(store: Store, query: str, **params: Any) -> list[dict[str, Any]]:
    return store.read(query, **params).rows


def one(store: Store, query: str, **params: Any) -> Any:
    result = rows(store, query, **params)
    assert len(result) == 1, result
    return next(iter(result[0].values()))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def train(
    store: Store, data: Data, callbacks: list[Any], epochs: int = 4, **callback_args: Any
) -> ProvenanceCallback:
    """Fit a fresh model with a ProvenanceCallback inserted where `None` stands."""
    cb = ProvenanceCallback(experiment=unique("capture"), store=store, **callback_args)
    model = make_model()
    listed = [cb if c is None else c for c in callbacks]
    model.fit(*data.train, epochs=epochs, batch_size=BATCH, callbacks=listed, verbose=0)
    assert cb.writer.flush(30)
    return cb


# -- the main run: everything of the graph model ----------------------------------
@dataclass
class MainRun:
    cb: ProvenanceCallback
    model: keras.Model
    history: dict[str, list[float]]
    test: dict[str, float]
    epochs: int = 4

    @property
    def run_id(self) -> str:
        return self.cb.run_id


@pytest.fixture(scope="module")
def main_run(store: Store, data: Data) -> MainRun:
    cb = ProvenanceCallback(
        experiment=unique("main"),
        project=unique("proj"),
        run_name="main-run",
        hyperparameters={"units": 32, "note": "digits mlp"},
        person="ada",
        store=store,
        datasets={"train": "digits"},
    )
    model = make_model()
    x_train, y_train = data.train
    x_val, y_val = data.validation
    history = model.fit(
        x_train,
        y_train,
        epochs=4,
        batch_size=BATCH,
        validation_data=(x_val, y_val),
        callbacks=[cb],
        verbose=0,
    )
    test = model.evaluate(x_val, y_val, callbacks=[cb], verbose=0, return_dict=True)
    assert cb.writer.flush(30)
    return MainRun(cb, model, history.history, test)


def test_run_experiment_project(store: Store, main_run: MainRun) -> None:
    r = one(
        store, f"MATCH (r:{RUN} {{runId: $runId}}) RETURN properties(r) AS p", runId=main_run.run_id
    )
    assert r["id"] == f"provkb:run/{main_run.run_id}"
    assert len(main_run.run_id) == 12 and int(main_run.run_id, 16) >= 0
    assert r["name"] == "main-run" and r["experiment"] == main_run.cb.experiment
    assert r["project"] == main_run.cb.project
    assert r["status"] == o.RunStatus.COMPLETED
    assert r["epochsPlanned"] == 4 and r["epochsCompleted"] == 4
    assert r["startedAtTime"] < r["endedAtTime"] and r["startedAtTime"].endswith("+00:00")
    assert r["commandLine"]
    chain = rows(
        store,
        f"MATCH (r:{RUN} {{runId: $runId}})-[:{INFORMED}]->(e:{EXPERIMENT})-[:{INFORMED}]->"
        f"(p:{PROJECT}) RETURN e.name AS e, e.project AS ep, p.name AS p, p.id AS pid",
        runId=main_run.run_id,
    )
    assert chain == [
        {
            "e": main_run.cb.experiment,
            "ep": main_run.cb.project,
            "p": main_run.cb.project,
            "pid": f"provkb:project/{main_run.cb.project}",
        }
    ]


def test_run_summary_matches_its_epochs(store: Store, main_run: MainRun) -> None:
    r = one(
        store, f"MATCH (r:{RUN} {{runId: $runId}}) RETURN properties(r) AS p", runId=main_run.run_id
    )
    val_accuracy, loss = main_run.history["val_accuracy"], main_run.history["loss"]
    assert r[o.summary_prop("max", "val_accuracy")] == pytest.approx(max(val_accuracy))
    assert (
        r[o.summary_prop("maxEpoch", "val_accuracy")] == val_accuracy.index(max(val_accuracy)) + 1
    )
    assert r[o.summary_prop("min", "loss")] == pytest.approx(min(loss))
    assert r[o.summary_prop("minEpoch", "loss")] == loss.index(min(loss)) + 1
    assert r[o.summary_prop("sum", "loss")] == pytest.approx(sum(loss))
    assert r[o.summary_prop("count", "loss")] == 4
    # the test evaluation's metrics are not an epoch's
    assert r[o.summary_prop("count", "val_loss")] == 4
    seconds = one(
        store,
        f"MATCH (e:{o.EPOCH.label} {{runId: $runId}}) RETURN sum(e.elapsedSeconds) AS p",
        runId=main_run.run_id,
    )
    assert r[o.Prop.EPOCH_SECONDS] == pytest.approx(seconds) and seconds > 0


def test_hooks_account_for_their_time(main_run: MainRun) -> None:
    # what capture cost the training thread (the benchmark reports it against the fit)
    assert main_run.cb.hook_seconds > 0
    assert ProvenanceCallback(store=main_run.cb.store).hook_seconds == 0


def test_every_node_has_one_core_label(store: Store, main_run: MainRun) -> None:
    found = rows(
        store,
        "MATCH (n {runId: $runId}) RETURN n.id AS id, labels(n) AS labels",
        runId=main_run.run_id,
    )
    assert len(found) > 30
    cores = {k.label for k in o.KINDS}
    for node in found:
        assert len(cores & set(node["labels"])) == 1, node
        assert len(node["labels"]) == 2, node


def test_agents(store: Store, main_run: MainRun) -> None:
    agents = rows(
        store,
        f"MATCH (r:{RUN} {{runId: $runId}})-[a:{ASSOC}]->(g) "  # delegation per activity
        f"RETURN labels(g) AS labels, properties(g) AS g, a.plan AS plan, a.onBehalfOf AS boss",
        runId=main_run.run_id,
    )
    by_label = {next(label for label in a["labels"] if label != o.AGENT.label): a for a in agents}
    assert set(by_label) == {PERSON, SOFTWARE, MACHINE}
    person = by_label[PERSON]
    assert person["g"]["name"] == "ada" and person["g"]["id"] == "provkb:person/ada"
    assert person["plan"] == f"provkb:run/{main_run.run_id}/plan"
    software = by_label[SOFTWARE]["g"]
    assert software["name"] == "keras" and software["version"] == keras.__version__
    assert software["backend"] == keras.backend.backend() and software["backendVersion"]
    assert software["provkbVersion"]
    assert software["id"] == f"provkb:software/keras-{keras.__version__}-{software['backend']}"
    machine = by_label[MACHINE]["g"]
    assert machine["hostname"] == socket.gethostname() and machine["cpuCount"] >= 1
    assert machine["os"] and machine["cpu"]
    assert by_label[SOFTWARE]["boss"] == by_label[MACHINE]["boss"] == "provkb:person/ada"


def test_plan(store: Store, main_run: MainRun) -> None:
    plan = one(
        store,
        f"MATCH (p:{PLAN} {{runId: $runId}}) RETURN properties(p) AS p",
        runId=main_run.run_id,
    )
    model_config = json.loads(plan["modelConfig"])
    assert [layer["class_name"] for layer in model_config["layers"]][-3:] == [
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert json.loads(plan["optimizerConfig"])["class_name"] == "Adam"
    assert json.loads(plan["compileConfig"])["loss"] == "sparse_categorical_crossentropy"


def test_hyperparameters(store: Store, main_run: MainRun) -> None:
    found = rows(
        store,
        f"MATCH (r:{RUN} {{runId: $runId}})-[:{USED}]->(h:{HP}) RETURN properties(h) AS h",
        runId=main_run.run_id,
    )
    hps = {row["h"]["name"]: row["h"] for row in found}
    assert all(h["version"] == 1 and h["fromEpoch"] == 1 for h in hps.values())
    assert all(h["id"] == f"provkb:run/{main_run.run_id}/hp/{n}/v1" for n, h in hps.items())
    config = main_run.model.optimizer.get_config()
    assert set(config) - {"name"} <= set(hps)  # the full optimizer config
    assert hps["optimizer"]["value"] == "adam" and hps["optimizer"]["source"] == "optimizer"
    assert hps["optimizer_class"]["value"] == "Adam"
    assert hps["learning_rate"]["value"] == pytest.approx(LR)
    assert hps["learning_rate"]["valueType"] == "float"
    assert hps["beta_1"]["value"] == pytest.approx(0.9)
    assert hps["clipnorm"]["valueType"] == "none" and "value" not in hps["clipnorm"]
    fit = {n: h["value"] for n, h in hps.items() if h["source"] == "fit"}
    assert fit["epochs"] == 4 and fit["batch_size"] == BATCH and fit["shuffle"] is True
    assert fit["validation_data"] is True and fit["initial_epoch"] == 0
    compiled = {n: h["value"] for n, h in hps.items() if h["source"] == "compile"}
    assert compiled["loss"] == "sparse_categorical_crossentropy"
    assert compiled["metrics"] == ["accuracy"]
    user = {n: h["value"] for n, h in hps.items() if h["source"] == "user"}
    assert user == {"units": 32, "note": "digits mlp"}


def test_model_and_layers(store: Store, main_run: MainRun) -> None:
    model = one(
        store,
        f"MATCH (m:{MODEL} {{runId: $runId}})-[:{GEN}]->(:{RUN} {{runId: $runId}}) "
        f"RETURN properties(m) AS m",
        runId=main_run.run_id,
    )
    assert model["class"] == "Sequential" and model["name"] == main_run.model.name
    assert model["totalParams"] == main_run.model.count_params() == 64 * 32 + 32 + 330
    assert model["trainableParams"] == model["totalParams"] and model["layerCount"] == 3
    weights = hashlib.sha256()
    for w in main_run.model.get_weights():
        weights.update(f"{w.dtype.str}{w.shape}".encode())
        weights.update(np.ascontiguousarray(w).tobytes())
    assert model["weightsSha256"] == weights.hexdigest()
    layers = rows(
        store,
        f"MATCH (m:{MODEL} {{runId: $runId}})-[:{MEMBER}]->(l:{LAYER}) "
        f"RETURN properties(l) AS l ORDER BY l.index",
        runId=main_run.run_id,
    )
    layers = [row["l"] for row in layers]
    assert [layer["class"] for layer in layers] == ["Dense", "Dropout", "Dense"]
    assert [layer.get("units") for layer in layers] == [32, None, 10]
    assert [layer.get("activation") for layer in layers] == ["relu", None, "softmax"]
    assert layers[1]["rate"] == pytest.approx(0.1)
    assert [layer["params"] for layer in layers] == [64 * 32 + 32, 0, 330]
    assert [layer["index"] for layer in layers] == [0, 1, 2]
    person = one(
        store,
        f"MATCH (m:{MODEL} {{runId: $runId}})-[:{ATTRIBUTED}]->(p:{PERSON}) RETURN p.name AS n",
        runId=main_run.run_id,
    )
    assert person == "ada"


def test_datasets(store: Store, main_run: MainRun, data: Data) -> None:
    used = rows(
        store,
        f"MATCH (r:{RUN} {{runId: $runId}})-[u:{USED}]->(d:{DATASET}) "
        f"RETURN u.role AS role, properties(d) AS d",
        runId=main_run.run_id,
    )
    by_role = {row["role"]: row["d"] for row in used}
    assert set(by_role) == {"train", "validation"}
    train, validation = by_role["train"], by_role["validation"]
    assert train["name"] == "digits"
    assert train["shape"] == [N_TRAIN, 64] and train["samples"] == N_TRAIN
    assert train["dtype"] == "float32" and train["targetShape"] == [N_TRAIN]
    assert validation["shape"] == [300 - N_TRAIN, 64] and validation["samples"] == 60
    for ds in (train, validation):
        assert len(ds["fingerprint"]) == 64 and ds["id"] == f"provkb:dataset/{ds['fingerprint']}"
    assert train["fingerprint"] != validation["fingerprint"]
    derived = one(
        store,
        f"MATCH (m:{MODEL} {{runId: $runId}})-[:{DERIVED}]->(d:{DATASET}) RETURN d.id AS id",
        runId=main_run.run_id,
    )
    assert derived == train["id"]


def test_epochs_and_metrics(store: Store, main_run: MainRun) -> None:
    epochs = rows(
        store,
        f"MATCH (m:{METRICS} {{runId: $runId, kind: 'epoch'}})-[:{GEN}]->"
        f"(e:{EPOCH})-[:{INFORMED}]->(:{RUN} {{runId: $runId}}) "
        f"RETURN properties(e) AS e, properties(m) AS m ORDER BY e.epoch",
        runId=main_run.run_id,
    )
    assert [row["e"]["epoch"] for row in epochs] == [1, 2, 3, 4]
    assert (
        one(
            store,
            f"MATCH (e:{EPOCH} {{runId: $runId}}) RETURN count(e) AS c",
            runId=main_run.run_id,
        )
        == 4
    )
    assert (
        one(
            store,
            f"MATCH (m:{METRICS} {{runId: $runId}}) RETURN count(m) AS c",
            runId=main_run.run_id,
        )
        == 5  # 4 epochs + 1 evaluation
    )
    for i, row in enumerate(epochs):
        epoch, metrics = row["e"], row["m"]
        assert epoch["id"] == f"provkb:run/{main_run.run_id}/epoch/{i + 1}"
        assert metrics["id"] == epoch["id"] + "/metrics"
        assert epoch["elapsedSeconds"] > 0 and epoch["startedAtTime"] < epoch["endedAtTime"]
        assert metrics["epoch"] == i + 1 and metrics["generatedAtTime"] == epoch["endedAtTime"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            value = metrics[o.metric_prop(key)]  # metric keys are `metric.<key>`
            assert value == pytest.approx(main_run.history[key][i], rel=1e-6)
        assert metrics[o.metric_prop("learning_rate")] == pytest.approx(LR)
    chain = rows(
        store,
        f"MATCH (a:{EPOCH} {{runId: $runId}})-[:{INFORMED}]->(b:{EPOCH}) "
        f"RETURN a.epoch AS a, b.epoch AS b ORDER BY a",
        runId=main_run.run_id,
    )
    assert chain == [{"a": 2, "b": 1}, {"a": 3, "b": 2}, {"a": 4, "b": 3}]
    used = rows(
        store,
        f"MATCH (e:{EPOCH} {{runId: $runId}})-[:{USED}]->(h:{HP}) "
        f"RETURN e.epoch AS e, collect(h.name) AS names ORDER BY e",
        runId=main_run.run_id,
    )
    assert len(used) == 4
    for row in used:  # the tracked (mutable, numeric) optimizer values
        assert {"learning_rate", "beta_1", "beta_2", "epsilon"} <= set(row["names"])
        assert "batch_size" not in row["names"] and "optimizer" not in row["names"]


def test_script_and_environment(store: Store, main_run: MainRun) -> None:
    script = one(
        store,
        f"MATCH (:{RUN} {{runId: $runId}})-[:{USED}]->(s:{SCRIPT}) RETURN properties(s) AS s",
        runId=main_run.run_id,
    )
    path = environment.script_path()
    assert path is not None and script["path"] == str(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert script["sha256"] == digest and script["id"] == f"provkb:script/{digest}"
    env = one(
        store,
        f"MATCH (:{RUN} {{runId: $runId}})-[:{USED}]->(e:{ENV}) RETURN properties(e) AS e",
        runId=main_run.run_id,
    )
    assert env["python"] == platform.python_version() and env["platform"] and env["os"]
    assert f"keras=={keras.__version__}" in env["packages"]
    assert any(p.startswith("numpy==") for p in env["packages"])
    assert env["id"] == f"provkb:environment/{environment.environment().sha256}"


def test_evaluation(store: Store, main_run: MainRun, data: Data) -> None:
    found = rows(
        store,
        f"MATCH (m:{METRICS} {{runId: $runId}})-[:{GEN}]->(e:{EVAL} {{runId: $runId}}) "
        f"RETURN properties(e) AS e, properties(m) AS m",
        runId=main_run.run_id,
    )
    assert len(found) == 1  # validation inside fit is not an evaluation
    evaluation, metrics = found[0]["e"], found[0]["m"]
    assert evaluation["id"] == f"provkb:run/{main_run.run_id}/evaluation/1"
    assert evaluation["startedAtTime"] <= evaluation["endedAtTime"]
    assert metrics["kind"] == "test" and metrics["id"] == evaluation["id"] + "/metrics"
    assert metrics["metric.loss"] == pytest.approx(main_run.test["loss"], rel=1e-6)
    assert metrics["metric.accuracy"] == pytest.approx(main_run.test["accuracy"], rel=1e-6)
    used = rows(
        store,
        f"MATCH (e:{EVAL} {{runId: $runId}})-[u:{USED}]->(n) "
        f"RETURN u.role AS role, n.id AS id, n.samples AS samples ORDER BY id",
        runId=main_run.run_id,
    )
    validation = one(
        store,
        f"MATCH (:{RUN} {{runId: $runId}})-[:{USED} {{role: 'validation'}}]->(d:{DATASET}) "
        f"RETURN d.id AS id",
        runId=main_run.run_id,
    )
    assert {(u["role"], u["id"]) for u in used} == {
        ("test", validation),  # evaluated on the validation arrays: the same dataset node
        (None, f"provkb:run/{main_run.run_id}/model"),
    }
    who = one(
        store,
        f"MATCH (e:{EVAL} {{runId: $runId}})-[:{ASSOC}]->(p:{PERSON}) RETURN p.name AS n",
        runId=main_run.run_id,
    )
    assert who == "ada"


# -- adaptations ----------------------------------------------------------------
def step_decay(epoch: int, lr: float) -> float:
    """Halve every 2 epochs (epoch is 0-based, as Keras passes it)."""
    return LR * 0.5 ** (epoch // 2)


def adaptations(store: Store, run_id: str) -> list[dict[str, Any]]:
    return rows(
        store,
        f"MATCH (a:{ADAPT} {{runId: $runId}}) "
        f"OPTIONAL MATCH (a)-[w:{ASSOC}]->(g:{SOFTWARE}) "  # acting for the run's person
        f"OPTIONAL MATCH (p:{PERSON}) WHERE p.id = w.onBehalfOf "
        f"RETURN properties(a) AS a, g.id AS agent, p.name AS person ORDER BY a.epoch",
        runId=run_id,
    )


@pytest.mark.parametrize("position", ["first", "last"])
def test_learning_rate_scheduler(store: Store, data: Data, position: str) -> None:
    scheduler = keras.callbacks.LearningRateScheduler(step_decay)
    order = [None, scheduler] if position == "first" else [scheduler, None]
    cb = train(store, data, order, epochs=6)
    run_id = cb.run_id
    found = adaptations(store, run_id)
    assert [a["a"]["epoch"] for a in found] == [3, 5]
    for row, (old, new) in zip(found, [(LR, LR / 2), (LR / 2, LR / 4)], strict=True):
        a = row["a"]
        assert a["callback"] == "LearningRateScheduler" and a["kind"] == "schedule"
        assert a["hyperparameter"] == "learning_rate"
        assert a["oldValue"] == pytest.approx(old) and a["newValue"] == pytest.approx(new)
        assert a["id"] == f"provkb:run/{run_id}/adaptation/{a['epoch']}/learning_rate"
        assert row["agent"] == "provkb:software/callback/LearningRateScheduler"
        assert row["person"] == getpass.getuser()
    versions = rows(
        store,
        f"MATCH (h:{HP} {{runId: $runId, name: 'learning_rate'}}) "
        f"OPTIONAL MATCH (h)-[:{REVISION}]->(old:{HP}) "
        f"OPTIONAL MATCH (h)-[:{GEN}]->(a:{ADAPT}) "
        f"RETURN h.version AS v, h.fromEpoch AS f, h.value AS value, old.version AS prev, "
        f"a.epoch AS by ORDER BY v",
        runId=run_id,
    )
    assert [(v["v"], v["f"], v["prev"], v["by"]) for v in versions] == [
        (1, 1, None, None),
        (2, 3, 1, 3),
        (3, 5, 2, 5),
    ]
    assert [v["value"] for v in versions] == pytest.approx([LR, LR / 2, LR / 4])
    inputs = rows(
        store,
        f"MATCH (a:{ADAPT} {{runId: $runId}})-[:{USED}]->(n) "
        f"RETURN a.epoch AS a, n.id AS n ORDER BY a, n",
        runId=run_id,
    )
    base = f"provkb:run/{run_id}"
    assert [(i["a"], i["n"]) for i in inputs] == [
        (3, f"{base}/epoch/2/metrics"),
        (3, f"{base}/hp/learning_rate/v1"),
        (5, f"{base}/epoch/4/metrics"),
        (5, f"{base}/hp/learning_rate/v2"),
    ]
    in_force = rows(
        store,
        f"MATCH (e:{EPOCH} {{runId: $runId}})-[:{USED}]->(h:{HP} {{name: 'learning_rate'}}) "
        f"MATCH (m:{METRICS})-[:{GEN}]->(e) "
        f"RETURN e.epoch AS e, h.version AS v, m.`metric.learning_rate` AS lr ORDER BY e",
        runId=run_id,
    )
    assert [(r["e"], r["v"]) for r in in_force] == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)]
    assert [r["lr"] for r in in_force] == pytest.approx([step_decay(e, LR) for e in range(6)])


def plateau() -> keras.callbacks.ReduceLROnPlateau:
    """Reduces after every epoch but the first: no epoch improves the loss by 10."""
    return keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10)


@pytest.mark.parametrize("position", ["first", "last"])
def test_reduce_lr_on_plateau(store: Store, data: Data, position: str) -> None:
    reducer = plateau()
    cb = train(store, data, [None, reducer] if position == "first" else [reducer, None])
    found = adaptations(store, cb.run_id)
    # reduced at the end of epochs 2, 3 and 4: first used by epochs 3, 4 and (5)
    assert [a["a"]["epoch"] for a in found] == [3, 4, 5]
    assert {a["a"]["callback"] for a in found} == {"ReduceLROnPlateau"}
    assert {a["agent"] for a in found} == {"provkb:software/callback/ReduceLROnPlateau"}
    assert [a["a"]["newValue"] for a in found] == pytest.approx([LR / 2, LR / 4, LR / 8])
    versions = rows(
        store,
        f"MATCH (h:{HP} {{runId: $runId, name: 'learning_rate'}}) "
        f"RETURN h.version AS v, h.fromEpoch AS f ORDER BY v",
        runId=cb.run_id,
    )
    assert [(v["v"], v["f"]) for v in versions] == [(1, 1), (2, 3), (3, 4), (4, 5)]
    metrics_lr = rows(
        store,
        f"MATCH (m:{METRICS} {{runId: $runId, kind: 'epoch'}}) "
        f"RETURN m.`metric.learning_rate` AS lr ORDER BY m.epoch",
        runId=cb.run_id,
    )
    assert [m["lr"] for m in metrics_lr] == pytest.approx([LR, LR, LR / 2, LR / 4])


@pytest.mark.parametrize("order", [("s", "p", None), (None, "s", "p"), ("p", None, "s")])
def test_attribution_with_both_callbacks_in_any_order(
    store: Store, data: Data, order: tuple[str | None, ...]
) -> None:
    scheduler = keras.callbacks.LearningRateScheduler(lambda e, lr: lr * 0.5 if e == 1 else lr)
    reducer = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", factor=0.1, patience=2, min_delta=10
    )
    chosen = {"s": scheduler, "p": reducer, None: None}
    cb = train(store, data, [chosen[c] for c in order])
    found = adaptations(store, cb.run_id)
    assert [(a["a"]["epoch"], a["a"]["callback"]) for a in found] == [
        (2, "LearningRateScheduler"),
        (4, "ReduceLROnPlateau"),
    ]
    assert [a["a"]["newValue"] for a in found] == pytest.approx([LR / 2, LR / 20])


def test_custom_change_is_attributed_to_a_generic_agent(store: Store, data: Data) -> None:
    class Tweak(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if epoch == 2:
                self.model.optimizer.learning_rate.assign(0.003)

    cb = train(store, data, [None, Tweak(), keras.callbacks.LambdaCallback()])
    found = adaptations(store, cb.run_id)
    assert [(a["a"]["epoch"], a["a"]["newValue"]) for a in found] == [(3, pytest.approx(0.003))]
    # one candidate ran between the two readings: named after its class
    assert found[0]["a"]["callback"] == "Tweak"


def test_early_stopping(store: Store, data: Data) -> None:
    stopper = keras.callbacks.EarlyStopping(monitor="loss", min_delta=10, patience=1)
    cb = train(store, data, [stopper, None], epochs=6)
    run = one(
        store, f"MATCH (r:{RUN} {{runId: $runId}}) RETURN properties(r) AS r", runId=cb.run_id
    )
    assert run["status"] == o.RunStatus.STOPPED_EARLY
    assert run["stoppedEpoch"] == 2 and run["epochsCompleted"] == 2 and run["epochsPlanned"] == 6
    found = adaptations(store, cb.run_id)
    assert len(found) == 1
    stop = found[0]["a"]
    assert stop["id"] == f"provkb:run/{cb.run_id}/adaptation/early-stopping"
    assert stop["kind"] == "early_stopping" and stop["epoch"] == 2
    assert stop["callback"] == "EarlyStopping"
    assert found[0]["agent"] == "provkb:software/callback/EarlyStopping"
    links = rows(
        store,
        f"MATCH (a:{ADAPT} {{runId: $runId}})-[x]->(n) RETURN type(x) AS t, n.id AS n ORDER BY t",
        runId=cb.run_id,
    )
    assert [(link["t"], link["n"]) for link in links] == [
        (USED, f"provkb:run/{cb.run_id}/epoch/2/metrics"),
        (ASSOC, "provkb:software/callback/EarlyStopping"),
        (INFORMED, f"provkb:run/{cb.run_id}"),
    ]


def test_completed_run_with_unfired_early_stopping(store: Store, data: Data) -> None:
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=50)
    cb = train(store, data, [None, stopper], epochs=2)
    status = one(store, f"MATCH (r:{RUN} {{runId: $runId}}) RETURN r.status AS s", runId=cb.run_id)
    assert status == o.RunStatus.COMPLETED
    assert adaptations(store, cb.run_id) == []


def test_each_fit_is_a_run_and_a_folder_names_the_store(embedded_home: Any, data: Data) -> None:
    cb = ProvenanceCallback(experiment=unique("refit"), store=str(embedded_home))
    model = make_model()
    model.fit(*data.train, epochs=2, batch_size=BATCH, callbacks=[cb], verbose=0)
    first = cb.run_id
    model.fit(*data.train, epochs=4, initial_epoch=2, batch_size=BATCH, callbacks=[cb], verbose=0)
    assert cb.run_id != first and cb.writer.flush(30)
    with Store(resolve_settings(store=embedded_home)) as kb:
        runs = rows(
            kb,
            f"MATCH (r:{RUN} {{experiment: $e}}) OPTIONAL MATCH (x:{EPOCH} {{runId: r.runId}}) "
            f"WITH r, x ORDER BY x.epoch "
            f"RETURN r.runId AS id, r.epochsPlanned AS planned, r.status AS status, "
            f"collect(x.epoch) AS epochs ORDER BY epochs",
            e=cb.experiment,
        )
        first_lr = one(
            kb,
            f"MATCH (h:{HP} {{runId: $r, name: 'learning_rate'}}) RETURN h.fromEpoch AS f",
            r=cb.run_id,
        )
    assert [(r["id"], r["planned"], r["epochs"]) for r in runs] == [
        (first, 2, [1, 2]),
        (cb.run_id, 2, [3, 4]),
    ]
    assert {r["status"] for r in runs} == {o.RunStatus.COMPLETED}
    assert first_lr == 3  # values of a continued run are in force from its first epoch


# -- autolog ----------------------------------------------------------------------
@pytest.fixture
def autologged(store: Store) -> Iterator[str]:
    experiment = unique("autolog")
    autolog(experiment=experiment, store=store)
    try:
        yield experiment
    finally:
        autolog(disable=True)
    assert "fit" not in vars(keras.Model) and "evaluate" not in vars(keras.Model)


def test_autolog_records_fit_and_evaluate(
    store: Store, data: Data, autologged: str, main_run: MainRun
) -> None:
    model = make_model()
    model.fit(data.x, data.y, epochs=2, batch_size=BATCH, validation_split=0.2, verbose=0)
    model.evaluate(*data.validation, verbose=0)
    cb = callback_for(model)
    assert cb is not None and cb.writer.flush(30)
    run = one(
        store,
        f"MATCH (r:{RUN} {{experiment: $experiment}}) RETURN properties(r) AS r",
        experiment=autologged,
    )
    assert run["runId"] == cb.run_id and run["status"] == o.RunStatus.COMPLETED
    assert run["epochsCompleted"] == 2
    hps = {
        r["n"]: r["v"]
        for r in rows(
            store,
            f"MATCH (:{RUN} {{runId: $runId}})-[:{USED}]->(h:{HP}) "
            f"RETURN h.name AS n, h.value AS v",
            runId=cb.run_id,
        )
    }
    assert hps["validation_split"] == pytest.approx(0.2) and hps["validation_data"] is False
    assert hps["epochs"] == 2 and hps["batch_size"] == BATCH
    # Keras' validation_split takes the last 20%: the same arrays as the main run's.
    datasets = rows(
        store,
        f"MATCH (:{RUN} {{runId: $runId}})-[u:{USED}]->(d:{DATASET}) "
        f"RETURN u.role AS role, d.id AS id ORDER BY role",
        runId=cb.run_id,
    )
    main_datasets = rows(
        store,
        f"MATCH (:{RUN} {{runId: $runId}})-[u:{USED}]->(d:{DATASET}) "
        f"RETURN u.role AS role, d.id AS id ORDER BY role",
        runId=main_run.run_id,
    )
    assert datasets == main_datasets
    evaluation = rows(
        store,
        f"MATCH (e:{EVAL} {{runId: $runId}})-[u:{USED} {{role: 'test'}}]->(d:{DATASET}) "
        f"MATCH (m:{METRICS} {{kind: 'test'}})-[:{GEN}]->(e) "
        f"MATCH (e)-[:{ASSOC}]->(p:{PERSON}) "
        f"RETURN d.samples AS samples, m.`metric.loss` AS loss, p.name AS person",
        runId=cb.run_id,
    )
    assert len(evaluation) == 1 and evaluation[0]["samples"] == 60
    assert evaluation[0]["person"] == getpass.getuser()
    epochs = one(
        store, f"MATCH (e:{EPOCH} {{runId: $runId}}) RETURN count(e) AS c", runId=cb.run_id
    )
    assert epochs == 2


def test_autolog_keeps_an_explicit_callback(store: Store, data: Data, autologged: str) -> None:
    cb = ProvenanceCallback(experiment=unique("explicit"), store=store)
    model = make_model()
    model.fit(*data.train, epochs=1, batch_size=BATCH, callbacks=[cb], verbose=0)
    assert callback_for(model) is cb and cb.writer.flush(30)
    runs = rows(
        store,
        f"MATCH (r:{RUN}) WHERE r.experiment IN [$a, $b] RETURN r.experiment AS e",
        a=autologged,
        b=cb.experiment,
    )
    assert runs == [{"e": cb.experiment}]


def test_autolog_marks_a_failed_run(store: Store, data: Data, autologged: str) -> None:
    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                raise RuntimeError("boom")

    model = make_model()
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(*data.train, epochs=3, batch_size=BATCH, callbacks=[Boom()], verbose=0)
    cb = callback_for(model)
    assert cb is not None and cb.writer.flush(30)
    run = one(
        store, f"MATCH (r:{RUN} {{runId: $runId}}) RETURN properties(r) AS r", runId=cb.run_id
    )
    assert run["status"] == o.RunStatus.FAILED and "boom" in run["error"]
    assert run["epochsCompleted"] == 1 and run["endedAtTime"]


# -- robustness -------------------------------------------------------------------
class Recording(ProvenanceCallback):
    """Keeps a copy of every batch it submits."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batches: list[GraphBatch] = []

    def _submit(self, batch: GraphBatch) -> None:
        self.batches.append(batch)
        super()._submit(batch)


def test_resubmitting_the_same_batches_changes_nothing(store: Store, data: Data) -> None:
    cb = Recording(experiment=unique("idem"), store=store)
    model = make_model()
    scheduler = keras.callbacks.LearningRateScheduler(step_decay)
    model.fit(*data.train, epochs=3, batch_size=BATCH, callbacks=[cb, scheduler], verbose=0)
    model.evaluate(*data.validation, callbacks=[cb], verbose=0)
    assert cb.writer.flush(30)
    before = store.counts()
    for batch in cb.batches:
        cb.writer.submit(batch)
    assert cb.writer.flush(30)
    store.write(GraphBatch.concat(cb.batches))
    assert store.counts() == before


def test_training_completes_when_the_store_is_unreachable(
    data: Data, caplog: pytest.LogCaptureFixture
) -> None:
    down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    cb = ProvenanceCallback(experiment="down", store=down, flush_timeout=5)
    model = make_model()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="provkb"):
        history = model.fit(*data.train, epochs=2, batch_size=BATCH, callbacks=[cb], verbose=0)
    assert len(history.history["loss"]) == 2
    assert time.monotonic() - started < 30
    assert any(r.name.startswith("provkb") and r.levelno == logging.WARNING for r in caplog.records)
    assert cb.writer.backlog > 0 and cb.writer.stats.failures >= 1


def test_a_failing_extractor_loses_only_its_facts(
    store: Store, data: Data, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: Any) -> Any:
        raise ValueError("cannot describe")

    monkeypatch.delenv(safety.STRICT_ENV, raising=False)  # swallowing is the subject
    monkeypatch.setattr(model_info, "describe_model", broken)
    with caplog.at_level(logging.WARNING, logger="provkb"):
        cb = train(store, data, [None], epochs=2)
    assert any("cannot describe" in r.getMessage() for r in caplog.records)
    run = one(store, f"MATCH (r:{RUN} {{runId: $runId}}) RETURN r.status AS s", runId=cb.run_id)
    assert run == o.RunStatus.COMPLETED
    assert rows(store, f"MATCH (m:{MODEL} {{runId: $runId}}) RETURN m", runId=cb.run_id) == []
    assert (
        one(store, f"MATCH (e:{EPOCH} {{runId: $runId}}) RETURN count(e) AS c", runId=cb.run_id)
        == 2
    )


def test_strict_mode_raises_a_crash_inside_a_hook(
    store: Store, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROVKB_STRICT=1 (the suite's setting) re-raises what capture would swallow, so
    a test sees a crash inside a hook; without it training carries on (test above)."""

    def broken(model: Any) -> Any:
        raise ValueError("cannot describe")

    monkeypatch.setenv(safety.STRICT_ENV, "1")
    monkeypatch.setattr(model_info, "describe_model", broken)
    with pytest.raises(ValueError, match="cannot describe"):
        train(store, data, [None], epochs=1)


def test_a_crashing_hook_is_swallowed_and_warned_once_outside_strict_mode(
    store: Store, data: Data, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(safety.STRICT_ENV, raising=False)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in an epoch hook")

    monkeypatch.setattr(RunRecorder, "epoch", crash)
    with caplog.at_level(logging.WARNING, logger="provkb"):
        cb = train(store, data, [None], epochs=3)
    crashes = [r for r in caplog.records if "a bug in an epoch hook" in r.getMessage()]
    assert len(crashes) == 1 and "on_epoch_end" in crashes[0].getMessage()
    status = one(store, f"MATCH (r:{RUN} {{runId: $runId}}) RETURN r.status AS s", runId=cb.run_id)
    assert status == o.RunStatus.COMPLETED


def test_strict_mode_reads_the_environment_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, expected in (("1", True), ("yes", True), ("0", False), ("", False), ("off", False)):
        monkeypatch.setenv(safety.STRICT_ENV, text)
        assert safety.strict() is expected
    monkeypatch.delenv(safety.STRICT_ENV)
    assert safety.strict() is False


# -- pure parts -------------------------------------------------------------------
def test_constructor_does_nothing() -> None:
    cb = ProvenanceCallback(store="/nonexistent/folder/never/created")
    assert cb._writer is None and len(cb.run_id) == 12


def test_recorder_revisions_without_keras() -> None:
    run = Run("abcdef012345", "r", "exp", "proj", "ada", "2026-01-01T00:00:00+00:00", 5)
    recorder = RunRecorder(run)
    ctx = RunContext(run, hyperparameters=[Hyperparameter("learning_rate", 0.1, "optimizer", True)])
    start = recorder.start(ctx)
    assert {n.id for n in start.nodes} >= {
        "provkb:run/abcdef012345",
        "provkb:run/abcdef012345/hp/learning_rate/v1",
        "provkb:run/abcdef012345/plan",
    }
    batch = recorder.adaptation("learning_rate", 0.05, 3, "Steering", "t")
    revision = [e for e in batch.edges if e.relation is o.WAS_REVISION_OF]
    assert [(e.src, e.dst) for e in revision] == [
        (
            "provkb:run/abcdef012345/hp/learning_rate/v2",
            "provkb:run/abcdef012345/hp/learning_rate/v1",
        )
    ]
    assert recorder.ledger.current("learning_rate").value == 0.05


def test_attribution_candidates_follow_the_list_order() -> None:
    me = ProvenanceCallback()
    scheduler = keras.callbacks.LearningRateScheduler(step_decay)
    reducer = keras.callbacks.ReduceLROnPlateau()
    lr = model_info.LEARNING_RATE
    a = attribution
    # scheduler before ProvenanceCallback: seen at ProvKB's on_epoch_begin
    assert a.candidates([scheduler, me], me, a.EPOCH_END, a.EPOCH_BEGIN, lr) == [scheduler]
    assert a.candidates([scheduler, me], me, a.EPOCH_BEGIN, a.FIRST_BATCH, lr) == []
    # after: seen at the first batch
    assert a.candidates([me, scheduler], me, a.EPOCH_BEGIN, a.FIRST_BATCH, lr) == [scheduler]
    # plateau before: seen at ProvKB's on_epoch_end; after: at the next on_epoch_begin
    assert a.candidates([reducer, me], me, a.FIRST_BATCH, a.EPOCH_END, lr) == [reducer]
    assert a.candidates([me, reducer], me, a.EPOCH_END, a.EPOCH_BEGIN, lr) == [reducer]
    assert a.candidates([me, reducer], me, a.EPOCH_END, a.TRAIN_END, lr) == [reducer]
    # known callbacks never touch other hyperparameters
    assert a.candidates([scheduler, me], me, a.EPOCH_END, a.EPOCH_BEGIN, "beta_1") == []
    assert a.responsible([], lr, 0.1, 0.05) == "unknown"


def test_keras_scheduler_beats_a_progress_lambda_callback(store: Store, data: Data) -> None:
    """The demo's layout: scheduler, ProvKB, then a LambdaCallback drawing progress."""
    scheduler = keras.callbacks.LearningRateScheduler(lambda e, lr: lr * 0.5 if e == 2 else lr)
    progress = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)
    cb = train(store, data, [scheduler, None, progress])
    found = adaptations(store, cb.run_id)
    assert [(a["a"]["epoch"], a["a"]["callback"]) for a in found] == [(3, "LearningRateScheduler")]


def test_optimizer_name_drops_keras_instance_counter() -> None:
    """Keras names later Adam instances adam_1, adam_2...: the hyperparameter says adam."""
    optimizers = [keras.optimizers.Adam() for _ in range(3)]
    assert [o.name for o in optimizers][1:] != ["adam", "adam"]
    assert {model_info.base_name(o, o.get_config()["name"]) for o in optimizers} == {"adam"}
    chosen = keras.optimizers.Adam(name="adam_2024")
    assert model_info.base_name(chosen, "adam_2024") == "adam"  # looks automatic: read as such
    custom = keras.optimizers.SGD(name="warmup_sgd")
    assert model_info.base_name(custom, "warmup_sgd") == "warmup_sgd"
