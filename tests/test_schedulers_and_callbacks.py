"""Steering under schedules, the callbacks' own settings and continued training (issue
13, h7): what the record says is what Keras did. Real Keras training on scikit-learn's
digits, on both engines."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import keras
import numpy as np
import pytest
from helpers import one, query_rows, rows, unique
from sklearn.datasets import load_digits

from provkb import ontology as o
from provkb.capture.callback import ProvenanceCallback
from provkb.kb.steering import Steering
from provkb.kb.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

LR, STEERED_LR = 0.01, 0.003
HP, ADAPT = o.HYPERPARAMETER.label, o.ADAPTATION.label
ASSOC, USED = o.WAS_ASSOCIATED_WITH.rel_type, o.USED.rel_type


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data[:256] / 16.0).astype("float32"), data.target[:256]


def make_model() -> keras.Model:
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def decay(epoch: int, lr: float) -> float:
    """A schedule that sets its own value every epoch (10% less each epoch)."""
    return LR * 0.9**epoch


class LearningRates(keras.callbacks.Callback):
    """The learning rate Keras' first training batch of each epoch used (1-based)."""

    def __init__(self) -> None:
        super().__init__()
        self.used: dict[int, float] = {}
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if batch == 0:
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self.used[self._epoch] = lr


class Asker(keras.callbacks.Callback):
    """Submits a steering request when epoch `at` (1-based) begins and waits until the
    training's poller claimed it (so it is applied at that epoch's end)."""

    def __init__(self, cb: ProvenanceCallback, store: Store, at: int, **request: Any) -> None:
        super().__init__()
        self.cb, self.steering, self.at, self.request = cb, Steering(store), at, request
        self.request_id = ""

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if epoch + 1 != self.at:
            return
        assert self.cb.writer.flush(30)
        request = self.steering.submit(self.cb.run_id, person="grace", **self.request)
        self.request_id = request.request_id
        deadline = time.monotonic() + 60
        while self.steering.get(self.request_id).status == "pending":
            assert time.monotonic() < deadline, "the training never claimed it"
            time.sleep(0.05)


def steer_lr() -> dict[str, Any]:
    return {"action": "set", "hyperparameter": "learning_rate", "value": STEERED_LR}


def versions(store: Store, run_id: str) -> list[dict[str, Any]]:
    return rows(
        store,
        f"MATCH (h:{HP} {{runId: $r, name: 'learning_rate'}}) OPTIONAL MATCH "
        f"(h)-[:{o.WAS_GENERATED_BY.rel_type}]->(a) RETURN h.value AS value, h.source AS "
        "source, h.fromEpoch AS fromEpoch, coalesce([k IN labels(a) WHERE k IN $kinds], []) AS by "
        "ORDER BY h.version",
        r=run_id,
        kinds=[ADAPT, o.STEERING_ACTION.label],
    )


# -- 1. a steered value overrides the schedule, and the record says what Keras used ---------
def test_a_steered_learning_rate_pauses_the_schedule(store: Store, digits) -> None:
    cb = ProvenanceCallback(experiment=unique("sched"), store=store, poll_interval=0.1)
    seen, asker = LearningRates(), Asker(cb, store, 3, **steer_lr())
    schedule = keras.callbacks.LearningRateScheduler(decay)
    make_model().fit(*digits, epochs=6, batch_size=64, verbose=0,
                     callbacks=[schedule, asker, seen, cb])  # fmt: skip
    assert cb.writer.flush(30)
    # Keras used the schedule until the request (applied at the end of epoch 3), then it
    for n in (1, 2, 3):
        assert seen.used[n] == pytest.approx(decay(n - 1, 0), rel=1e-6)
    for n in (4, 5, 6):
        assert seen.used[n] == pytest.approx(STEERED_LR, rel=1e-6)
    # the requester is told, the action says which schedule it paused
    request = Steering(store).get(asker.request_id)
    assert request.status == "applied"
    assert request.extra[o.Prop.APPLIED_EPOCH] == 4
    assert "paused from epoch 4" in request.status_reason
    assert "LearningRateScheduler" in request.status_reason
    paused = one(
        store,
        f"MATCH (a:{o.STEERING_ACTION.label} {{runId: $r}}) RETURN a.{o.Prop.PAUSED_SCHEDULES}",
        r=cb.run_id,
    )
    assert paused == ["LearningRateScheduler"]
    # every epoch used the version in force, and that is the value Keras used
    for n in range(1, 7):
        at = {r["name"]: r for r in query_rows(store, "hyperparameters-at", run=cb.run_id,
                                                 epoch=n)}  # fmt: skip
        assert at["learning_rate"]["value"] == pytest.approx(seen.used[n], rel=1e-6)
        used = one(
            store,
            f"MATCH (e:{o.EPOCH.label} {{runId: $r, epoch: $n}})-[:{USED}]->"
            f"(h:{HP} {{name: 'learning_rate'}}) RETURN h.value",
            r=cb.run_id,
            n=n,
        )
        assert used == pytest.approx(seen.used[n], rel=1e-6)
    # each revision's source is the activity that generated it
    sources = [(v["source"], v["by"]) for v in versions(store, cb.run_id)]
    action = [o.STEERING_ACTION.label]
    assert sources == [("optimizer", []), ("adaptation", [ADAPT]), ("adaptation", [ADAPT]),
                       ("steering", action)]  # fmt: skip
    # the schedule is back for the model's next fit
    assert "on_epoch_begin" not in vars(schedule)


