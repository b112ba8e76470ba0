"""The steering queries (gain-changes, steering-impact, steering-history) on known graphs:
the runs, their steering requests and actions recorded by capture's own `RunRecorder`
(builders), the study built by hand as docs/graph-model.md ("Studies") describes it.

- run `steer-a` (…a1), 30 epochs: val_accuracy ~0.30 up to epoch 12 and ~0.50 from 13 on,
  NaN at epoch 25 and absent at epoch 27. Requests, in time order: bob's batch_size 128
  (rejected), bob's momentum 0.9 -> 0.8 (applied from epoch 6), ada's learning_rate
  0.05 -> 0.01 (applied from epoch 13), ada's note (epoch 26), bob's pending request.
- run `rule` (…a2), 7 epochs of exact binary fractions: shows which points gain-changes
  keeps (one row per change, largest |delta|, the earliest among equals).
- run `other` (…a3), 6 epochs, val_accuracy 0.1 then 0.6 from epoch 4: a rejected
  request, made before everything else, and three notes all applied at epoch 4 (which
  one is "the latest" goes by startedAtTime, then id).
- study `dl-steer`, 60 iterations shaped like the DL-Steer case study: gain ~0.28 for
  iterations 1-20, ~0.48 for 21-44, ~0.51 for 45-54, ~0.55 for 55-60; ada respaced the
  learning-rate interval [0.01, 0.05] -> [0.03, 0.07] after iteration 20 and set item
  55's batch size 100 -> 1000 after iteration 54; carol's stop request to iteration 30
  was rejected.

Every series' noise sums to zero over any 5 consecutive points, so window means are the
plateau values.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from builders import RunBuilder, facts, ids, write
from helpers import query_rows as rows

from provkb import ontology as o
from provkb.errors import QueryError
from provkb.kb import steering
from provkb.kb.records import GraphBatch
from provkb.kb.store import Store
from provkb.queries import QUERIES, coerce_params, run
from provkb.queries.library import EXACTLY_ONE_OF

NOISE = (0.0, 0.004, -0.002, 0.003, -0.005)  # by n % 5: sums to 0 over 5 consecutive n
T_RUN = datetime(2026, 2, 1, 10, tzinfo=UTC)  # epoch n of steer-a ends T_RUN + n minutes
T_STUDY = datetime(2026, 2, 2, 10, tzinfo=UTC)  # iteration i ends T_STUDY + i minutes


def iso(start: datetime, minutes: float) -> str:
    return (start + timedelta(minutes=minutes)).isoformat()


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# -- run steer-a ------------------------------------------------------------------------
RUN = "aaaaaaaaaaa1"
RUN_NODE = f"provkb:run/{RUN}"
RULE_RUN, OTHER_RUN = "aaaaaaaaaaa2", "aaaaaaaaaaa3"


def val_accuracy(n: int) -> float | None:
    """Epoch n's val_accuracy; NaN at 25, None (absent) at 27."""
    if n == 25:
        return math.nan
    if n == 27:
        return None
    return round((0.30 if n <= 12 else 0.50) + NOISE[n % 5], 6)


def va_mean(*epochs: int):
    return pytest.approx(mean(val_accuracy(n) for n in epochs))


# (request id, person, requested at (minutes), action, hyperparameter, value, reason,
#  note, status, status reason, applied epoch, (old value, new value, hp version))
REQUESTS = [
    ("bbbbbbbbbb01", "bob", 3.2, "set", "batch_size", 128, "try bigger batches", None,
     "rejected", "'batch_size' is not a steerable hyperparameter of this run "
     "(steerable: learning_rate, momentum)", None, None),
    ("bbbbbbbbbb02", "bob", 5.3, "set", "momentum", 0.8, "loss oscillates", None,
     "applied", None, 6, (0.9, 0.8, 2)),
    ("bbbbbbbbbb03", "ada", 12.4, "set", "learning_rate", 0.01,
     "val_accuracy flat at 0.30", None, "applied", None, 13, (0.05, 0.01, 2)),
    ("bbbbbbbbbb04", "ada", 26.1, "note", None, None, None, "looks converged",
     "applied", None, 26, None),
    ("bbbbbbbbbb05", "bob", 29.5, "set", "learning_rate", 0.005, "fine tune", None,
     "pending", None, None, None),
]  # fmt: skip
REJECTED, MOMENTUM, LR, NOTE, PENDING = REQUESTS


