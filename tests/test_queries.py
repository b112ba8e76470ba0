"""The named queries on a known graph, recorded by capture's own `RunRecorder` (builders).

The graph: project `mnist`, experiments `baseline` and `tuning`, four runs:

| run | experiment | optimizer | lr (v1) | batch | epochs done | model layers |
|---|---|---|---|---|---|---|
| sgd-baseline (…a1) | baseline | sgd | 0.001 as float32, step decay at 11, 21, 31 | 32 | 35 | 4 |
| adam (…a2) | baseline | adam | 0.001 | 64 | 35 | 3 |
| rmsprop-tuning (…b3) | tuning | rmsprop | 0.01 | 32 | 20 (stopped early) | 3 |
| adam (…b4) | tuning | adam | 0.001 | 64 | 5 (still running) | none |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from builders import RunBuilder, dataset, facts, ids, write
from helpers import query_rows as rows

from provkb.errors import QueryError
from provkb.kb.store import Store
from provkb.ontology import (
    KIND_BY_LABEL,
    RELATION_BY_TYPE,
    SUBTYPE_BY_LABEL,
    RunStatus,
)
from provkb.queries import QUERIES, coerce_params, get, names, run

# -- the known graph ---------------------------------------------------------------
PERSON_ID = ids.person("alice")
SOFTWARE = facts.Software("3.3.3", "tensorflow", "2.16.1", "0.1.0")
MACHINE = facts.Machine("host1", "Linux", "x86_64", 8)
ENVIRONMENT = facts.Environment(
    "3.11.9", "Linux-x86_64", "Linux", "x86_64", packages=("keras==3.3.3", "tensorflow==2.16.1")
)
SOFTWARE_ID = ids.software(SOFTWARE.version, SOFTWARE.backend)
MACHINE_ID = ids.machine(MACHINE.hostname)
PROJECT_ID = ids.project("mnist")
ENV_ID = ids.environment(ENVIRONMENT.sha256)
TRAIN_FP, VAL_FP, TEST_FP, FASHION_FP = "a" * 64, "b" * 64, "c" * 64, "d" * 64
DATASETS = {
    TRAIN_FP: dataset(TRAIN_FP, "mnist-train"),
    VAL_FP: dataset(VAL_FP, "mnist-val"),
    TEST_FP: dataset(TEST_FP, "mnist-test"),
    FASHION_FP: dataset(FASHION_FP, "fashion-train"),
}
SCRIPT1_SHA, SCRIPT2_SHA = "1" * 64, "2" * 64  # two versions of the same script
LR32 = 0.0010000000474974513  # 0.001 as Keras stores it (float32)
dataset_id, script_id = ids.dataset, ids.script


@dataclass
class RunSpec:
    run_id: str
    name: str
    experiment: str
    optimizer: str
    lr: float
    batch: int
    planned: int
    done: int
    status: str
    day: int
    seconds: float  # every epoch's elapsed time
    script: str
    train: str
    layers: list[dict] = field(default_factory=list)
    extra_hp: dict = field(default_factory=dict)
    lr_schedule: list[tuple[int, float]] = field(default_factory=list)  # (fromEpoch, value)

    @property
    def id(self) -> str:
        return ids.run(self.run_id)

    @property
    def index(self) -> int:
        return RUNS.index(self) + 1

    @property
    def started(self) -> str:
        return f"2026-01-0{self.day}T10:00:00+00:00"


FLATTEN = {"name": "flatten", "class_name": "Flatten"}
RUNS = [
    RunSpec(
        "aaaaaaaaaaa1", "sgd-baseline", "baseline", "sgd", LR32, 32, 35, 35,
        RunStatus.COMPLETED, 1, 2.0, SCRIPT1_SHA, TRAIN_FP,
        layers=[
            FLATTEN,
            {"name": "dense", "class_name": "Dense", "units": 128, "activation": "relu"},
            {"name": "dropout", "class_name": "Dropout", "rate": 0.2},
            {"name": "dense_1", "class_name": "Dense", "units": 10, "activation": "softmax"},
        ],
        extra_hp={"momentum": 0.9},
        lr_schedule=[(11, 0.0005), (21, 0.00025), (31, 0.000125)],
    ),
    RunSpec(
        "aaaaaaaaaaa2", "adam", "baseline", "adam", 0.001, 64, 35, 35,
        RunStatus.COMPLETED, 2, 3.0, SCRIPT1_SHA, TRAIN_FP,
        layers=[
            {"name": "dense", "class_name": "Dense", "units": 64, "activation": "relu"},
            {"name": "dropout", "class_name": "Dropout", "rate": 0.5},
            {"name": "dense_1", "class_name": "Dense", "units": 10, "activation": "softmax"},
        ],
    ),
    RunSpec(
        "bbbbbbbbbbb3", "rmsprop-tuning", "tuning", "rmsprop", 0.01, 32, 30, 20,
        RunStatus.STOPPED_EARLY, 3, 1.5, SCRIPT2_SHA, TRAIN_FP,
        layers=[
            {"name": "conv2d", "class_name": "Conv2D", "filters": 32, "kernel_size": (3, 3),
             "activation": "relu"},
            FLATTEN,
            {"name": "dense", "class_name": "Dense", "units": 10, "activation": "softmax"},
        ],
        extra_hp={"rho": 0.9},
    ),
    RunSpec(
        "bbbbbbbbbbb4", "adam", "tuning", "adam", 0.001, 64, 35, 5,
        RunStatus.RUNNING, 4, 4.0, SCRIPT2_SHA, FASHION_FP,
    ),
]  # fmt: skip
R1, R2, R3, R4 = RUNS


def metrics(spec: RunSpec, n: int) -> dict:
    """Epoch n's logs of a run: distinct per run, loss falling and accuracy rising."""
    i = spec.index
    return {
        "loss": round(2.0 / (n + 5 - i), 6),
        "val_loss": round(2.2 / (n + 5 - i) + 0.01, 6),
        "accuracy": round(0.5 + 0.012 * n + 0.01 * i, 6),
        "val_accuracy": round(0.45 + 0.011 * n + 0.01 * i, 6),
    }