def test_values_a_callback_sets_after_steering_are_not_labelled_steering(
    store: Store, digits
) -> None:
    cb = ProvenanceCallback(experiment=unique("sched"), store=store, poll_interval=0.1)
    asker = Asker(cb, store, 2, **steer_lr())

    def bump(epoch: int, logs: Any = None) -> None:  # a custom schedule ProvKB cannot pause
        if epoch == 3:
            cb.model.optimizer.learning_rate.assign(0.02)

    custom = keras.callbacks.LambdaCallback(on_epoch_begin=bump)
    make_model().fit(*digits, epochs=5, batch_size=64, verbose=0,
                     callbacks=[asker, custom, cb])  # fmt: skip
    assert cb.writer.flush(30)
    found = versions(store, cb.run_id)
    assert [(v["value"], v["source"], v["fromEpoch"]) for v in found] == [
        (LR, "optimizer", 1),
        (STEERED_LR, "steering", 3),
        (0.02, "adaptation", 4),
    ]
    assert found[2]["by"] == [ADAPT]


# -- 2. the callbacks' own settings are the plan of their adaptations -----------------------
def keep(epoch: int, lr: float) -> float:
    """The schedule of the settings test: the learning rate as it is."""
    return lr


def test_callback_settings_are_the_plan_of_their_adaptations(store: Store, digits, tmp_path):
    cb = ProvenanceCallback(experiment=unique("plans"), store=store)
    # min_delta 10: no epoch after the first improves, so both callbacks act at epoch 2's end
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0,
                                         restore_best_weights=True)  # fmt: skip
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                                min_delta=10.0, min_lr=1e-4)  # fmt: skip
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"))
    schedule = keras.callbacks.LearningRateScheduler(keep)
    make_model().fit(*digits, epochs=5, batch_size=64, verbose=0,
                     callbacks=[schedule, stop, plateau, checkpoint, cb])  # fmt: skip
    assert cb.writer.flush(30)
    run = one(store, f"MATCH (r:{o.TRAINING_RUN.label} {{runId: $r}}) RETURN r", r=cb.run_id)
    assert run["status"] == o.RunStatus.STOPPED_EARLY and run[o.Prop.STOPPED_EPOCH] == 2
    assert run[o.Prop.RESTORED_EPOCH] == 1  # EarlyStopping restored epoch 1's weights
    plans = {
        r["callback"]: r
        for r in rows(
            store,
            f"MATCH (p:{o.PLAN.label} {{runId: $r}})-[:{o.WAS_ATTRIBUTED_TO.rel_type}]->(g) "
            f"RETURN g.name AS callback, p.{o.Prop.SETTINGS} AS settings, "
            f"p.{o.Prop.SCHEDULE_SOURCE} AS source, p.id AS id",
            r=cb.run_id,
        )
    }
    assert set(plans) == {"EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler",
                          "ModelCheckpoint"}  # fmt: skip
    early = json.loads(plans["EarlyStopping"]["settings"])
    assert early["monitor"] == "loss" and early["patience"] == 1
    assert early["min_delta"] == 10.0 and early["restore_best_weights"] is True
    reduce = json.loads(plans["ReduceLROnPlateau"]["settings"])
    assert (reduce["monitor"], reduce["factor"], reduce["patience"], reduce["min_lr"]) == (
        "loss", 0.5, 0, 1e-4)  # fmt: skip
    assert plans["LearningRateScheduler"]["source"].startswith("def keep(")
    assert json.loads(plans["ModelCheckpoint"]["settings"])["filepath"].endswith("best.keras")
    adaptations = {
        r["kind"]: r
        for r in rows(
            store,
            f"MATCH (a:{ADAPT} {{runId: $r}})-[w:{ASSOC}]->(g) RETURN a.kind AS kind, "
            f"a.epoch AS epoch, a.{o.Prop.AFTER_TRAINING} AS after, a.newValue AS value, "
            f"a.{o.Prop.RESTORED_EPOCH} AS restored, w.{o.Prop.PLAN} AS plan, g.name AS agent",
            r=cb.run_id,
        )
    }
    stopped = adaptations["early_stopping"]
    assert (stopped["epoch"], stopped["restored"]) == (2, 1)
    assert stopped["plan"] == plans["EarlyStopping"]["id"]
    # the reduction at epoch 2's end came after the last epoch: no epoch used it
    reduced = adaptations["schedule"]
    assert reduced["after"] is True and reduced["value"] == pytest.approx(LR / 2)
    assert reduced["agent"] == "ReduceLROnPlateau" and reduced["plan"] == plans[
        "ReduceLROnPlateau"]["id"]  # fmt: skip
    epochs_using = rows(
        store,
        f"MATCH (e:{o.EPOCH.label} {{runId: $r}})-[:{USED}]->(h:{HP} {{name: 'learning_rate'}}) "
        "RETURN DISTINCT h.value AS value",
        r=cb.run_id,
    )
    assert epochs_using == [{"value": LR}]