def action_id(request: tuple, run_id: str = RUN) -> str:
    return f"provkb:run/{run_id}/steering/{request[0]}"


def as_submitted(request: tuple, run_id: str = RUN, minutes: float | None = None):
    """The `SteeringRequest` (requested `minutes` after T_RUN, default its own) in the
    status it ended in."""
    (req, who, at_minutes, action, hp, value, reason, note, status, why, epoch, _) = request
    minutes = at_minutes if minutes is None else minutes
    seen = ids.epoch_metrics(run_id, int(minutes)) if minutes > 0 else None
    return steering.SteeringRequest(
        req, run_id, action, hp, value, reason, note, who, iso(T_RUN, minutes), status, why,
        seen_metrics=seen, seen_epoch=int(minutes), extra={"appliedEpoch": epoch},
    )  # fmt: skip


def request_batch(request: tuple, run_id: str = RUN, minutes: float | None = None) -> GraphBatch:
    return steering.request_batch(as_submitted(request, run_id, minutes))


def apply(run: RunBuilder, request: tuple, started: float | None = None) -> None:
    """The training applies `request` (an action started `started` minutes after T_RUN,
    default the start of its epoch; a set adds the hyperparameter's next version)."""
    submitted = as_submitted(request, run.run.run_id)
    run.steering(
        submitted.request_id, submitted.action, submitted.person, request[10],
        started=iso(T_RUN, request[10] - 1 if started is None else started),
        hyperparameter=submitted.hyperparameter, value=submitted.value,
        reason=submitted.reason, note=submitted.note,
        request_node=submitted.node_id, seen_metrics=submitted.seen_metrics,
    )  # fmt: skip


OPTIMIZER = facts.Source.OPTIMIZER


def build_run() -> GraphBatch:
    steer_a = RunBuilder(
        RUN,
        name="steer-a",
        experiment="steering",
        project="mnist",
        person="ada",
        started=iso(T_RUN, 0),
        epochs_planned=30,
        hyperparameters=[
            *(
                facts.Hyperparameter(name, value, OPTIMIZER, tracked=True, steerable=True)
                for name, value in (("learning_rate", 0.05), ("momentum", 0.9))
            ),
            facts.Hyperparameter("batch_size", 64, facts.Source.FIT),
        ],
    )
    applied = {r[10]: r for r in REQUESTS if r[8] == "applied"}  # by the epoch it changed
    for n in range(1, 31):
        if n in applied:  # as epoch n begins (a note: of the latest finished epoch)
            apply(steer_a, applied[n])
        logs = {"loss": round(1.0 / n, 6), "val_accuracy": val_accuracy(n)}
        steer_a.epoch(n, {k: v for k, v in logs.items() if v is not None}, 60.0)
    steer_a.finish()
    return GraphBatch.concat([steer_a.batch, *(request_batch(r) for r in REQUESTS)])


# -- run rule and run other -------------------------------------------------------------
RULE_SERIES = [0.0, 0.125, 0.375, 0.5, 0.75, 0.25, 0.3125]  # epochs 1-7, exact in binary
# k=1 deltas (epochs 2-7): .125 .25 .125 .25 -.5 .0625; threshold 0.1 gives two changes:
# epochs 2-5 rising (largest .25 at epochs 3 and 5: the earlier is kept), 6 falling.
OTHER_REQUEST = ("cccccccccc01", "carol", -60, "set", "learning_rate", 0.1, "too slow", None,
                 "rejected", f"run {OTHER_RUN} is completed, not running", None, None)  # fmt: skip