def lr_at(spec: RunSpec, n: int) -> tuple[int, float]:
    """(version, value) of the learning rate in force at epoch n."""
    version, value = 1, spec.lr
    for k, (from_epoch, new) in enumerate(spec.lr_schedule, start=2):
        if from_epoch <= n:
            version, value = k, new
    return version, value


def hp_id(spec: RunSpec, name: str, version: int = 1) -> str:
    return ids.hyperparameter(spec.run_id, name, version)


def hyperparameters(spec: RunSpec) -> list[facts.Hyperparameter]:
    """What capture finds: the optimizer's values (numbers tracked), fit's arguments."""
    optimizer = {"learning_rate": spec.lr, **spec.extra_hp}
    return [
        facts.Hyperparameter("optimizer", spec.optimizer, facts.Source.OPTIMIZER),
        *(
            facts.Hyperparameter(k, v, facts.Source.OPTIMIZER, tracked=True)
            for k, v in optimizer.items()
        ),
        facts.Hyperparameter("batch_size", spec.batch, facts.Source.FIT),
        facts.Hyperparameter("epochs", spec.planned, facts.Source.FIT),
    ]


def model(spec: RunSpec) -> facts.Model | None:
    if not spec.layers:
        return None
    layers = tuple(
        facts.Layer(index, params=1000 * index, **layer) for index, layer in enumerate(spec.layers)
    )
    return facts.Model("sequential", "Sequential", 101770, 101770, layers)


