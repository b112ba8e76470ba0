"""Steering requests in the store: validation, rejection records, exactly-once claims."""

from __future__ import annotations

import threading
import uuid

import pytest

from provkb import ontology as o
from provkb.errors import ProvKBError, SteeringRejected
from provkb.kb.records import GraphBatch
from provkb.kb.steering import APPLIED, PENDING, REJECTED, Steering, check_value, parse_value
from provkb.kb.store import Store


def _running_run(store: Store, status: str = "running") -> str:
    run = uuid.uuid4().hex[:12]
    batch = GraphBatch()
    batch.add_node(
        f"provkb:run/{run}", o.ACTIVITY, o.TRAINING_RUN, runId=run, name=f"n-{run}", status=status
    )
    for name, value, steerable in (
        ("learning_rate", 0.01, True),
        ("momentum", 0.9, True),
        ("batch_size", 64, False),
    ):
        batch.add_node(
            f"provkb:run/{run}/hp/{name}/v1",
            o.ENTITY,
            o.HYPERPARAMETER,
            runId=run,
            name=name,
            value=value,
            version=1,
            fromEpoch=1,
            steerable=steerable,
        )
    batch.add_node(
        f"provkb:run/{run}/epoch/2/metrics", o.ENTITY, o.METRICS, runId=run, epoch=2, loss=0.5
    )
    store.write(batch)
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