OTHER_SERIES = [0.1, 0.1, 0.1, 0.6, 0.6, 0.6]


def other_note(req: str, minutes: float) -> tuple:
    return (req, "carol", minutes, "note", None, None, None, f"note {req[-1]}", "applied",
            None, 4, None)  # fmt: skip


# (note, its action's start in minutes after T_RUN): all at epoch 4; the latest is 04
# (started last, like 02, and the larger id); 05 has the largest id but started first
OTHER_NOTES = [
    (other_note("cccccccccc02", -59), -56),
    (other_note("cccccccccc03", -58), -57),
    (other_note("cccccccccc04", -57), -56),
    (other_note("cccccccccc05", -56.5), -58),
]


def build_small_runs() -> GraphBatch:
    rule = RunBuilder(RULE_RUN, name="rule", started=iso(T_RUN, -120))
    other = RunBuilder(OTHER_RUN, name="other", started=iso(T_RUN, -120))
    for recorded, series in ((rule, RULE_SERIES), (other, OTHER_SERIES)):
        for n, value in enumerate(series, start=1):
            recorded.epoch(n, {"val_accuracy": value})
        recorded.finish()
    for note, started in OTHER_NOTES:
        apply(other, note, started)
    requests = [OTHER_REQUEST, *(note for note, _ in OTHER_NOTES)]
    return GraphBatch.concat(
        [rule.batch, other.batch, *(request_batch(r, OTHER_RUN) for r in requests)]
    )


# -- study dl-steer ---------------------------------------------------------------------
STUDY_NAME = "dl-steer"
STUDY_NODE = f"provkb:study/{STUDY_NAME}"


def gain(i: int) -> float:
    base = 0.28 if i <= 20 else 0.48 if i <= 44 else 0.51 if i <= 54 else 0.55
    return round(base + NOISE[i % 5], 6)


def gain_mean(first: int, last: int):
    return pytest.approx(mean(gain(i) for i in range(first, last + 1)))


def iteration_run(i: int) -> str:
    return f"5b5b5b5b5b{i:02x}"


# (request id, action, item id, iteration done, before, after, reason)
EDITS = [
    ("eeeeeeeeee01", "respace", None, 20, {"learning_rate": [0.01, 0.05]},
     {"learning_rate": [0.03, 0.07]}, "gain flat at 0.28"),
    ("eeeeeeeeee02", "edit", 55, 54, {"batch_size": 100}, {"batch_size": 1000},
     "faster iterations"),
]  # fmt: skip
RESPACE, BATCH = EDITS
STOP_30 = ("dddddddddd01", "carol", None, "stop", None, None, "gain too low", None, "rejected",
           f"run {iteration_run(30)} is completed, not running", None, None)  # fmt: skip


def edit_id(edit: tuple) -> str:
    return f"{STUDY_NODE}/steering/{edit[0]}"


def item_params(i: int, version: int) -> str:
    lr = [0.01, 0.05] if version == 1 else [0.03, 0.07]
    return json.dumps({"learning_rate": lr, "batch_size": 1000 if version == 3 else 100})