def recorded_run(spec: RunSpec) -> RunBuilder:
    """One run of the known graph, recorded as its training would record it."""
    run = RunBuilder(
        spec.run_id,
        name=spec.name,
        experiment=spec.experiment,
        project="mnist",
        started=spec.started,
        epochs_planned=spec.planned,
        command_line="python train.py",
        hyperparameters=hyperparameters(spec),
        datasets={facts.Role.TRAIN: DATASETS[spec.train], facts.Role.VALIDATION: DATASETS[VAL_FP]},
        software=SOFTWARE,
        machine=MACHINE,
        environment=ENVIRONMENT,
        script=facts.Script("train.py", spec.script, spec.script[:40], False),
        plan=facts.Plan("{}", "{}", "{}"),
        model=model(spec),
    )
    schedule = dict(spec.lr_schedule)
    for n in range(1, spec.done + 1):
        if n in schedule:  # the scheduler sets the rate as epoch n begins
            run.adaptation("learning_rate", schedule[n], n, "LearningRateScheduler")
        run.epoch(n, metrics(spec, n), spec.seconds)
    if spec.status == RunStatus.STOPPED_EARLY:
        run.early_stop(spec.done)
    if spec.status != RunStatus.RUNNING:
        stopped = spec.done if spec.status == RunStatus.STOPPED_EARLY else None
        run.finish(spec.status, stopped_epoch=stopped, weights_sha256="f" * 64)
    if spec.layers:  # test loss better than any epoch's: queries over epochs must not see it
        test = {"loss": 0.001, "accuracy": 0.999, "val_accuracy": 0.999}
        run.evaluation(test, DATASETS[TEST_FP], started=run.now, ended=run.now)
    return run


@pytest.fixture(scope="module")
def kb(store: Store) -> Store:
    """The store holding exactly the known graph (written once for the module)."""
    store.clear()
    write(store, *(recorded_run(spec) for spec in RUNS))
    return store


# -- runs ---------------------------------------------------------------------------
def run_columns(spec: RunSpec) -> dict:
    """The columns that name a run in the rows of `runs` and `runs-using`."""
    return {
        "runId": spec.run_id,
        "name": spec.name,
        "experiment": spec.experiment,
        "status": spec.status,
        "startedAtTime": spec.started,
    }


def run_row(spec: RunSpec) -> dict:
    last = metrics(spec, spec.done)
    return {
        **run_columns(spec),
        "epochsCompleted": spec.done,
        "optimizer": spec.optimizer,
        "learning_rate": spec.lr,
        "batch_size": spec.batch,
        "epochs": spec.planned,
        **last,
        "best_val_accuracy": last["val_accuracy"],  # val_accuracy only rises here
    }


def test_runs_newest_first_with_final_metrics(kb):
    assert rows(kb, "runs") == [run_row(s) for s in (R4, R3, R2, R1)]


def test_runs_of_one_experiment_and_limit(kb):
    assert rows(kb, "runs", experiment="baseline") == [run_row(R2), run_row(R1)]
    assert [r["runId"] for r in rows(kb, "runs", limit="2")] == [R4.run_id, R3.run_id]
    assert rows(kb, "runs", limit=0) == []
    assert rows(kb, "runs", experiment="nope") == []


# -- epochs -------------------------------------------------------------------------
def epoch_rows(spec: RunSpec) -> list[dict]:
    out = [
        {
            "epoch": n,
            **metrics(spec, n),
            "learning_rate": lr_at(spec, n)[1],
            "elapsedSeconds": spec.seconds,
            "metrics": [{"name": k, "value": v} for k, v in sorted(metrics(spec, n).items())],
        }
        for n in range(1, spec.done + 1)
    ]
    return [{k: r[k] for k in EPOCH_COLUMNS} for r in out]


EPOCH_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "elapsedSeconds",
    "metrics",
]


def test_epochs_series_follows_the_learning_rate_revisions(kb):
    got = rows(kb, "epochs", run=R1.run_id)
    assert got == epoch_rows(R1)
    assert [r["learning_rate"] for r in got[8:12]] == [LR32, LR32, 0.0005, 0.0005]
    assert got[-1]["learning_rate"] == 0.000125


def test_epochs_by_name_takes_the_newest_run_even_while_it_runs(kb):
    got = rows(kb, "epochs", run="adam")  # both R2 and R4 are called "adam"
    assert got == epoch_rows(R4)
    assert rows(kb, "epochs", run=R2.id) == epoch_rows(R2)
    assert rows(kb, "epochs", run="no-such-run") == []


