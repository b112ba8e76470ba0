"""Run-level steering end to end: real Keras training, a real store, a second process.

A person steers a running `fit` (from another process through `provkb steer`, or
through `provkb.steer` from another thread); the callback's poller claims the request,
the training thread applies it at the next epoch end, and the graph records it
(docs/graph-model.md, "Steering"). Each test checks what the training really used
(the optimizer's value, the weight updates, what user code read), not only what was
stored.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import keras
import numpy as np
import pytest
from builders import RunBuilder
from helpers import cli, one, rows, unique
from sklearn.datasets import load_digits

import provkb
from provkb import ontology as o
from provkb.capture.callback import ProvenanceCallback
from provkb.capture.steering import RUN_ENDED, SteeringPoller
from provkb.config import resolve_settings
from provkb.errors import SteeringRejected
from provkb.kb.steering import APPLIED, REJECTED, Steering, SteeringRequest, now_iso
from provkb.kb.store import Store
from provkb.queries import registry

pytestmark = [pytest.mark.slow]

RUN, HP, ACTION, REQUEST = (
    o.TRAINING_RUN.label,
    o.HYPERPARAMETER.label,
    o.STEERING_ACTION.label,
    o.STEERING_REQUEST.label,
)
USED, GEN, ASSOC = o.USED.rel_type, o.WAS_GENERATED_BY.rel_type, o.WAS_ASSOCIATED_WITH.rel_type
INFORMED, REVISION = o.WAS_INFORMED_BY.rel_type, o.WAS_REVISION_OF.rel_type

LR, NEW_LR = 0.01, 0.05
# Who trains. The session's store is shared and machine/software agents act on behalf
# of every trainer: test_capture expects only "ada" there, whatever runs first.
TRAINER = "ada"
MAX_EPOCHS = 30  # the steering lands in the paced first epochs; the rest run fast
PACE = 0.3  # seconds each epoch waits while the other side has not finished


# -- helpers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data[:256] / 16.0).astype("float32"), data.target[:256]


def make_model(optimizer: Any = None) -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(LR),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def requests_of(store: Store, run_id: str) -> list[SteeringRequest]:
    found = rows(
        store,
        f"MATCH (q:{REQUEST}) WHERE q.runId = $r RETURN properties(q) AS q "
        f"ORDER BY q.requestedAtTime",
        r=run_id,
    )
    return [SteeringRequest.from_props(row["q"]) for row in found]


def seconds_to_apply(request: SteeringRequest) -> float:
    """From the request to its resolution by the training (both clocks: the store's
    times are written by the requester and by the training process)."""
    resolved = datetime.fromisoformat(request.extra["resolvedAtTime"])
    return (resolved - datetime.fromisoformat(request.requested_at)).total_seconds()


def wait_for_epoch(store: Store, run_id: str, epoch: int, timeout: float = 60.0) -> None:
    """Until the metrics of `epoch` are in the store (what a person would have seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = one(
            store,
            "MATCH (m:Metrics) WHERE m.runId = $r AND m.epoch >= $e RETURN count(m) AS n",
            r=run_id,
            e=epoch,
        )
        if n:
            return
        time.sleep(0.05)
    raise AssertionError(f"epoch {epoch} of run {run_id} never reached the store")


class Person(threading.Thread):
    """Another client: once epoch `after` of the run is in the store, does `act`."""

    def __init__(self, store: Store, run_id: str, act: Callable[[], Any], after: int = 2):
        super().__init__(daemon=True)
        self.store, self.run_id, self.act, self.after = store, run_id, act, after
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            wait_for_epoch(self.store, self.run_id, self.after)
            self.result = self.act()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.done.set()

    def outcome(self) -> Any:
        self.join(120)
        if self.error is not None:
            raise self.error
        return self.result


class Pace(keras.callbacks.Callback):
    """Slow epochs down while the person acts; near the last epochs, wait for them
    (at most `limit` seconds), so that training never ends first on a slow machine."""

    def __init__(self, done: threading.Event, seconds: float = PACE, limit: float = 90.0):
        super().__init__()
        self.done, self.seconds, self.limit = done, seconds, limit

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.done.is_set():
            return
        near_end = epoch + 1 >= (self.params or {}).get("epochs", MAX_EPOCHS) - 3
        self.done.wait(self.limit if near_end else self.seconds)


class LearningRates(keras.callbacks.Callback):
    """The optimizer's learning rate as each epoch begins (index e-1 for epoch e)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.values.append(float(self.model.optimizer.learning_rate))


# -- (a) learning rate from a second process ----------------------------------------
def test_learning_rate_set_from_a_second_process(store: Store, digits) -> None:
    cb = ProvenanceCallback(
        experiment=unique("steer-lr"), store=store, poll_interval=0.2, person=TRAINER
    )
    person = Person(
        store,
        cb.run_id,
        lambda: cli(
            store,
            "steer",
            cb.run_id,
            "--set",
            f"learning_rate={NEW_LR}",
            "--reason",
            "loss plateau",
            "--person",
            "grace",
        ),  # fmt: skip
    )
    lrs = LearningRates()
    person.start()
    history = make_model().fit(
        *digits, epochs=MAX_EPOCHS, batch_size=64, verbose=0,
        callbacks=[lrs, cb, Pace(person.done)],
    )  # fmt: skip
    result = person.outcome()
    assert cb.writer.flush(30)
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout and "in force from epoch" in result.stdout

    [request] = requests_of(store, cb.run_id)
    assert request.status == APPLIED and request.person == "grace"
    first = request.extra["appliedEpoch"]  # the first epoch trained with the new value
    assert request.seen_epoch >= 2 and first > request.seen_epoch
    assert first < len(history.history["loss"])
    print(f"\nlearning rate: request to application {seconds_to_apply(request):.2f} s")

    # What the optimizer really used, epoch by epoch.
    assert lrs.values[: first - 1] == pytest.approx([LR] * (first - 1))
    assert lrs.values[first - 1 :] == pytest.approx([NEW_LR] * (len(lrs.values) - first + 1))

    # The graph: action, revision chain, what the person saw, who asked.
    run = cb.run_id
    action = one(store, f"MATCH (a:{ACTION}) WHERE a.runId = $r RETURN properties(a) AS a", r=run)
    assert action["id"] == f"provkb:run/{run}/steering/{request.request_id}"
    assert action["action"] == "set" and action["hyperparameter"] == "learning_rate"
    assert action["epoch"] == first and action["reason"] == "loss plateau"
    assert action["oldValue"] == pytest.approx(LR) and action["newValue"] == NEW_LR
    assert action["person"] == "grace"
    v1, v2 = f"provkb:run/{run}/hp/learning_rate/v1", f"provkb:run/{run}/hp/learning_rate/v2"
    linked = rows(
        store,
        f"MATCH (new:{HP} {{id: $v2}})-[:{REVISION}]->(old:{HP} {{id: $v1}}), "
        f"(new)-[:{GEN}]->(a:{ACTION} {{id: $a}}), (a)-[:{USED}]->(old), "
        f"(a)-[:{USED}]->(q:{REQUEST} {{requestId: $q}}), "
        f"(a)-[:{USED}]->(m:Metrics), (a)-[w:{ASSOC}]->(p:Person), "
        f"(a)-[:{INFORMED}]->(:{RUN} {{runId: $r}}) "
        f"RETURN new.source AS source, new.fromEpoch AS fromEpoch, new.version AS version, "
        f"new.steerable AS steerable, m.epoch AS seen, p.name AS person, w.plan AS plan",
        v1=v1,
        v2=v2,
        a=action["id"],
        q=request.request_id,
        r=run,
    )
    assert linked == [
        {
            "source": "steering",
            "fromEpoch": first,
            "version": 2,
            "steerable": True,
            "seen": request.seen_epoch,
            "person": "grace",
            "plan": request.node_id,
        }
    ]
    # The epochs used the value in force, and hyperparameters-at answers with it.
    used = rows(
        store,
        f"MATCH (e:Epoch)-[:{USED}]->(h:{HP} {{name: 'learning_rate'}}) "
        f"WHERE e.runId = $r AND e.epoch IN [$before, $first] RETURN e.epoch AS e, h.id AS h "
        f"ORDER BY e",
        r=run,
        before=first - 1,
        first=first,
    )
    assert used == [{"e": first - 1, "h": v1}, {"e": first, "h": v2}]

    def lr_at(epoch: int) -> dict[str, Any]:
        found = registry.run(store, "hyperparameters-at", run=run, epoch=epoch).rows
        return next(r for r in found if r["name"] == "learning_rate")

    assert lr_at(first - 1)["value"] == pytest.approx(LR)
    assert lr_at(first - 1)["source"] == "optimizer"
    assert lr_at(first)["value"] == NEW_LR and lr_at(first)["source"] == "steering"
    # Our own change is not mistaken for a callback's adaptation.
    assert rows(store, "MATCH (a:Adaptation) WHERE a.runId = $r RETURN a.id", r=run) == []
    history_rows = registry.run(store, "steering-history", run=run).rows
    assert [(h["status"], h["appliedEpoch"], h["person"]) for h in history_rows] == [
        ("applied", first, "grace")
    ]


# -- (b) momentum: the new value is the one the train step uses ---------------------
STEP_LR = 0.01


def mean_output(y_true: Any, y_pred: Any) -> Any:
    return keras.ops.mean(y_pred)


def constant_gradient_model(momentum: float) -> keras.Model:
    """w' = w - update, with a gradient of exactly 1 at every step (loss = mean(w * 1))."""
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(STEP_LR, momentum=momentum),
        loss=mean_output,
    )
    return model