def build_study(b: GraphBatch) -> None:
    b.add_node(
        STUDY_NODE,
        o.ACTIVITY,
        o.STUDY,
        name=STUDY_NAME,
        gainMetric="val_accuracy",
        mode="max",
        k=10,
        space=json.dumps({"learning_rate": [0.01, 0.05, 0.01]}),
        sampler="grid",
        seed=0,
        status="completed",
        startedAtTime=iso(T_STUDY, 0),
    )
    current: dict[int, int] = {}  # item -> its latest version

    def item(i: int, version: int) -> str:
        node = b.add_node(
            f"{STUDY_NODE}/item/{i}/v{version}",
            o.ENTITY,
            o.TRIAL_ITEM,
            study=STUDY_NAME,
            itemId=i,
            version=version,
            params=item_params(i, version),
            position=i,
            status="done",
            current=False,
        )
        if version > 1:
            b.add_edge(o.WAS_REVISION_OF, node, f"{STUDY_NODE}/item/{i}/v{version - 1}")
        current[i] = version
        return node

    for i in range(1, 61):
        b.add_edge(o.WAS_GENERATED_BY, item(i, 1), STUDY_NODE)
    for req, action, item_id, done, before, after, reason in EDITS:
        node = edit_id((req,))
        b.add_node(
            node,
            o.ACTIVITY,
            o.STEERING_ACTION,
            study=STUDY_NAME,
            requestId=req,
            action=action,
            itemId=item_id,
            iteration=done,
            reason=reason,
            person="ada",
            before=json.dumps(before),
            after=json.dumps(after),
            startedAtTime=iso(T_STUDY, done + 0.5),
        )
        state = b.add_node(
            f"{STUDY_NODE}/state/{req}",
            o.ENTITY,
            o.STUDY_STATE,
            study=STUDY_NAME,
            iteration=done,
            lastGain=gain(done),
            movingAverage=mean(gain(i) for i in range(done - 9, done + 1)),
            k=10,
        )
        b.add_edge(o.WAS_INFORMED_BY, node, STUDY_NODE)
        b.add_edge(o.WAS_ASSOCIATED_WITH, node, "provkb:person/ada", plan=req)
        b.add_edge(o.USED, node, state)
        for i in range(done + 1, 61) if item_id is None else [item_id]:
            old = f"{STUDY_NODE}/item/{i}/v{current[i]}"
            b.add_edge(o.USED, node, old)
            b.add_edge(o.WAS_GENERATED_BY, item(i, current[i] + 1), node)
    for i in range(1, 61):
        node = b.add_node(
            f"provkb:run/{iteration_run(i)}",
            o.ACTIVITY,
            o.TRAINING_RUN,
            runId=iteration_run(i),
            name=f"{STUDY_NAME}-{i}",
            status="completed",
            startedAtTime=iso(T_STUDY, i - 1),
            endedAtTime=iso(T_STUDY, i),
            study=STUDY_NAME,
            iteration=i,
            itemId=i,
            gain=gain(i),
        )
        b.add_edge(o.WAS_INFORMED_BY, node, STUDY_NODE)
        # the version in force when it ran (edits come after iterations 20 and 54)
        version = 1 if i <= 20 else 2 if i != 55 else 3
        b.add_edge(o.USED, node, f"{STUDY_NODE}/item/{i}/v{version}")
    # minutes after T_RUN: just after iteration 30 ended
    b.extend(request_batch(STOP_30, iteration_run(30), 24 * 60 + 30.2))
    for name in ("ada", "carol"):  # who edited the queue
        b.add_node(ids.person(name), o.AGENT, o.PERSON, **{o.Prop.NAME: name})


@pytest.fixture(scope="module")
def kb(store: Store) -> Store:
    """The store holding exactly the known graphs (emptied, then written once)."""
    store.clear()
    study = GraphBatch()
    build_study(study)
    write(store, build_run(), build_small_runs(), study)
    return store


# -- gain-changes ------------------------------------------------------------------------
def action_columns(request: tuple | None, run_id: str = RUN) -> dict:
    if request is None:
        keys = ("actionId", "action", "hyperparameter", "itemId", "oldValue", "newValue")
        return dict.fromkeys((*keys, "person", "reason", "automatic", "callback", "actionAt"))
    change = request[11]
    return {
        "actionId": action_id(request, run_id),
        "action": request[3],
        "hyperparameter": request[4],
        "itemId": None,
        "oldValue": change[0] if change else None,
        "newValue": change[1] if change else None,
        "person": request[1],
        "reason": request[6],
        "automatic": False,  # a person's action, not an adaptation
        "callback": None,
        "actionAt": request[10],
    }