# -- hyperparameters-at --------------------------------------------------------------
def hp_rows(lr: tuple[float, int, int]) -> list[dict]:
    value, from_epoch, version = lr
    return [
        {"name": "batch_size", "value": 32, "source": "fit", "fromEpoch": 1, "version": 1},
        {"name": "epochs", "value": 35, "source": "fit", "fromEpoch": 1, "version": 1},
        {
            "name": "learning_rate",
            "value": value,
            "source": "optimizer" if version == 1 else "adaptation",  # what generated it
            "fromEpoch": from_epoch,
            "version": version,
        },
        {"name": "momentum", "value": 0.9, "source": "optimizer", "fromEpoch": 1, "version": 1},
        {"name": "optimizer", "value": "sgd", "source": "optimizer", "fromEpoch": 1, "version": 1},
    ]


@pytest.mark.parametrize(
    ("epoch", "lr"),
    [
        (1, (LR32, 1, 1)),
        (10, (LR32, 1, 1)),
        (11, (0.0005, 11, 2)),
        (30, (0.00025, 21, 3)),
        (35, (0.000125, 31, 4)),
        (99, (0.000125, 31, 4)),
    ],
)
def test_hyperparameters_at_epoch(kb, epoch, lr):
    beyond = (  # R1 recorded 35 epochs: a later one is said to be beyond them
        f"epoch {epoch} is beyond the last epoch of the run (35): these values were in force "
        "at its end"
    )
    expected = [{**row, "note": beyond if epoch > 35 else None} for row in hp_rows(lr)]
    assert rows(kb, "hyperparameters-at", run=R1.run_id, epoch=str(epoch)) == expected


def test_hyperparameters_at_needs_an_epoch_from_one(kb):
    with pytest.raises(QueryError, match="'epoch'"):
        rows(kb, "hyperparameters-at", run=R1.run_id)
    with pytest.raises(QueryError, match="'epoch'.*at least 1"):
        rows(kb, "hyperparameters-at", run=R1.run_id, epoch=0)


# -- lineage --------------------------------------------------------------------------
def lineage_rows(spec: RunSpec) -> list[dict]:
    run_hps = {
        "optimizer": spec.optimizer,
        "learning_rate": spec.lr,
        **spec.extra_hp,
        "batch_size": spec.batch,
        "epochs": spec.planned,
    }
    expected = [
        (spec.id, "Activity", "TrainingRun", spec.name, None, 1),
        (dataset_id(spec.train), "Entity", "Dataset", "mnist-train", None, 1),
        (PERSON_ID, "Agent", "Person", "alice", None, 1),
        *[
            (f"{spec.id}/model/layer/{i}", "Entity", "Layer", layer["name"], None, 1)
            for i, layer in enumerate(spec.layers)
        ],
        *[
            (hp_id(spec, name), "Entity", "Hyperparameter", name, value, 2)
            for name, value in run_hps.items()
        ],
        (dataset_id(VAL_FP), "Entity", "Dataset", "mnist-val", None, 2),
        (script_id(spec.script), "Entity", "Script", "train.py", None, 2),
        (ENV_ID, "Entity", "Environment", None, None, 2),
        (
            f"provkb:experiment/{spec.experiment}",
            "Activity",
            "Experiment",
            spec.experiment,
            None,
            2,
        ),
        (SOFTWARE_ID, "Agent", "SoftwareAgent", "keras", None, 2),
        (MACHINE_ID, "Agent", "Machine", "host1", None, 2),
        (PROJECT_ID, "Activity", "Project", "mnist", None, 3),
    ]
    expected = [(*row, None) for row in expected]  # `via`: derived directly
    # every later learning rate, the adaptation that generated it, the metrics it read
    # and its callback agent, each grouped under (`via`) its adaptation
    changes = [ids.adaptation(spec.run_id, at, "learning_rate") for at, _ in spec.lr_schedule]
    for k, ((at, value), change) in enumerate(zip(spec.lr_schedule, changes, strict=True)):
        expected += [
            (hp_id(spec, "learning_rate", k + 2), "Entity", "Hyperparameter", "learning_rate",
             value, 2, change),
            (change, "Activity", "Adaptation", None, None, 3, change),
            (ids.epoch_metrics(spec.run_id, at - 1), "Entity", "Metrics", None, None, 4, change),
        ]  # fmt: skip
    if changes:
        callback = ids.callback_agent("LearningRateScheduler")
        expected.append(
            (callback, "Agent", "SoftwareAgent", "LearningRateScheduler", None, 4, changes[0])
        )
    keys = ("id", "kind", "label", "name", "value", "distance", "via")
    return [
        dict(zip(keys, row, strict=True)) for row in sorted(expected, key=lambda r: (r[5], r[0]))
    ]


