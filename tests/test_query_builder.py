"""The query builder (`provkb.queries.build`, issue 16 §3): questions built from picks,
without typing Cypher, answered on both engines like the named queries (Keras-Prov Q1,
Q3, Q7) or like values computed from the graph's own definition; whatever a person
types into a field that is a name (a field, subject, operator, aggregate, sort key or
column name) is refused unless the ontology's whitelist has it, and whatever is a value
(filter values, hyperparameter names, metric keys) only ever travels as a parameter.

The graph: test_queries' four runs (experiments baseline and tuning, captured by
`RunRecorder`) and test_ui_app's known graph (experiment opt-sweep with an adaptation
and a steering action, study dl-steer with 24 iterations and a queue edit).
"""

from __future__ import annotations

import json
import shlex

import pytest
from builders import write
from helpers import cli, query_rows
from test_queries import R1, R2, RUNS, lr_at, metrics, recorded_run
from test_ui_app import ADAM, ITERATIONS, STUDY_NAME, app_env, button, frames, gain, open_page

from provkb.errors import QueryError
from provkb.kb import console_guard
from provkb.kb.store import Store
from provkb.queries import Aggregate, Filter, Sort, build
from provkb.queries.builder import SUBJECTS, field_kind
from provkb.ui import common

__all__ = ["app_env"]  # the fixture, imported for the page test

INJECTION = "x}) DETACH DELETE n //"
LR_TOLERANCE = 1e-6  # seed-q1's default relative tolerance on the initial learning rate


@pytest.fixture(scope="module")
def kb(store: Store) -> Store:
    """The store holding both known graphs (written once for the module)."""
    from test_ui_app import build_known_graph

    store.clear()
    write(store, *(recorded_run(spec) for spec in RUNS))
    build_known_graph(store)
    return store


def q1(epoch: int = 30, learning_rate: float = 0.001, **shorthands):
    """Keras-Prov Q1 as a person picks it: epochs at `epoch` of runs whose initial
    learning rate is `learning_rate` (within seed-q1's tolerance)."""
    low, high = sorted(learning_rate * (1 + s * LR_TOLERANCE) for s in (-1, 1))
    return build(
        "epochs",
        columns=["optimizer", "run", "runId", "metric.loss", "metric.val_loss"],
        filters=[
            ("epoch", "=", epoch),
            ("hp.learning_rate", ">=", low),
            Filter("hp.learning_rate", "<=", high),
        ],
        sort=["optimizer", "run", "runId"],
        **shorthands,
    )


def q3(experiment: str):
    """Keras-Prov Q3: average epoch time and average loss per optimizer."""
    return build(
        "epochs",
        group_by=["optimizer"],
        aggregates=[
            Aggregate("count", name="epochs"),
            ("avg", "elapsedSeconds", "avgEpochSeconds"),
            ("avg", "metric.loss", "avgLoss"),
        ],
        filters=[("optimizer", "is not null")],
        experiment=experiment,
    )


def q7():
    """Keras-Prov Q7: hyperparameter combinations ordered by average training time."""
    return build(
        "runs",
        group_by=["optimizer", "hp.learning_rate", "hp.batch_size"],
        aggregates=[("count", None, "runs"), ("avg", "epochSeconds", "avgTrainingSeconds")],
        filters=[("epochsCompleted", ">", 0), ("epochSeconds", "is not null")],
        sort=["avgTrainingSeconds"],
    )


Q1_CYPHER = """\
MATCH (e:Epoch)-[:WAS_INFORMED_BY]->(r:TrainingRun)
WHERE e.epoch = $p0
OPTIONAL MATCH (m:Metrics)-[:WAS_GENERATED_BY]->(e)
MATCH (r)-[:USED]->(hp0:Hyperparameter {name: $hp0Name})
OPTIONAL MATCH (r)-[:USED]->(hp1:Hyperparameter {name: $hp1Name})
WITH e, r, m, hp0, hp1
WHERE hp0.value >= $p1
  AND hp0.value <= $p2
WITH hp1.value AS optimizer,
     r.name AS run,
     r.runId AS runId,
     m[$p3] AS loss,
     m[$p4] AS val_loss
RETURN optimizer, run, runId, loss, val_loss
ORDER BY optimizer IS NULL, optimizer, run IS NULL, run, runId IS NULL, runId,
         loss IS NULL, loss, val_loss IS NULL, val_loss
LIMIT $limit"""