def edit_columns(edit: tuple) -> dict:
    req, action, item_id, done, before, after, reason = edit
    return {
        "actionId": edit_id(edit),
        "action": action,
        "hyperparameter": None,
        "itemId": item_id,
        "oldValue": json.dumps(before),
        "newValue": json.dumps(after),
        "person": "ada",
        "reason": reason,
        "automatic": False,
        "callback": None,
        "actionAt": done + 1,
    }


def change(at, before, after, **action) -> dict:
    return {"at": at, "avgBefore": before, "avgAfter": after,
            "delta": pytest.approx(after.expected - before.expected), **action}  # fmt: skip


def test_gain_changes_of_a_run_names_the_learning_rate_action(kb):
    # the k=5 windows 8-12 | 13-17 straddle the jump; bob's momentum action (epoch 6)
    # is older, ada's note (epoch 26) later than the change
    expected = [
        change(13, va_mean(8, 9, 10, 11, 12), va_mean(13, 14, 15, 16, 17), **action_columns(LR))
    ]
    assert rows(kb, "gain-changes", run=RUN) == expected
    assert rows(kb, "gain-changes", run="steer-a", metric="val_accuracy") == expected
    assert rows(kb, "gain-changes", run=RUN_NODE, k="3") == [
        change(13, va_mean(10, 11, 12), va_mean(13, 14, 15), **action_columns(LR))
    ]
    assert expected[0]["avgBefore"] == pytest.approx(0.30)
    assert expected[0]["avgAfter"] == pytest.approx(0.50)


def test_gain_changes_threshold_and_absent_metric(kb):
    assert rows(kb, "gain-changes", run=RUN, threshold=0.25) == []
    assert rows(kb, "gain-changes", run=RUN, metric="no_such_metric") == []
    # loss = 1/n falls fastest early: epochs 1-5 vs 6-10 is the one change at k=5
    assert [r["at"] for r in rows(kb, "gain-changes", run=RUN, metric="loss")] == [6]


def test_gain_changes_keeps_one_point_per_change(kb):
    got = rows(kb, "gain-changes", run="rule", k=1, threshold=0.1)
    assert got == [
        change(3, pytest.approx(0.125), pytest.approx(0.375), **action_columns(None)),
        change(6, pytest.approx(0.75), pytest.approx(0.25), **action_columns(None)),
    ]
    # k=2 (threshold 0.05): deltas .375 .375 .0625 at epochs 3-5 rise (the tie goes to
    # the earlier point), -.34375 at epoch 6 falls
    assert rows(kb, "gain-changes", run="rule", k=2) == [
        change(3, pytest.approx(0.0625), pytest.approx(0.4375), **action_columns(None)),
        change(6, pytest.approx(0.625), pytest.approx(0.28125), **action_columns(None)),
    ]


def test_gain_changes_takes_the_latest_of_actions_at_one_epoch(kb):
    latest = OTHER_NOTES[2][0]
    assert rows(kb, "gain-changes", run="other", k=1) == [
        change(4, pytest.approx(0.1), pytest.approx(0.6), **action_columns(latest, OTHER_RUN))
    ]
    impact = rows(kb, "steering-impact", run="other", k=3)
    assert [r["actionId"] for r in impact] == sorted(
        action_id(note, OTHER_RUN) for note, _ in OTHER_NOTES
    )
    assert [(r["at"], r["avgBefore"], r["avgAfter"]) for r in impact] == [
        (4, pytest.approx(0.1), pytest.approx(0.6))
    ] * len(OTHER_NOTES)