def test_lineage_of_a_model(kb):
    expected = lineage_rows(R1)
    assert rows(kb, "lineage", run=R1.run_id) == expected
    assert rows(kb, "lineage", run=f"{R1.id}/model") == expected
    assert rows(kb, "lineage", run="sgd-baseline") == expected


def test_lineage_without_a_model_is_empty(kb):
    assert rows(kb, "lineage", run=R4.run_id) == []


# -- layers (Q2) ------------------------------------------------------------------------
def test_layers_one_row_per_layer_attribute(kb):
    def row(index, layer, cls, attribute=None, value=None):
        return {
            "index": index,
            "layer": layer,
            "class": cls,
            "attribute": attribute,
            "value": value,
        }

    assert rows(kb, "layers", run=R1.run_id) == [
        row(0, "flatten", "Flatten"),
        row(1, "dense", "Dense", "activation", "relu"),
        row(1, "dense", "Dense", "units", 128),
        row(2, "dropout", "Dropout", "rate", 0.2),
        row(3, "dense_1", "Dense", "activation", "softmax"),
        row(3, "dense_1", "Dense", "units", 10),
    ]
    assert rows(kb, "layers", run=f"{R3.id}/model") == [
        row(0, "conv2d", "Conv2D", "activation", "relu"),
        row(0, "conv2d", "Conv2D", "filters", 32),
        row(0, "conv2d", "Conv2D", "kernelSize", [3, 3]),
        row(1, "flatten", "Flatten"),
        row(2, "dense", "Dense", "activation", "softmax"),
        row(2, "dense", "Dense", "units", 10),
    ]
    assert rows(kb, "layers", run=R4.run_id) == []


# -- seed queries (Keras-Prov Q1, Q3, Q4, Q7) ---------------------------------------------
def q1_row(spec: RunSpec, epoch: int) -> dict:
    m = metrics(spec, epoch)
    return {
        "optimizer": spec.optimizer,
        "run": spec.name,
        "runId": spec.run_id,
        "loss": m["loss"],
        "val_loss": m["val_loss"],
    }


def test_seed_q1_loss_at_epoch_30_per_optimizer_for_lr_0_001(kb):
    # R1's float32 0.001 matches; R4 has the rate but never reached epoch 30
    assert rows(kb, "seed-q1") == [q1_row(R2, 30), q1_row(R1, 30)]
    assert rows(kb, "seed-q1", tolerance=0) == [q1_row(R2, 30)]
    assert rows(kb, "seed-q1", epoch="5") == [q1_row(R2, 5), q1_row(R4, 5), q1_row(R1, 5)]
    assert rows(kb, "seed-q1", learning_rate="0.01") == []
    assert rows(kb, "seed-q1", learning_rate="1e-2", epoch=20) == [q1_row(R3, 20)]


def test_seed_q3_average_epoch_time_and_loss_per_optimizer(kb):
    def mean_loss(*specs):
        losses = [metrics(s, n)["loss"] for s in specs for n in range(1, s.done + 1)]
        return pytest.approx(sum(losses) / len(losses))

    assert rows(kb, "seed-q3") == [
        {
            "optimizer": "adam",
            "runs": 2,
            "epochs": 40,
            "avgEpochSeconds": pytest.approx((35 * 3.0 + 5 * 4.0) / 40),
            "avgLoss": mean_loss(R2, R4),
        },
        {
            "optimizer": "rmsprop",
            "runs": 1,
            "epochs": 20,
            "avgEpochSeconds": 1.5,
            "avgLoss": mean_loss(R3),
        },
        {
            "optimizer": "sgd",
            "runs": 1,
            "epochs": 35,
            "avgEpochSeconds": 2.0,
            "avgLoss": mean_loss(R1),
        },
    ]


