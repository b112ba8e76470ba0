"""Steering requests in the store: validation, rejection records, exactly-once claims."""

from __future__ import annotations

import getpass
import threading
import uuid

import pytest
from builders import RunBuilder, facts

from provkb import ontology as o
from provkb.errors import ClaimConflict, DanglingRelation, ProvKBError, SteeringRejected
from provkb.kb.identity import default_person
from provkb.kb.records import GraphBatch
from provkb.kb.steering import (
    APPLIED,
    PENDING,
    REJECTED,
    VALUE_RULES,
    Steering,
    check_value,
    optimizer_value_problem,
    parse_value,
    person_node_id,
    steer,
)
from provkb.kb.store import Store


def _running_run(store: Store, status: str = "running") -> str:
    """A run recorded by capture, 2 epochs in (ended with `status` unless running):
    learning_rate and momentum steerable, batch_size not."""
    run = uuid.uuid4().hex[:12]
    optimizer = facts.Source.OPTIMIZER
    recorded = RunBuilder(
        run,
        name=f"n-{run}",
        hyperparameters=[
            facts.Hyperparameter("learning_rate", 0.01, optimizer, tracked=True, steerable=True),
            facts.Hyperparameter("momentum", 0.9, optimizer, tracked=True, steerable=True),
            facts.Hyperparameter("batch_size", 64, facts.Source.FIT),
        ],
    )
    recorded.epoch(1, {"loss": 0.7}).epoch(2, {"loss": 0.5})
    if status != "running":
        recorded.finish(status)
    recorded.write(store)
    return run


def test_valid_request_is_pending_with_what_the_person_saw(store: Store) -> None:
    run = _running_run(store)
    request = Steering(store).submit(
        run, "set", "learning_rate", 0.005, reason="plateau", person="ada"
    )
    stored = Steering(store).get(request.request_id)
    assert stored.status == PENDING and stored.value == 0.005
    assert stored.seen_epoch == 2 and stored.seen_metrics.endswith("/epoch/2/metrics")
    who = store.read(
        "MATCH (q:SteeringRequest {requestId: $r})-[:WAS_ATTRIBUTED_TO]->(p:Person) "
        "RETURN p.name AS name",
        r=request.request_id,
    ).rows
    assert who == [{"name": "ada"}]


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("learning_rate", -0.1, "must be in"),
        ("learning_rate", float("nan"), "finite"),
        ("learning_rate", "fast", "must be a number"),
        ("momentum", 1.0, "must be in"),
        ("batch_size", 128, "not a steerable"),
        ("dropout", 0.1, "not a steerable"),
    ],
)
def test_bad_requests_are_recorded_as_rejected_and_change_nothing(
    store: Store, name: str, value, why: str
) -> None:
    run = _running_run(store)
    before = store.read(
        "MATCH (h:Hyperparameter) WHERE h.runId = $r RETURN h.name AS n, h.value AS v ORDER BY n",
        r=run,
    ).rows
    with pytest.raises(SteeringRejected, match=why):
        Steering(store).submit(run, "set", name, value)
    rows = store.read(
        "MATCH (q:SteeringRequest) WHERE q.runId = $r RETURN q.status AS s, q.statusReason AS why",
        r=run,
    ).rows
    assert len(rows) == 1 and rows[0]["s"] == REJECTED and why in rows[0]["why"]
    after = store.read(
        "MATCH (h:Hyperparameter) WHERE h.runId = $r RETURN h.name AS n, h.value AS v ORDER BY n",
        r=run,
    ).rows
    assert after == before
    assert Steering(store).pending_count(run) == 0


def test_finished_run_and_unknown_run_are_refused(store: Store) -> None:
    run = _running_run(store, status="completed")
    with pytest.raises(SteeringRejected, match="completed, not running"):
        Steering(store).submit(run, "stop")
    with pytest.raises(ProvKBError, match="no run"):
        Steering(store).submit("no-such-run", "stop")
    with pytest.raises(ProvKBError, match="unknown steering action"):
        Steering(store).submit(run, "explode")