def test_gain_changes_of_a_study_names_the_respace_edit(kb):
    expected = [change(21, gain_mean(11, 20), gain_mean(21, 30), **edit_columns(RESPACE))]
    assert rows(kb, "gain-changes", study=STUDY_NAME, k=10) == expected
    assert rows(kb, "gain-changes", study=STUDY_NODE, k="10") == expected
    assert expected[0]["avgBefore"] == pytest.approx(0.28)
    assert expected[0]["avgAfter"] == pytest.approx(0.48)


# -- steering-impact ----------------------------------------------------------------------
def impact(action: dict, at: int, before, after, points: tuple[int, int]) -> dict:
    action = dict(action)
    action.pop("actionAt")
    return {
        "actionId": action.pop("actionId"),
        "at": at,
        **action,
        "avgBefore": before,
        "avgAfter": after,
        "delta": pytest.approx(after.expected - before.expected),
        "pointsBefore": points[0],
        "pointsAfter": points[1],
    }


def test_steering_impact_of_a_run(kb):
    assert rows(kb, "steering-impact", run=RUN) == [
        impact(action_columns(MOMENTUM), 6, va_mean(1, 2, 3, 4, 5), va_mean(6, 7, 8, 9, 10),
               (5, 5)),
        impact(action_columns(LR), 13, va_mean(8, 9, 10, 11, 12), va_mean(13, 14, 15, 16, 17),
               (5, 5)),
        # epoch 25 (NaN) and 27 (no val_accuracy) are skipped: 20-24 | 26, 28-30
        impact(action_columns(NOTE), 26, va_mean(20, 21, 22, 23, 24), va_mean(26, 28, 29, 30),
               (5, 4)),
    ]  # fmt: skip


def test_steering_impact_partial_windows(kb):
    got = rows(kb, "steering-impact", run=RUN, k=8)
    assert [(r["at"], r["pointsBefore"], r["pointsAfter"]) for r in got] == [
        (6, 5, 8),
        (13, 8, 8),
        (26, 8, 4),
    ]
    assert got[0]["avgBefore"] == va_mean(1, 2, 3, 4, 5)
    assert rows(kb, "steering-impact", run="rule") == []  # no steering at all


def test_steering_impact_of_a_study(kb):
    assert rows(kb, "steering-impact", study=STUDY_NAME, k=10) == [
        impact(edit_columns(RESPACE), 21, gain_mean(11, 20), gain_mean(21, 30), (10, 10)),
        impact(edit_columns(BATCH), 55, gain_mean(45, 54), gain_mean(55, 60), (10, 6)),
    ]
    got = rows(kb, "steering-impact", study=STUDY_NAME, k=10)
    assert [(r["avgBefore"], r["avgAfter"]) for r in got] == [
        (pytest.approx(0.28), pytest.approx(0.48)),
        (pytest.approx(0.51), pytest.approx(0.55)),
    ]


# -- steering-history ---------------------------------------------------------------------
def history(request: tuple, run_id: str = RUN, minutes: float | None = None) -> dict:
    (req, who, at, action, hp, value, reason, note, status, why, epoch, change) = request
    applied = status == "applied"
    return {
        "kind": "request",
        "requestId": req,
        "runId": run_id,
        "study": None,
        "requestedAtTime": iso(T_RUN, at if minutes is None else minutes),
        "person": who,
        "osUser": None,  # requests written here, not through Steering.submit
        "host": None,
        "clientAddress": None,
        "action": action,
        "hyperparameter": hp,
        "itemId": None,
        "requestedValue": None if value is None else json.dumps(value),
        "reason": reason,
        "note": note,
        "status": status,
        "statusReason": why,
        "appliedEpoch": epoch,
        "appliedIteration": None,
        "actionId": f"provkb:run/{run_id}/steering/{req}" if applied else None,
        "oldValue": change[0] if change else None,
        "newValue": change[1] if change else None,
    }