def test_q1_generates_parameterised_cypher_from_ontology_names_only() -> None:
    q = q1()
    assert q.cypher == Q1_CYPHER
    assert q.params == {
        "p0": 30,
        "hp0Name": "learning_rate",
        "p1": pytest.approx(0.001 * (1 - LR_TOLERANCE)),
        "p2": pytest.approx(0.001 * (1 + LR_TOLERANCE)),
        "hp1Name": "optimizer",
        "p3": "metric.loss",
        "p4": "metric.val_loss",
        "limit": 100,
    }
    assert q.columns == ("optimizer", "run", "runId", "loss", "val_loss")
    assert console_guard.check(q.cypher)  # the read-only console takes it as it is
    cli = q.cli()
    assert cli.startswith("provkb cypher 'MATCH (e:Epoch)") and "-p p0=30" in cli


@pytest.mark.parametrize(
    ("picks", "named"),
    [
        ({}, {}),
        ({"epoch": 5}, {"epoch": 5}),
        ({"epoch": 20, "learning_rate": 0.01}, {"epoch": 20, "learning_rate": 0.01}),
        ({"experiment": "baseline"}, {"experiment": "baseline"}),
    ],
)
def test_q1_answers_as_the_named_query(kb, picks, named) -> None:
    expected = query_rows(kb, "seed-q1", **named)
    assert expected  # a question with an answer
    assert q1(**picks).run(kb).rows == expected


@pytest.mark.parametrize("experiment", ["baseline", "tuning"])
def test_q3_answers_as_the_named_query(kb, experiment) -> None:
    got = q3(experiment).run(kb)
    assert got.columns == ["optimizer", "epochs", "avgEpochSeconds", "avgLoss"]
    named = query_rows(kb, "seed-q3", experiment=experiment)
    assert [{k: r[k] for k in got.columns} for r in named] == [
        {**row, "avgEpochSeconds": pytest.approx(row["avgEpochSeconds"])}
        | {"avgLoss": pytest.approx(row["avgLoss"])}
        for row in got.rows
    ]


def test_q7_answers_as_the_named_query(kb) -> None:
    got = q7().run(kb)
    assert got.columns == ["optimizer", "learning_rate", "batch_size", "runs", "avgTrainingSeconds"]
    assert got.rows == query_rows(kb, "seed-q7")