def test_each_request_is_claimed_exactly_once_by_concurrent_pollers(store: Store) -> None:
    run = _running_run(store)
    steering = Steering(store)
    submitted = {steering.submit(run, "note", note=f"n{i}").request_id for i in range(30)}
    claims: dict[str, list[str]] = {}
    lock = threading.Lock()

    def poll(name: str) -> None:
        for _ in range(20):
            for request in steering.claim(run, name, limit=3):
                with lock:
                    claims.setdefault(request.request_id, []).append(name)

    threads = [threading.Thread(target=poll, args=(f"poller-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(claims) == submitted
    assert all(len(who) == 1 for who in claims.values())
    assert steering.pending_count(run) == 0


def test_unapplied_requests_are_rejected_when_the_run_ends(store: Store) -> None:
    run = _running_run(store)
    steering = Steering(store)
    request = steering.submit(run, "set", "momentum", 0.5)
    assert steering.reject_unapplied(run, "the run ended first") == 1
    final = steering.wait(request.request_id, timeout=1)
    assert final.status == REJECTED and final.status_reason == "the run ended first"
    assert final.status != APPLIED


def test_value_rules() -> None:
    assert parse_value("0.05") == 0.05 and parse_value("true") is True
    assert parse_value("adam") == "adam"
    assert check_value("learning_rate", 0.1, 0.01) is None
    assert "must be in" in check_value("beta_2", 1.5, 0.999)
    assert "bool" in check_value("nesterov", 1, True)


def test_a_rejection_carries_every_request_of_the_call(store: Store) -> None:
    run = _running_run(store)
    with pytest.raises(SteeringRejected) as caught:
        steer(run, set={"learning_rate": -1.0, "momentum": 0.5}, store=store)
    assert [r.status for r in caught.value.requests] == [REJECTED, PENDING]
    assert "learning_rate must be in (0, inf)" in str(caught.value)
    assert SteeringRejected("refused", []).requests == []  # a field, not patched on


def test_an_unnamed_person_is_provkb_person(store: Store, monkeypatch) -> None:
    monkeypatch.setenv("PROVKB_PERSON", "grace")
    run = _running_run(store)
    request = Steering(store).submit(run, "note", note="looks good")
    assert Steering(store).get(request.request_id).person == "grace"
    named = Steering(store).submit(run, "note", note="mine", person="ada")
    assert Steering(store).get(named.request_id).person == "ada"


def _node_name(store: Store, node: str) -> list[dict]:
    return store.read("MATCH (n:Entity {id: $id}) RETURN n.name AS name", id=node).rows


def test_a_transaction_that_loses_a_create_race_writes_nothing(store: Store) -> None:
    taken, other = (f"provkb:test/{uuid.uuid4().hex}" for _ in range(2))
    first = GraphBatch()
    first.add_node(taken, o.ENTITY, name="first")
    assert store.transaction(lambda tx: tx.create(first)) == 1
    again, extra = GraphBatch(), GraphBatch()
    again.add_node(taken, o.ENTITY, name="second")
    extra.add_node(other, o.ENTITY, name="other")

    def work(tx) -> None:
        tx.write(extra)
        tx.create(again)

    with pytest.raises(ClaimConflict):
        store.transaction(work)
    assert _node_name(store, taken) == [{"name": "first"}]
    assert _node_name(store, other) == []  # rolled back with the rest


def test_relations_without_their_ends_are_refused_whole(store: Store) -> None:
    node, missing = (f"provkb:test/{uuid.uuid4().hex}" for _ in range(2))
    batch = GraphBatch()
    batch.add_node(node, o.ENTITY, name="orphan")
    batch.add_edge(o.USED, missing, node)
    with pytest.raises(DanglingRelation, match="1 of 1 relations"):
        store.write(batch)
    assert _node_name(store, node) == []


def test_one_value_rule_set_for_requests_and_optimizers() -> None:
    from provkb.capture import model_info

    assert frozenset(VALUE_RULES) == model_info.STEERABLE_OPTIMIZER
    assert check_value("momentum", 1.0, 0.9) == "momentum must be in [0, 1), got 1.0"
    assert check_value("nesterov", False, True) is None
    assert optimizer_value_problem("clipnorm", None) is None
    assert optimizer_value_problem("momentum", None) == "momentum cannot be None"
    assert "true or false" in optimizer_value_problem("nesterov", 1)
    assert "cannot be changed while training" in optimizer_value_problem("amsgrad", True)


def test_one_person_rule_and_one_person_id(monkeypatch) -> None:
    from provkb.capture import ids as capture_ids
    from provkb.capture.environment import person_name
    from provkb.kb import study

    monkeypatch.setenv("PROVKB_PERSON", "grace")
    assert default_person("ada") == "ada" and default_person() == "grace"
    assert person_name() == "grace" and person_name("ada") == "ada"  # a captured run's person
    monkeypatch.delenv("PROVKB_PERSON")
    assert default_person() == getpass.getuser()
    long = "é " + "x" * 400  # escaped and shortened alike by every writer
    assert person_node_id(long) == capture_ids.person(long) == study.person_node_id(long)
    assert len(person_node_id(long)) < 300


def test_describe_tells_an_applied_value_paused_a_schedule() -> None:
    from provkb.kb.steering import APPLIED, SET, SteeringRequest, describe

    paused = "the schedule of learning_rate (LearningRateScheduler) is paused from epoch 4"
    request = SteeringRequest(
        "r1", "run1", SET, "learning_rate", 0.003, status=APPLIED, status_reason=paused
    )
    request.extra[o.Prop.APPLIED_EPOCH] = 4
    assert describe(request) == (
        f"request r1 (set learning_rate=0.003) applied: in force from epoch 4 ({paused})"
    )
    request.status_reason = None
    assert describe(request).endswith("applied: in force from epoch 4")