# -- 3. continued training --------------------------------------------------------------------
def test_a_second_fit_of_one_model_continues_the_first_run(store: Store, digits) -> None:
    model, experiment = make_model(), unique("continued")
    first = ProvenanceCallback(experiment=experiment, store=store)
    model.fit(*digits, epochs=1, batch_size=64, verbose=0, callbacks=[first])
    first_run = first.run_id
    second = ProvenanceCallback(experiment=experiment, store=store)  # a new callback
    model.fit(*digits, epochs=1, batch_size=64, verbose=0, callbacks=[second])
    model.fit(*digits, epochs=1, batch_size=64, verbose=0, callbacks=[second])  # and the same
    third_run = second.run_id
    assert second.writer.flush(30) and first.writer.flush(30)
    runs = rows(
        store,
        f"MATCH (r:{o.TRAINING_RUN.label} {{experiment: $e}}) OPTIONAL MATCH (r)-[u:{USED}]->"
        f"(m:{o.MODEL.label})-[:{o.WAS_GENERATED_BY.rel_type}]->(p) "
        f"RETURN r.runId AS run, r.{o.Prop.CONTINUED_FROM} AS continued, p.runId AS used, "
        f"u.{o.Prop.ROLE} AS role ORDER BY r.startedAtTime",
        e=experiment,
    )
    assert len(runs) == 3 and runs[0] == {"run": first_run, "continued": None, "used": None,
                                          "role": None}  # fmt: skip
    second_run = runs[1]["run"]
    assert runs[1] == {"run": second_run, "continued": first_run, "used": first_run,
                       "role": "initial model"}  # fmt: skip
    assert runs[2] == {"run": third_run, "continued": second_run, "used": second_run,
                       "role": "initial model"}  # fmt: skip
    derived = one(
        store,
        f"MATCH (m:{o.MODEL.label} {{runId: $r}})-[:{o.WAS_DERIVED_FROM.rel_type}]->"
        f"(p:{o.MODEL.label}) RETURN p.runId",
        r=third_run,
    )
    assert derived == second_run


# -- 4. the demo shows an early-stopping adaptation --------------------------------------------
def test_the_demo_stops_its_early_stopping_run_early(store: Store) -> None:
    from rich.console import Console

    from provkb.demo import run_demo

    result = run_demo(store=store, console=Console(file=io.StringIO()))  # type: ignore[arg-type]
    run_id = result.runs["rmsprop-early-stop"]
    run = one(store, f"MATCH (r:{o.TRAINING_RUN.label} {{runId: $r}}) RETURN r", r=run_id)
    assert run["status"] == o.RunStatus.STOPPED_EARLY
    assert run[o.Prop.EPOCHS_COMPLETED] < 10 and run[o.Prop.STOPPED_EPOCH] < 10
    stop = one(
        store,
        f"MATCH (a:{ADAPT} {{runId: $r, kind: 'early_stopping'}}) RETURN a",
        r=run_id,
    )
    assert stop[o.Prop.EPOCH] == run[o.Prop.STOPPED_EPOCH]
    assert stop[o.Prop.RESTORED_EPOCH] is not None


def test_the_final_weights_hash_is_of_the_weights_early_stopping_restored(
    store: Store, digits
) -> None:
    from provkb.capture.model_info import weights_sha256

    cb = ProvenanceCallback(experiment=unique("restored"), store=store)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0,
                                         restore_best_weights=True)  # fmt: skip
    model = make_model()
    model.fit(*digits, epochs=5, batch_size=64, verbose=0, callbacks=[cb, stop])  # stop after
    assert cb.writer.flush(30)
    stored = one(
        store,
        f"MATCH (m:{o.MODEL.label} {{runId: $r}}) RETURN m.{o.Prop.WEIGHTS_SHA256}",
        r=cb.run_id,
    )
    assert stored == weights_sha256(model)  # the weights fit returned with (epoch 1's)