def q4_row(spec: RunSpec, layers, metric: str, epoch: int) -> dict:
    return {
        "runId": spec.run_id,
        "run": spec.name,
        "optimizer": spec.optimizer,
        "learning_rate": spec.lr,
        "layers": layers,
        "metric": metric,
        "value": metrics(spec, epoch)[metric],
        "epoch": epoch,
    }


def test_seed_q4_run_with_the_best_metric(kb):
    assert rows(kb, "seed-q4") == [q4_row(R2, 3, "val_accuracy", 35)]
    # the test metrics' loss (0.001) is not an epoch's: R1's last epoch is the best
    assert rows(kb, "seed-q4", metric="loss", mode="min") == [q4_row(R1, 4, "loss", 35)]
    assert rows(kb, "seed-q4", metric="val_loss") == [q4_row(R4, None, "val_loss", 1)]
    assert rows(kb, "seed-q4", metric="no_such_metric") == []


def test_seed_q7_combinations_by_average_training_time(kb):
    assert rows(kb, "seed-q7") == [
        {
            "optimizer": "rmsprop",
            "learning_rate": 0.01,
            "batch_size": 32,
            "runs": 1,
            "avgTrainingSeconds": 30.0,
        },
        {
            "optimizer": "adam",
            "learning_rate": 0.001,
            "batch_size": 64,
            "runs": 2,
            "avgTrainingSeconds": pytest.approx((105.0 + 20.0) / 2),
        },
        {
            "optimizer": "sgd",
            "learning_rate": LR32,
            "batch_size": 32,
            "runs": 1,
            "avgTrainingSeconds": 70.0,
        },
    ]


# -- runs-using ---------------------------------------------------------------------------
def using_row(spec: RunSpec, entity: str, entity_type: str, role: str | None) -> dict:
    return {
        **run_columns(spec),
        "entityType": entity_type,
        "entity": entity,
        "role": role,
    }


def test_runs_using_a_dataset(kb):
    train = [using_row(s, dataset_id(TRAIN_FP), "Dataset", "train") for s in (R3, R2, R1)]
    assert rows(kb, "runs-using", entity=TRAIN_FP) == train
    assert rows(kb, "runs-using", entity=dataset_id(TRAIN_FP)) == train
    assert rows(kb, "runs-using", entity="mnist-train") == train
    assert rows(kb, "runs-using", entity="mnist-val") == [
        using_row(s, dataset_id(VAL_FP), "Dataset", "validation") for s in (R4, R3, R2, R1)
    ]
    # only an evaluation used the test set, no run did
    assert rows(kb, "runs-using", entity="mnist-test") == []


def test_runs_using_a_script_version_or_path(kb):
    assert rows(kb, "runs-using", entity=SCRIPT1_SHA) == [
        using_row(s, script_id(SCRIPT1_SHA), "Script", None) for s in (R2, R1)
    ]
    assert rows(kb, "runs-using", entity="train.py") == [
        using_row(R4, script_id(SCRIPT2_SHA), "Script", None),
        using_row(R3, script_id(SCRIPT2_SHA), "Script", None),
        using_row(R2, script_id(SCRIPT1_SHA), "Script", None),
        using_row(R1, script_id(SCRIPT1_SHA), "Script", None),
    ]
    assert rows(kb, "runs-using", entity="nothing") == []


# -- the registry ---------------------------------------------------------------------------
EXPECTED_NAMES = {
    "runs",
    "epochs",
    "hyperparameters-at",
    "lineage",
    "layers",
    "seed-q1",
    "seed-q3",
    "seed-q4",
    "seed-q7",
    "runs-using",
    "gain-changes",
    "steering-impact",
    "steering-history",
    "seed-q5",  # issue 16 (queries/library_sessions.py)
    "seed-q6",
    "study-lineage",
    "study-trial-status",
    "reproductions",  # issue 17 §4 (queries/reproduce.py)
    "plan-vs-run",  # issue 17 §1 (queries/library_plans.py)
    "predictions",  # issue 17 §2 (queries/library_predictions.py)
    "confusion-matrix",
    "steps",  # issue 18 §1 (queries/library_steps.py)
}