class WeightSteps(keras.callbacks.Callback):
    """Per epoch, the change of the single weight made by each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[list[float]] = []
        self._w = 0.0

    def _weight(self) -> float:
        return float(self.model.layers[0].kernel.numpy()[0, 0])

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.steps.append([])
        self._w = self._weight()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        w = self._weight()
        self.steps[-1].append(w - self._w)
        self._w = w


ONES = (np.ones((16, 1), "float32"), np.zeros((16, 1), "float32"))  # 4 batches of 4


def test_momentum_set_from_a_second_process_changes_the_updates(store: Store) -> None:
    cb = ProvenanceCallback(
        experiment=unique("steer-momentum"), store=store, poll_interval=0.2, person=TRAINER
    )
    person = Person(
        store, cb.run_id, lambda: cli(store, "steer", cb.run_id, "--set", "momentum=0.0")
    )
    steps = WeightSteps()
    person.start()
    constant_gradient_model(momentum=0.9).fit(
        *ONES, epochs=MAX_EPOCHS, batch_size=4, shuffle=False, verbose=0,
        callbacks=[steps, cb, Pace(person.done)],
    )  # fmt: skip
    result = person.outcome()
    assert result.returncode == 0, result.stderr
    assert cb.writer.flush(30)
    [request] = requests_of(store, cb.run_id)
    first = request.extra["appliedEpoch"]
    print(f"\nmomentum: request to application {seconds_to_apply(request):.2f} s")
    assert 3 <= first < len(steps.steps)
    # With momentum 0.9 each step is larger than the last (lr, 1.9 lr, 2.71 lr, ...);
    # from the first epoch with momentum 0, every step is exactly lr * gradient.
    for epoch in range(2, first):
        assert all(s < -1.5 * STEP_LR for s in steps.steps[epoch - 1]), (epoch, steps.steps)
    for epoch in range(first, len(steps.steps) + 1):
        assert steps.steps[epoch - 1] == pytest.approx([-STEP_LR] * 4, abs=1e-5), epoch
    assert rows(
        store,
        f"MATCH (h:{HP}) WHERE h.runId = $r AND h.name = 'momentum' "
        f"RETURN h.value AS v, h.fromEpoch AS f, h.source AS s ORDER BY h.version",
        r=cb.run_id,
    ) == [
        {"v": pytest.approx(0.9), "f": 1, "s": "optimizer"},
        {"v": 0.0, "f": first, "s": "steering"},
    ]


def test_without_a_rebuilt_train_step_keras_ignores_a_new_momentum() -> None:
    """Why the callback rebuilds the train function: Keras compiled 0.9 into the step."""

    class SetMomentum(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                self.model.optimizer.momentum = 0.0  # no make_train_function(force=True)

    steps = WeightSteps()
    model = constant_gradient_model(momentum=0.9)
    model.fit(*ONES, epochs=4, batch_size=4, shuffle=False, verbose=0,
              callbacks=[steps, SetMomentum()])  # fmt: skip
    assert model.optimizer.momentum == 0.0
    assert all(s < -1.5 * STEP_LR for s in steps.steps[3])  # still momentum 0.9


# -- (c, d) stop and note -----------------------------------------------------------
def test_stop_and_note(store: Store, digits) -> None:
    cb = ProvenanceCallback(
        experiment=unique("steer-stop"), store=store, poll_interval=0.2, person=TRAINER
    )
    person = Person(
        store,
        cb.run_id,
        lambda: provkb.steer(
            cb.run_id,
            note="val_loss flat since epoch 2",
            stop=True,
            reason="not worth it",
            person="ada",
            store=store,
            wait=True,
            timeout=60,
        ),  # fmt: skip
    )
    person.start()
    history = make_model().fit(
        *digits, epochs=MAX_EPOCHS, batch_size=64, verbose=0, callbacks=[cb, Pace(person.done)]
    )
    note, stop = person.outcome()
    assert cb.writer.flush(30)
    assert (note.action, note.status, stop.action, stop.status) == (
        "note", APPLIED, "stop", APPLIED,
    )  # fmt: skip
    last = stop.extra["appliedEpoch"]
    print(f"\nstop: request to application {seconds_to_apply(stop):.2f} s")
    assert len(history.history["loss"]) == last < MAX_EPOCHS  # ended after that epoch
    run = one(store, f"MATCH (r:{RUN}) WHERE r.runId = $r RETURN properties(r) AS r", r=cb.run_id)
    assert run["status"] == o.RunStatus.STOPPED
    assert run["stoppedEpoch"] == last and run["epochsCompleted"] == last
    assert rows(store, "MATCH (a:Adaptation) WHERE a.runId = $r RETURN a.id", r=cb.run_id) == []
    actions = rows(
        store,
        f"MATCH (a:{ACTION})-[:{ASSOC}]->(p:Person) WHERE a.runId = $r "
        f"RETURN a.action AS action, a.epoch AS epoch, a.note AS note, a.reason AS reason, "
        f"p.name AS person ORDER BY action",
        r=cb.run_id,
    )
    assert actions == [
        {
            "action": "note",
            "epoch": note.extra["appliedEpoch"],
            "note": "val_loss flat since epoch 2",
            "reason": "not worth it",
            "person": "ada",
        },
        {"action": "stop", "epoch": last, "note": None, "reason": "not worth it", "person": "ada"},
    ]
    assert note.extra["appliedEpoch"] >= 2  # the latest epoch finished when it was applied


# -- (e) rejections ------------------------------------------------------------------
def test_rejected_requests_are_recorded_and_change_nothing(store: Store, digits) -> None:
    cb = ProvenanceCallback(
        experiment=unique("steer-reject"), store=store, poll_interval=0.2, person=TRAINER
    )

    def ask() -> tuple[subprocess.CompletedProcess[str], BaseException | None]:
        unknown = cli(store, "steer", cb.run_id, "--set", "dropout=0.5", "--no-wait")
        try:
            provkb.steer(cb.run_id, set={"learning_rate": -0.1}, store=store)
        except SteeringRejected as exc:
            return unknown, exc
        return unknown, None

    person = Person(store, cb.run_id, ask)
    lrs = LearningRates()
    person.start()
    make_model().fit(
        *digits, epochs=MAX_EPOCHS, batch_size=64, verbose=0,
        callbacks=[lrs, cb, Pace(person.done)],
    )  # fmt: skip
    unknown, negative = person.outcome()
    assert cb.writer.flush(30)
    assert unknown.returncode == 1
    assert "rejected" in unknown.stderr and "'dropout' is not a steerable" in unknown.stderr
    assert isinstance(negative, SteeringRejected) and "must be in (0, inf)" in str(negative)
    # The run has finished: refused too.
    with pytest.raises(SteeringRejected, match="completed, not running"):
        provkb.steer(cb.run_id, stop=True, store=store)

    found = requests_of(store, cb.run_id)
    assert [(r.status, r.hyperparameter or r.action) for r in found] == [
        (REJECTED, "dropout"),
        (REJECTED, "learning_rate"),
        (REJECTED, "stop"),
    ]
    assert all(r.status_reason for r in found)
    # Nothing changed: one version of each value, no action, the same learning rate.
    assert lrs.values == pytest.approx([LR] * len(lrs.values))
    assert one(
        store, f"MATCH (h:{HP}) WHERE h.runId = $r AND h.version > 1 RETURN count(h) AS n",
        r=cb.run_id,
    ) == 0  # fmt: skip
    assert rows(store, f"MATCH (a:{ACTION}) WHERE a.runId = $r RETURN a.id", r=cb.run_id) == []
    assert cb.steering_log == []  # nothing reached the training


def test_requests_the_training_cannot_apply_are_rejected(store: Store, digits) -> None:
    """A learning-rate schedule cannot be set (refused at application when a request
    bypassed validation), and what is still pending when training ends is rejected."""
    schedule = keras.optimizers.schedules.ExponentialDecay(LR, decay_steps=4, decay_rate=0.9)
    cb = ProvenanceCallback(
        experiment=unique("steer-cannot"), store=store, poll_interval=0.1, person=TRAINER
    )
    steering = Steering(store)
    submitted: dict[str, str] = {}

    def raw_request(**fields: Any) -> SteeringRequest:
        request = SteeringRequest(
            request_id=uuid.uuid4().hex[:12], run_id=cb.run_id, person="mallory",
            requested_at=now_iso(), **fields,
        )  # fmt: skip
        store.write(Steering._request_batch(request))  # stored pending, unchecked
        return request

    class Asker(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                assert cb.writer.flush(30)
                with pytest.raises(SteeringRejected, match="not a steerable"):
                    steering.submit(cb.run_id, "set", "learning_rate", NEW_LR)
                submitted["schedule"] = raw_request(
                    action="set", hyperparameter="learning_rate", value=NEW_LR
                ).request_id
                deadline = time.monotonic() + 30
                while steering.get(submitted["schedule"]).status == "pending":
                    assert time.monotonic() < deadline
                    time.sleep(0.05)

        def on_train_end(self, logs: Any = None) -> None:  # before the callback's own
            assert cb.writer.flush(30)
            submitted["late"] = steering.submit(cb.run_id, "stop").request_id

    model = make_model(keras.optimizers.SGD(schedule))
    model.fit(*digits, epochs=4, batch_size=64, verbose=0, callbacks=[Asker(), cb])
    assert cb.writer.flush(30)
    refused = steering.get(submitted["schedule"])
    assert refused.status == REJECTED and "LearningRateSchedule" in refused.status_reason
    late = steering.wait(submitted["late"], timeout=10)
    assert late.status == REJECTED and late.status_reason == RUN_ENDED
    assert {a.status for a in cb.steering_log} == {REJECTED}  # (the stop, if it was claimed)
    assert rows(store, f"MATCH (a:{ACTION}) WHERE a.runId = $r RETURN a.id", r=cb.run_id) == []
    assert rows(  # (the schedule's own changes are adaptations)
        store, f"MATCH (h:{HP}) WHERE h.runId = $r AND h.source = 'steering' RETURN h.id",
        r=cb.run_id,
    ) == []  # fmt: skip
    assert isinstance(model.optimizer._learning_rate, keras.optimizers.schedules.ExponentialDecay)


# -- (f) exactly once with two pollers ------------------------------------------------
def test_each_request_is_applied_once_with_two_pollers(store: Store, digits) -> None:
    cb = ProvenanceCallback(
        experiment=unique("steer-twice"), store=store, poll_interval=0.05, person=TRAINER
    )
    extra: list[SteeringPoller] = []

    class SecondPoller(keras.callbacks.Callback):
        """Another poller of the same run, handing what it claims to the training."""

        def on_train_begin(self, logs: Any = None) -> None:
            poller = cb.steering_poller
            assert poller is not None
            extra.append(
                SteeringPoller(store, cb.run_id, interval=0.05, deliver=poller.deliver).start()
            )

        def on_train_end(self, logs: Any = None) -> None:
            extra[0].stop()

    def ask() -> list[str]:
        steering = Steering(store)
        ids = [steering.submit(cb.run_id, "note", note=f"n{i}").request_id for i in range(20)]
        ids.append(steering.submit(cb.run_id, "set", "learning_rate", NEW_LR).request_id)
        deadline = time.monotonic() + 60
        while any(steering.get(i).status not in (APPLIED, REJECTED) for i in ids):
            assert time.monotonic() < deadline, "requests not applied"
            time.sleep(0.1)
        return ids

    person = Person(store, cb.run_id, ask)
    person.start()
    make_model().fit(
        *digits, epochs=MAX_EPOCHS, batch_size=64, verbose=0,
        callbacks=[cb, SecondPoller(), Pace(person.done)],
    )  # fmt: skip
    ids = person.outcome()
    assert cb.writer.flush(30)
    applied = [a.request_id for a in cb.steering_log]
    assert sorted(applied) == sorted(ids)  # every request once, none twice
    assert all(a.status == APPLIED for a in cb.steering_log)
    assert one(
        store, f"MATCH (a:{ACTION}) WHERE a.runId = $r RETURN count(a) AS n", r=cb.run_id
    ) == len(ids)
    versions = rows(
        store,
        f"MATCH (h:{HP}) WHERE h.runId = $r AND h.name = 'learning_rate' RETURN h.version AS v",
        r=cb.run_id,
    )
    assert sorted(v["v"] for v in versions) == [1, 2]
    claimers = {r.extra["claimedBy"] for r in requests_of(store, cb.run_id)}
    assert claimers <= {extra[0].claimer, *{a.claimed_by for a in cb.steering_log}}
    print(f"\ntwo pollers: claims {extra[0].claimed} by the second, {len(ids)} in all")


# -- (g) a user Steerable ------------------------------------------------------------
def test_a_user_steerable_changes_what_user_code_reads(store: Store, digits) -> None:
    strength = provkb.Steerable("augment_strength", 0.0)
    seen: list[float] = []

    class Augmenter(keras.callbacks.Callback):  # stands for a data pipeline reading it
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            seen.append(strength.value)

    cb = ProvenanceCallback(
        experiment=unique("steer-user"),
        store=store,
        poll_interval=0.2,
        steerable=[strength],
        person=TRAINER,
    )

    def ask() -> list[SteeringRequest]:
        with pytest.raises(SteeringRejected, match="must be a number"):
            provkb.steer(cb.run_id, set={"augment_strength": "strong"}, store=store)
        return provkb.steer(
            cb.run_id, set={"augment_strength": 0.5}, store=store, wait=True, timeout=60
        )

    person = Person(store, cb.run_id, ask)
    person.start()
    make_model().fit(
        *digits, epochs=MAX_EPOCHS, batch_size=64, verbose=0,
        callbacks=[Augmenter(), cb, Pace(person.done)],
    )  # fmt: skip
    [request] = person.outcome()
    assert cb.writer.flush(30)
    first = request.extra["appliedEpoch"]
    assert seen[: first - 1] == [0.0] * (first - 1)
    assert seen[first - 1 :] == [0.5] * (len(seen) - first + 1)
    assert strength.value == 0.5 and strength.history[-1] == (0.5, first)
    assert rows(
        store,
        f"MATCH (h:{HP}) WHERE h.runId = $r AND h.name = 'augment_strength' "
        f"RETURN h.value AS v, h.source AS s, h.steerable AS st, h.fromEpoch AS f "
        f"ORDER BY h.version",
        r=cb.run_id,
    ) == [
        {"v": 0.0, "s": "user", "st": True, "f": 1},
        {"v": 0.5, "s": "steering", "st": True, "f": first},
    ]
    flags = rows(
        store,
        f"MATCH (h:{HP}) WHERE h.runId = $r AND h.version = 1 "
        f"RETURN h.name AS n, h.steerable AS st",
        r=cb.run_id,
    )
    steerable = {f["n"]: f["st"] for f in flags}
    assert all(isinstance(v, bool) for v in steerable.values())  # on every value
    assert steerable["learning_rate"] and steerable["augment_strength"]
    assert not steerable["epochs"] and not steerable["batch_size"] and not steerable["loss"]


# -- batches, an unreachable store, polling cost -------------------------------------
def test_steering_every_n_batches_applies_inside_the_epoch(store: Store) -> None:
    cb = ProvenanceCallback(
        experiment=unique("steer-batch"), store=store, poll_interval=0.05,
        steer_every_n_batches=1, person=TRAINER,
    )  # fmt: skip
    steering = Steering(store)
    per_batch: list[tuple[int, int, float]] = []

    class Asker(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch + 1

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            per_batch.append((self.epoch, batch, float(self.model.optimizer.learning_rate)))
            if (self.epoch, batch) == (2, 1):
                assert cb.writer.flush(30)
                request = steering.submit(cb.run_id, "set", "learning_rate", NEW_LR)
                deadline = time.monotonic() + 30
                while steering.get(request.request_id).status == "pending":
                    assert time.monotonic() < deadline
                    time.sleep(0.02)

    constant_gradient_model(momentum=0.0).fit(
        *ONES, epochs=3, batch_size=4, shuffle=False, verbose=0, callbacks=[Asker(), cb]
    )
    assert cb.writer.flush(30)
    changed = [(e, b) for e, b, lr in per_batch if lr == pytest.approx(NEW_LR)]
    assert changed[0] == (2, 2)  # from the batch after the one it was claimed in
    action = one(
        store, f"MATCH (a:{ACTION}) WHERE a.runId = $r RETURN properties(a) AS a", r=cb.run_id
    )
    assert action["epoch"] == 2 and action["batch"] == 1


def test_a_run_with_steering_switched_off_refuses_requests(store: Store, digits) -> None:
    cb = ProvenanceCallback(
        experiment=unique("steer-off"), store=store, steering=False, person=TRAINER
    )
    refused: list[str] = []

    class Asker(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                assert cb.writer.flush(30)
                with pytest.raises(SteeringRejected, match="not steerable") as caught:
                    provkb.steer(cb.run_id, note="anyone there?", store=store)
                refused.append(str(caught.value))

    make_model().fit(*digits, epochs=2, batch_size=64, verbose=0, callbacks=[Asker(), cb])
    assert cb.writer.flush(30) and refused and cb.steering_poller is None
    assert rows(
        store,
        f"MATCH (h:{HP}) WHERE h.runId = $r AND h.steerable RETURN h.name",
        r=cb.run_id,
    ) == []  # fmt: skip


def test_training_is_unaffected_when_the_store_is_down(
    digits, caplog: pytest.LogCaptureFixture
) -> None:
    down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    cb = ProvenanceCallback(experiment="down", store=down, poll_interval=0.05, flush_timeout=2)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="provkb"):
        history = make_model().fit(*digits, epochs=3, batch_size=64, verbose=0, callbacks=[cb])
    assert len(history.history["loss"]) == 3
    assert time.monotonic() - started < 30
    unavailable = [r for r in caplog.records if "steering is unavailable" in r.getMessage()]
    assert len(unavailable) == 1 and cb.steering_poller is None  # warned once


def test_polling_cost(store: Store) -> None:
    """One poll (the claim call) when nothing is pending, and a claim of one request."""
    run = uuid.uuid4().hex[:12]
    steering = Steering(store)
    RunBuilder(run).write(store)  # a running run
    steering.claim(run, "warm-up")
    empty = []
    for _ in range(50):
        t = time.perf_counter()
        assert steering.claim(run, "cost") == []
        empty.append(time.perf_counter() - t)
    one_request = []
    for i in range(20):
        steering.submit(run, "note", note=f"n{i}")
        t = time.perf_counter()
        assert len(steering.claim(run, "cost")) == 1
        one_request.append(time.perf_counter() - t)
    print(
        f"\nclaim call on {store.engine}: median {statistics.median(empty) * 1000:.2f} ms "
        f"with nothing pending (50 calls), {statistics.median(one_request) * 1000:.2f} ms "
        f"claiming one request (20 calls)"
    )
    assert statistics.median(empty) < 0.25