def edit_history(edit: tuple) -> dict:
    req, action, item_id, done, before, after, reason = edit
    return {
        "kind": "queue-edit",
        "requestId": req,
        "runId": None,
        "study": STUDY_NAME,
        "requestedAtTime": iso(T_STUDY, done + 0.5),
        "person": "ada",
        "osUser": None,
        "host": None,
        "clientAddress": None,
        "action": action,
        "hyperparameter": None,
        "itemId": item_id,
        "requestedValue": None,
        "reason": reason,
        "note": None,
        "status": "applied",
        "statusReason": None,
        "appliedEpoch": None,
        "appliedIteration": done + 1,
        "actionId": edit_id(edit),
        "oldValue": json.dumps(before),
        "newValue": json.dumps(after),
    }


RUN_HISTORY = [history(r) for r in REQUESTS]
STOP_HISTORY = history(STOP_30, iteration_run(30), 24 * 60 + 30.2)


def test_steering_history_of_a_run_in_time_order(kb):
    got = rows(kb, "steering-history", run=RUN)
    assert got == RUN_HISTORY
    assert [(r["status"], r["statusReason"] is not None) for r in got] == [
        ("rejected", True),
        ("applied", False),
        ("applied", False),
        ("applied", False),
        ("pending", False),
    ]
    assert rows(kb, "steering-history", run="steer-a", limit=2) == RUN_HISTORY[:2]


def test_steering_history_of_all_runs_and_of_a_study(kb):
    others = [history(r, OTHER_RUN) for r in (OTHER_REQUEST, *(n for n, _ in OTHER_NOTES))]
    everything = [*others, *RUN_HISTORY, STOP_HISTORY]
    assert rows(kb, "steering-history") == everything
    assert rows(kb, "steering-history", limit="3") == everything[:3]
    assert rows(kb, "steering-history", limit=0) == []
    study = [edit_history(RESPACE), STOP_HISTORY, edit_history(BATCH)]
    assert rows(kb, "steering-history", study=STUDY_NAME) == study
    assert rows(kb, "steering-history", run=RUN, study=STUDY_NODE) == [
        *RUN_HISTORY,
        edit_history(RESPACE),
        edit_history(BATCH),
    ]


def test_steering_history_of_unknown_run_or_study_is_empty(kb):
    assert rows(kb, "steering-history", run="no-such-run") == []
    assert rows(kb, "steering-history", study="no-such-study") == []


# -- errors and the registry -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["gain-changes", "steering-impact"])
def test_run_or_study_exactly_one(kb, name):
    with pytest.raises(QueryError, match="exactly one of parameters 'run', 'study', got neither"):
        run(kb, name)
    with pytest.raises(QueryError, match="exactly one of .* got both"):
        run(kb, name, run=RUN, study=STUDY_NAME)
    with pytest.raises(QueryError, match="got both"):
        coerce_params(name, {"run": "x", "study": "y"})
    assert coerce_params(name, {"run": "x", "study": None})["study"] is None
    assert rows(kb, name, run="no-such-run") == []
    assert rows(kb, name, study="no-such-study") == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"run": "x", "k": 0}, "'k'.*at least 1"),
        ({"run": "x", "threshold": -0.1}, "'threshold'.*at least 0"),
        ({"run": "x", "threshold": "nan"}, "'threshold'.*must be a number"),
    ],
)
def test_gain_changes_refuses_bad_windows(raw, message):
    with pytest.raises(QueryError, match=message):
        coerce_params("gain-changes", raw)


def test_steering_queries_are_registered():
    assert {"gain-changes", "steering-impact", "steering-history"} <= set(QUERIES)
    assert set(EXACTLY_ONE_OF) == {"gain-changes", "steering-impact"}
    assert coerce_params("gain-changes", {"study": "s"}) == {
        "run": None,
        "study": "s",
        "metric": "val_accuracy",
        "k": 5,
        "threshold": 0.05,
        "metricPrefix": o.metric_prop(""),  # a constant: metric keys are `metric.<key>`
    }