def test_registry_holds_the_documented_queries():
    assert set(QUERIES) == EXPECTED_NAMES
    assert names() == sorted(EXPECTED_NAMES)
    for name, query in QUERIES.items():
        assert query.name == name and get(name) is query
        assert query.summary and query.description and query.cypher
        for p in query.params:
            assert p.type in (int, float, str) and p.help
            assert p.required or p.default is None or isinstance(p.default, p.type)


def test_query_texts_spell_only_ontology_labels_and_types():
    label = re.compile(r"\(\w*((?::\w+)+)")  # (n:A:B ...
    rel_types = re.compile(r"\[\w*:([\w|]+)")  # [r:T|U*1..10]
    for query in QUERIES.values():
        text = query.cypher
        for group in label.findall(text):
            for lab in group.strip(":").split(":"):
                assert lab in SUBTYPE_BY_LABEL or lab in KIND_BY_LABEL, (query.name, lab)
        for group in rel_types.findall(text):
            for rel in group.split("|"):
                assert rel in RELATION_BY_TYPE, (query.name, rel)
        for forbidden in ("id(", "elementId", "apoc.") + ("CREATE", "MERGE", "SET "):
            assert forbidden not in text, (query.name, forbidden)
        # collect in a WITH, never sliced inline (`collect(x)[a..b]`: docs, library.py)
        assert not re.search(r"collect\([^()]*\)\s*\[", text), query.name


def test_unknown_query_name_lists_known_ones_and_suggests():
    with pytest.raises(
        QueryError, match=r"unknown query 'nope': known queries: .*\bepochs, gain-changes\b"
    ):
        get("nope")
    with pytest.raises(QueryError, match="did you mean 'epochs'"):
        get("epoch")


def test_coerce_params_converts_cli_strings_and_fills_defaults():
    assert coerce_params("seed-q1", {"epoch": "12", "learning_rate": "1e-3"}) == {
        "epoch": 12,
        "learning_rate": 0.001,
        "tolerance": 1e-6,
        "experiment": None,
        "hpLearningRate": "learning_rate",
        "hpOptimizer": "optimizer",
    }
    params = coerce_params(get("runs"), {})
    assert params["experiment"] is None and params["limit"] == 100
    assert coerce_params("runs", {"limit": 5.0, "experiment": None})["limit"] == 5
    assert coerce_params("epochs", {"run": 123})["run"] == "123"
    assert coerce_params("seed-q4", {"mode": "min"})["mode"] == "min"


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("epochs", {}, "needs parameter 'run'"),
        ("hyperparameters-at", {"run": "x"}, "needs parameter 'epoch'"),
        ("epochs", {"run": "x", "rnu": "y"}, "no parameter 'rnu'.*did you mean 'run'"),
        ("seed-q3", {"epoch": 3}, "no parameter 'epoch'; its parameters: experiment"),
        ("runs", {"hpOptimizer": "x"}, "no parameter 'hpOptimizer'"),
        ("seed-q1", {"epoch": "thirty"}, "'epoch' of query 'seed-q1' must be an integer"),
        ("seed-q1", {"epoch": 2.5}, "'epoch'.*must be an integer"),
        ("seed-q1", {"epoch": True}, "'epoch'.*must be an integer"),
        ("seed-q1", {"learning_rate": "fast"}, "'learning_rate'.*must be a number"),
        ("seed-q1", {"learning_rate": "nan"}, "'learning_rate'.*must be a number"),
        ("epochs", {"run": ["a"]}, "'run'.*must be a string"),
        ("seed-q4", {"mode": "best"}, "'mode'.*must be one of max, min"),
        ("runs", {"limit": "-1"}, "'limit'.*at least 0"),
    ],
)
def test_coerce_params_refuses_bad_parameters(name, raw, message):
    with pytest.raises(QueryError, match=message):
        coerce_params(name, raw)


def test_run_checks_parameters_before_querying(kb):
    with pytest.raises(QueryError, match="needs parameter 'run'"):
        run(kb, "epochs")
    with pytest.raises(QueryError, match="unknown query"):
        run(kb, "no-such-query")