def test_the_generated_command_line_runs_in_provkb_cypher(kb) -> None:
    q = q7()
    done = cli(kb, *shlex.split(q.cli())[1:], "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == q.run(kb).rows == query_rows(kb, "seed-q7")


def test_learning_rate_adaptations_after_epoch_20(kb) -> None:
    """Question 4: which learning-rate changes did the schedules make from epoch 20 on,
    in the baseline experiment, latest first?"""
    q = build(
        "adaptations",
        columns=["run", "epoch", "oldValue", "newValue", "callback"],
        filters=[("hyperparameter", "=", "learning_rate"), ("epoch", ">=", 20)],
        experiment="baseline",
        sort=[("epoch", "desc")],
    )
    expected = []
    for spec in RUNS:
        for from_epoch, value in spec.lr_schedule:
            if spec.experiment == "baseline" and from_epoch >= 20:
                old = lr_at(spec, from_epoch - 1)[1]
                expected.append([spec.name, from_epoch, old, value, "LearningRateScheduler"])
    expected.sort(key=lambda row: -row[1])
    assert (
        [list(r.values()) for r in q.run(kb).rows]
        == expected
        == [
            ["sgd-baseline", 31, 0.00025, 0.000125, "LearningRateScheduler"],
            ["sgd-baseline", 21, 0.0005, 0.00025, "LearningRateScheduler"],
        ]
    )


def test_completed_runs_in_a_time_range_by_their_summary(kb) -> None:
    """Question 5: completed runs started in January 2026 from the 2nd on whose best
    val_accuracy is above 0.5: that best, its epoch and the mean loss over their epochs."""
    q = build(
        "runs",
        columns=["name", "summary.max.val_accuracy", "summary.maxEpoch.val_accuracy"]
        + ["summary.mean.loss"],
        filters=[("summary.max.val_accuracy", ">", "0.5")],
        status="completed",
        since="2026-01-02",
        until="2026-01-31T23:59:59+00:00",
        sort=[Sort("max_val_accuracy", descending=True)],
    )
    done = [s for s in RUNS if s.status == "completed" and s.started[:10] >= "2026-01-02"]
    expected = []
    for spec in done:
        series = [metrics(spec, n) for n in range(1, spec.done + 1)]
        best = max(m["val_accuracy"] for m in series)
        first = next(n for n, m in enumerate(series, 1) if m["val_accuracy"] == best)
        mean = sum(m["loss"] for m in series) / len(series)
        expected.append([spec.name, best, first, pytest.approx(mean)])
    assert [list(r.values()) for r in q.run(kb).rows] == expected
    assert [s.run_id for s in done] == [R2.run_id]


def test_every_version_of_a_hyperparameter(kb) -> None:
    q = build(
        "hyperparameters",
        columns=["runId", "name", "value", "fromEpoch", "version", "source"],
        filters=[("name", "=", "learning_rate"), ("runId", "=", R1.run_id)],
        sort=["version"],
    )
    got = q.run(kb).rows
    versions = [1] + [k for k, _ in enumerate(R1.lr_schedule, 2)]
    starts = [1] + [e for e, _ in R1.lr_schedule]
    assert [r["fromEpoch"] for r in got] == starts and [r["version"] for r in got] == versions
    assert [r["value"] for r in got] == [lr_at(R1, e)[1] for e in starts]
    assert [r["source"] for r in got] == ["optimizer"] + ["adaptation"] * len(R1.lr_schedule)


def test_steering_actions_and_studies(kb) -> None:
    steering = build(
        "steering",
        columns=["runId", "run", "study", "action", "hyperparameter", "epoch", "iteration"]
        + ["oldValue", "newValue", "person"],
    ).run(kb)
    assert steering.rows == [
        {
            "runId": ADAM,
            "run": "adam-steered",
            "study": None,
            "action": "set",
            "hyperparameter": "learning_rate",
            "epoch": 9,
            "iteration": None,
            "oldValue": 0.005,
            "newValue": 0.001,
            "person": "ada",
        },
        {
            "runId": None,
            "run": None,
            "study": STUDY_NAME,
            "action": "respace",
            "hyperparameter": None,
            "epoch": None,
            "iteration": 10,
            "oldValue": json.dumps({"learning_rate": [0.01, 0.05, 0.01]}),
            "newValue": json.dumps({"learning_rate": [0.03, 0.07, 0.01]}),
            "person": "ada",
        },
    ]
    # only the runs' actions of an optimizer: the queue edit has no run
    adam = build("steering", columns=["runId"], optimizer="adam").run(kb)
    assert adam.rows == [{"runId": ADAM}]
    studies = build(
        "studies", columns=["name", "status", "trials", "maxGain", "minGain"], status="running"
    ).run(kb)
    gains = [gain(i) for i in range(1, ITERATIONS + 1)]
    assert studies.rows == [
        {
            "name": STUDY_NAME,
            "status": "running",
            "trials": ITERATIONS,
            "maxGain": max(gains),
            "minGain": min(gains),
        }
    ]


def test_iteration_gains_grouped_by_learning_rate(kb) -> None:
    q = build(
        "runs",
        filters=[("study", "=", STUDY_NAME)],
        group_by=["hp.learning_rate"],
        aggregates=["count", ("max", "gain"), ("min", "gain"), ("avg", "gain")],
        sort=[("max_gain", "desc")],
        limit=3,
    )
    by_lr: dict[float, list[float]] = {}
    for i in range(1, ITERATIONS + 1):
        lr = round(0.01 + 0.01 * (i % 5) if i <= 10 else 0.03 + 0.01 * (i % 5), 3)
        by_lr.setdefault(lr, []).append(gain(i))
    expected = [
        [lr, len(g), max(g), min(g), pytest.approx(sum(g) / len(g))] for lr, g in by_lr.items()
    ]
    expected.sort(key=lambda row: (-row[2], row[0]))
    assert q.columns == ("learning_rate", "count", "max_gain", "min_gain", "avg_gain")
    assert [list(r.values()) for r in q.run(kb).rows] == expected[:3]


@pytest.mark.parametrize("subject", list(SUBJECTS))
def test_every_field_of_every_subject_runs_read_only(kb, subject) -> None:
    """Each field the page offers, as a column and in a filter, runs on the engine."""
    fields = SUBJECTS[subject].pickable(["learning_rate"], ["loss"])
    q = build(subject, columns=fields, limit=5)
    assert q.run(kb).columns == list(q.columns) and len(q.columns) == len(fields)
    for spec in fields:
        kind = field_kind(subject, spec)
        value = {"number": 1, "time": "2026-01-01", "status": None}.get(kind, "x")
        op = "is not null" if value is None else "!="
        built = build(subject, columns=[spec], filters=[(spec, op, value)], limit=2)
        built.run(kb)  # no error


# -- what a person types is refused, or a parameter ---------------------------------------
@pytest.mark.parametrize(
    ("picks", "message"),
    [
        ({"subject": INJECTION}, "unknown subject 'x}) DETACH DELETE n //'"),
        ({"subject": "TrainingRun) DETACH DELETE n //"}, "unknown subject"),
        ({"columns": [INJECTION]}, "column 'x}) DETACH DELETE n //' is not a field of runs"),
        ({"columns": ["name`) DETACH DELETE n //"]}, "is not a field of runs"),
        ({"filters": [(INJECTION, "=", 1)]}, "filter field 'x}) DETACH.*is not a field"),
        ({"filters": [("name", "= 1 OR 1 = 1 //", 1)]}, "unknown operator '= 1 OR 1 = 1 //'"),
        ({"group_by": [INJECTION]}, "group field 'x}) DETACH DELETE n //' is not a field"),
        ({"aggregates": [INJECTION]}, "unknown aggregate 'x}) DETACH DELETE n //'"),
        ({"aggregates": [("avg", INJECTION)]}, "avg field 'x}) DETACH.*is not a field"),
        ({"aggregates": [("count", None, "n` DETACH DELETE n //")]}, "column name 'n` DETACH"),
        ({"sort": [INJECTION]}, "sort key 'x}) DETACH DELETE n //' is not a column"),
        ({"sort": [("name", "desc) DETACH DELETE n //")]}, "a sort key is a column"),
        ({"columns": ["summary.x}) DETACH DELETE n //.loss"]}, "summary.<stat>.<metric>"),
        ({"columns": ["metric.loss"]}, "'metric.loss' is not a field of runs"),
        ({"subject": "studies", "columns": ["hp.learning_rate"]}, "not a field of studies"),
        ({"subject": "studies", "experiment": "x"}, "studies have no experiment"),
        ({"columns": ["experiment"], "group_by": ["status"]}, "neither grouped nor aggregated"),
        ({"aggregates": [("avg", None)]}, "aggregate 'avg' needs a field"),
        ({"filters": [("epochsCompleted", ">", "many")]}, "needs a number, got 'many'"),
        ({"filters": [("epochsCompleted", ">", float("nan"))]}, "needs a finite number"),
        ({"filters": [("epochsCompleted", ">", 2**63)]}, "does not fit in a 64-bit integer"),
        ({"filters": [("name", "=", ["a", "b"])]}, "a value is a number, a text or true/false"),
        ({"filters": [("name", "<", None)]}, "'<' needs a value"),
        ({"filters": [("name", "is null", "x")]}, "'is null' takes no value"),
        ({"status": "finished"}, "a status is compared with = or != and is one of running"),
        ({"filters": [("status", ">", "running")]}, "a status is compared with = or !="),
        ({"since": "yesterday"}, "needs an ISO 8601 time, got 'yesterday'"),
        ({"limit": 0}, "limit must be a whole number from 1 to 10000"),
        ({"limit": True}, "limit must be a whole number"),
    ],
)
def test_names_outside_the_whitelist_and_bad_values_are_refused(picks, message) -> None:
    picks = {"subject": "runs", **picks}
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build(**picks)


def test_values_and_user_names_only_travel_as_parameters(kb) -> None:
    before = kb.counts()
    quoted = "x' OR 1=1 }) DETACH DELETE n // \" `"
    built = [
        build("runs", columns=["name"], filters=[("name", "=", quoted)]),
        build("runs", columns=[f"hp.{INJECTION}"], filters=[(f"hp.{quoted}", "=", quoted)]),
        build("epochs", columns=[f"metric.{INJECTION}"], filters=[(f"metric.{quoted}", ">", 0)]),
        build("runs", columns=[f"summary.max.{INJECTION}"], experiment=quoted),
        build("epochs", group_by=[f"metric.{INJECTION}"], aggregates=[("avg", "metric.`x`")]),
    ]
    for q in built:
        assert INJECTION not in q.cypher and quoted not in q.cypher and "DELETE" not in q.cypher
        assert any(INJECTION in str(v) or quoted in str(v) for v in q.params.values())
        assert console_guard.check(q.cypher)
        assert q.run(kb).rows in ([], [{"col1": None, "avg_col2": None}])
    assert kb.counts() == before


# -- the app page ----------------------------------------------------------------------------
def _pick(at, key: str, value) -> None:
    at.selectbox(key=key).set_value(value).run()


def test_builder_page_asks_q1_without_cypher_and_opens_it_in_the_editor(kb, app_env) -> None:
    common.refresh()
    at = open_page("page_builder.py")
    assert at.selectbox(key="qb_subject").options[0] == SUBJECTS["runs"].title
    _pick(at, "qb_subject", "epochs")
    for i, (name, op, value) in enumerate(
        [("epoch", "=", "30"), ("hp.learning_rate", ">=", "0.000999999")]
        + [("hp.learning_rate", "<=", "0.001000001")]
    ):
        _pick(at, f"qb_cf_epochs_{i}", name)
        _pick(at, f"qb_co_epochs_{i}", op)
        at.text_input(key=f"qb_cv_epochs_{i}").input(value).run()
    columns = ["optimizer", "run", "runId", "metric.loss", "metric.val_loss"]
    at.multiselect(key="qb_cols_epochs").set_value(columns).run()
    _pick(at, "qb_sort_epochs", "optimizer")
    button(at, "Run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    expected = query_rows(kb, "seed-q1")
    table = frames(at)[0]
    assert table.to_dict("records") == expected
    assert at.get("plotly_chart")  # bars per optimizer
    cypher, params = (c.value for c in at.code[:2])
    assert cypher.startswith("MATCH (e:Epoch)") and "30" not in cypher
    assert json.loads(params)["p0"] == 30

    # a bad value: a clear message, no traceback, nothing run
    at.text_input(key="qb_cv_epochs_0").input("thirty").run()
    assert any("needs a number, got 'thirty'" in e.value for e in at.error)
    assert not at.exception
    at.text_input(key="qb_cv_epochs_0").input("30").run()

    button(at, "Open in the Cypher editor").click().run()
    assert not at.exception
    assert at.text_area(key="cy_text").value == cypher
    assert json.loads(at.text_input(key="cy_params").value) == json.loads(params)
    at.switch_page("page_queries.py")  # where st.switch_page went; AppTest reruns its own
    at.button(key="cy_run").click().run()
    assert not at.exception and not at.error
    assert frames(at)[-1].to_dict("records") == expected
