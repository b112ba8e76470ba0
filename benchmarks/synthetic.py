"""A synthetic knowledge base, built the way capture builds real runs (docs/graph-model.md).

Each run goes through capture's own graph builder (`capture.recorder.RunRecorder`) with
plain facts, so the nodes, labels, properties and relations are exactly those a
`ProvenanceCallback` writes: project / experiment / run, person, software and machine
agents, environment and script, the plan, ~20 hyperparameter values (5 tracked
optimizer values used by every epoch), shared train/validation datasets, the model and
its layers, per epoch an Epoch activity and its Metrics, learning-rate adaptations
(ReduceLROnPlateau), steering requests and actions (a `set` of the learning rate and a
`note`), early stopping for some runs, and a test evaluation.

`run_batches(spec, i)` yields one run's batches in the order the callback submits
them; `KBSpec` says how big the knowledge base is.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from provkb.capture import ids
from provkb.capture.facts import (
    Dataset,
    Environment,
    Hyperparameter,
    Layer,
    Machine,
    Model,
    Plan,
    Run,
    RunContext,
    Script,
    Software,
    Source,
)
from provkb.capture.recorder import RunRecorder
from provkb.kb.records import GraphBatch
from provkb.kb.steering import Steering, SteeringRequest, resolution_batch
from provkb.ontology import (
    ACTIVITY,
    STEERING_ACTION,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    Prop,
    RunStatus,
)

PROJECT = "bench"
PERSONS = ("ada", "grace", "alan", "barbara", "edsger")
MACHINES = ("gpu-node-1", "gpu-node-2", "cpu-node-1", "cpu-node-2")
OPTIMIZERS: dict[str, dict[str, float]] = {
    # tracked (numeric, live) optimizer values, as Keras 3 reports them
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "ema_momentum": 0.99},
    "sgd": {"momentum": 0.9, "ema_momentum": 0.99},
    "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "ema_momentum": 0.99},
}
LEARNING_RATES = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003)
BATCH_SIZES = (16, 32, 64, 128)
BASE_TIME = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class KBSpec:
    """Size and shape of the synthetic knowledge base."""

    runs: int = 1000
    epochs: int = 100
    runs_per_experiment: int = 100
    datasets: int = 5  # shared (train, validation) pairs
    scripts: int = 10
    seed: int = 0

    @property
    def experiments(self) -> int:
        return max(1, math.ceil(self.runs / self.runs_per_experiment))

    def experiment_of(self, i: int) -> str:
        return f"exp-{i // self.runs_per_experiment:02d}"

    def run_id(self, i: int) -> str:
        return hashlib.sha256(f"provkb-bench/{self.seed}/{i}".encode()).hexdigest()[:12]

    def adaptation_epochs(self) -> tuple[int, ...]:
        """Epochs from which ReduceLROnPlateau lowered the learning rate."""
        return tuple(sorted({max(2, round(self.epochs * f)) for f in (0.4, 0.7)}))

    def steering_epoch(self) -> int:
        return max(2, round(self.epochs * 0.55))


def _iso(t: datetime) -> str:
    return t.isoformat()


def _fingerprint(kind: str, k: int) -> str:
    return hashlib.sha256(f"dataset/{kind}/{k}".encode()).hexdigest()


def _software() -> Software:
    return Software("3.15.1", "tensorflow", "2.21.0", "0.1.0")


def _environment(k: int) -> Environment:
    return Environment(
        python="3.11.7",
        platform="Linux-6.1-x86_64-with-glibc2.36",
        os="Linux 6.1",
        cpu="AMD EPYC",
        gpus=(),
        packages=(f"keras==3.15.{k}", "tensorflow==2.21.0", "numpy==2.4.6", "provkb==0.1.0"),
    )


def _layers(rng: random.Random, cnn: bool) -> tuple[Layer, ...]:
    if cnn:
        specs = [
            ("conv2d", "Conv2D", dict(activation="relu", filters=16, kernel_size=(3, 3))),
            ("max_pooling2d", "MaxPooling2D", {}),
            ("conv2d_1", "Conv2D", dict(activation="relu", filters=32, kernel_size=(3, 3))),
            ("flatten", "Flatten", {}),
            ("dropout", "Dropout", dict(rate=0.25)),
            ("dense", "Dense", dict(activation="softmax", units=10)),
        ]
    else:
        width = rng.choice((64, 128, 256))
        specs = [
            ("dense", "Dense", dict(activation="relu", units=width)),
            ("dropout", "Dropout", dict(rate=rng.choice((0.1, 0.2, 0.3)))),
            ("dense_1", "Dense", dict(activation="relu", units=width // 2)),
            ("dense_2", "Dense", dict(activation="softmax", units=10)),
        ]
    return tuple(
        Layer(index=i, name=name, class_name=cls, params=1000 * (i + 1), **kw)
        for i, (name, cls, kw) in enumerate(specs)
    )


def _hyperparameters(rng: random.Random, optimizer: str, epochs: int) -> list[Hyperparameter]:
    lr = rng.choice(LEARNING_RATES)
    out = [
        Hyperparameter("optimizer", optimizer, Source.OPTIMIZER),
        Hyperparameter("optimizer_class", optimizer.upper(), Source.OPTIMIZER),
        Hyperparameter("learning_rate", lr, Source.OPTIMIZER, tracked=True),
    ]
    out += [
        Hyperparameter(k, v, Source.OPTIMIZER, tracked=True)
        for k, v in OPTIMIZERS[optimizer].items()
    ]
    out += [
        Hyperparameter("use_ema", False, Source.OPTIMIZER),
        Hyperparameter("clipnorm", None, Source.OPTIMIZER),
        Hyperparameter("epochs", epochs, Source.FIT),
        Hyperparameter("batch_size", rng.choice(BATCH_SIZES), Source.FIT),
        Hyperparameter("validation_split", 0.0, Source.FIT),
        Hyperparameter("shuffle", True, Source.FIT),
        Hyperparameter("initial_epoch", 0, Source.FIT),
        Hyperparameter("validation_freq", 1, Source.FIT),
        Hyperparameter("validation_data", True, Source.FIT),
        Hyperparameter("loss", "sparse_categorical_crossentropy", Source.COMPILE),
        Hyperparameter("metrics", json.dumps(["accuracy"]), Source.COMPILE),
        Hyperparameter("augmentation", rng.choice(("none", "flip", "crop")), Source.USER),
        Hyperparameter("seed", rng.randrange(10_000), Source.USER),
    ]
    return out


def _logs(rng: random.Random, n: int, lr: float, quality: float) -> dict[str, float]:
    loss = 2.3 * math.exp(-n * quality / 25) + 0.05 + rng.random() * 0.02
    val_loss = loss * (1.05 + rng.random() * 0.1)
    accuracy = min(0.999, 1 - loss / 2.5)
    return {
        "loss": loss,
        "accuracy": accuracy,
        "val_loss": val_loss,
        "val_accuracy": min(0.999, accuracy - 0.01 * rng.random()),
        "learning_rate": lr,
    }


def run_batches(spec: KBSpec, i: int) -> Iterator[GraphBatch]:
    """The batches of synthetic run `i`, in the order a callback submits them."""
    rng = random.Random(spec.seed * 1_000_003 + i)
    run_id = spec.run_id(i)
    cnn = i % 3 == 0
    optimizer = ("adam", "sgd", "rmsprop")[i % 3 if i % 2 else (i // 2) % 3]
    stopped_early = i % 10 == 9
    planned = spec.epochs + (20 if stopped_early else 0)
    person = PERSONS[i % len(PERSONS)]
    t = BASE_TIME + timedelta(minutes=37 * i)
    run = Run(
        run_id=run_id,
        name=f"{optimizer}-{i:04d}",
        experiment=spec.experiment_of(i),
        project=PROJECT,
        person=person,
        started=_iso(t),
        epochs_planned=planned,
        command_line=f"python train.py --run {i}",
    )
    ctx = RunContext(run)
    ctx.software = _software()
    ctx.machine = Machine(MACHINES[i % len(MACHINES)], "Linux 6.1", "AMD EPYC", 32)
    ctx.environment = _environment(i % 2)
    k = i % spec.scripts
    ctx.script = Script(
        "train.py", hashlib.sha256(f"script/{k}".encode()).hexdigest(), f"{k:040x}", False
    )
    layers = _layers(rng, cnn)
    ctx.plan = Plan(
        json.dumps({"class_name": "Sequential", "layers": [la.name for la in layers]}),
        json.dumps({"name": optimizer}),
        json.dumps({"loss": "sparse_categorical_crossentropy"}),
    )
    ctx.model = Model("sequential", "Sequential", 50_000 + i, 50_000 + i, layers)
    ctx.hyperparameters = _hyperparameters(rng, optimizer, planned)
    d = i % spec.datasets
    ctx.datasets = {
        "train": Dataset(_fingerprint("train", d), f"synthetic-{d}", (8000, 64), "float32", 8000),
        "validation": Dataset(
            _fingerprint("validation", d), f"synthetic-{d}-val", (2000, 64), "float32", 2000
        ),
    }
    recorder = RunRecorder(run)
    yield recorder.start(ctx)

    quality = 0.5 + rng.random()
    adaptations = spec.adaptation_epochs()
    steer_at = spec.steering_epoch()
    for n in range(1, spec.epochs + 1):
        started = t + timedelta(seconds=20 * (n - 1))
        ended = started + timedelta(seconds=19.5)
        if n in adaptations:
            current = recorder.ledger.current("learning_rate")
            assert current is not None
            yield recorder.adaptation(
                "learning_rate", current.value * 0.5, n, "ReduceLROnPlateau", _iso(started)
            )
        if n == steer_at:
            current = recorder.ledger.current("learning_rate")
            assert current is not None
            yield _steer(recorder, person, n, started, "set", current.value * 0.5)
            yield _steer(recorder, person, n, started, "note")
        lr = recorder.ledger.current("learning_rate")
        logs = _logs(rng, n, lr.value if lr else 0.0, quality)
        yield recorder.epoch(n, _iso(started), _iso(ended), 19.5 + rng.random(), logs)
    end = t + timedelta(seconds=20 * spec.epochs)
    status, stopped = RunStatus.COMPLETED, None
    if stopped_early:
        status, stopped = RunStatus.STOPPED_EARLY, spec.epochs
        yield recorder.early_stop(spec.epochs, "EarlyStopping", _iso(end))
    yield recorder.finish(status, _iso(end), stopped, weights_sha256=f"{i:064x}")
    yield recorder.evaluation(
        _iso(end),
        _iso(end + timedelta(seconds=3)),
        {"loss": 0.3 + rng.random() * 0.1, "accuracy": 0.9 + rng.random() * 0.05},
        Dataset(_fingerprint("test", d), f"synthetic-{d}-test", (2000, 64), "float32", 2000),
    )


def _steer(
    recorder: RunRecorder,
    person: str,
    n: int,
    at: datetime,
    action: str,
    value: Any = None,
) -> GraphBatch:
    """A steering request by `person` (as `Steering.submit` stores it) and its application
    before epoch `n` (as capture's steering does): a `set` of the learning rate, a `note`."""
    req = f"{action}{recorder.run_id[:6]}{n}"
    seen = ids.epoch_metrics(recorder.run_id, n - 1)
    request = SteeringRequest(
        request_id=req,
        run_id=recorder.run_id,
        action=action,
        hyperparameter="learning_rate" if action == "set" else None,
        value=value,
        reason="val_loss plateaued" if action == "set" else None,
        note="lowered the learning rate" if action == "note" else None,
        person=person,
        requested_at=_iso(at - timedelta(seconds=5)),
        seen_metrics=seen,
        seen_epoch=n - 1,
    )
    submitted = Steering._request_batch(request)  # noqa: SLF001 (what submit() writes)
    epoch = n if action == "set" else n - 1
    action_id = f"{ids.run(recorder.run_id)}/steering/{req}"
    resolved = resolution_batch(request, "applied", appliedEpoch=epoch, actionId=action_id)
    if hasattr(recorder, "steering"):
        record = recorder.steering(
            req,
            action,
            person,
            epoch,
            _iso(at),
            hyperparameter=request.hyperparameter,
            value=value,
            reason=request.reason,
            note=request.note,
            request_node=request.node_id,
            seen_metrics=seen,
        )
    else:  # capture without steering support: the same records, built here
        record = _steering_record(recorder, request, epoch, _iso(at), action_id)
    return GraphBatch.concat([submitted, resolved, record])


def _steering_record(
    recorder: RunRecorder, request: SteeringRequest, epoch: int, at: str, action_id: str
) -> GraphBatch:
    b = GraphBatch()
    props: dict[str, Any] = {
        Prop.RUN_ID: recorder.run_id,
        "requestId": request.request_id,
        "action": request.action,
        Prop.HYPERPARAMETER: request.hyperparameter,
        Prop.EPOCH: epoch,
        "reason": request.reason,
        "note": request.note,
        "person": request.person,
        Prop.STARTED: at,
        Prop.ENDED: at,
    }
    b.add_node(action_id, ACTIVITY, STEERING_ACTION)
    b.nodes[-1].props = props
    b.add_edge(WAS_ASSOCIATED_WITH, action_id, ids.person(request.person), plan=request.node_id)
    b.add_edge(WAS_INFORMED_BY, action_id, recorder.run_node)
    b.add_edge(USED, action_id, request.node_id)
    if request.seen_metrics:
        b.add_edge(USED, action_id, request.seen_metrics)
    if request.hyperparameter is not None:
        old, new = recorder.revision(b, request.hyperparameter, request.value, epoch)
        props[Prop.OLD_VALUE], props[Prop.NEW_VALUE] = old.value, new.value
        b.add_edge(USED, action_id, old.id)
        b.add_edge(WAS_GENERATED_BY, new.id, action_id)
    return b


def kb_batches(spec: KBSpec, start: int = 0, stop: int | None = None) -> Iterator[GraphBatch]:
    """Every batch of runs `start`..`stop` (default: all), run after run."""
    for i in range(start, spec.runs if stop is None else stop):
        yield from run_batches(spec, i)


def sample_params(spec: KBSpec) -> dict[str, Any]:
    """Real values of the knowledge base for query parameters."""
    middle = spec.runs // 2
    return {
        "run": spec.run_id(middle),
        "run_name": f"{('adam', 'sgd', 'rmsprop')[middle % 3]}-{middle:04d}",
        "experiment": spec.experiment_of(middle),
        "epoch": min(30, spec.epochs) if spec.epochs >= 30 else max(1, spec.epochs // 2),
        "dataset": _fingerprint("train", middle % spec.datasets),
        "learning_rate": 0.001,
    }
