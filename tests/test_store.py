"""The store on a real engine: idempotent batched writes, constraints, read-only console."""

from __future__ import annotations

import math
import uuid

import pytest

from provkb import ontology as o
from provkb.config import resolve_settings
from provkb.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from provkb.kb import cypher
from provkb.kb.records import GraphBatch, encode_value
from provkb.kb.store import Store


def _run_batch(run: str, epochs: int = 3) -> GraphBatch:
    batch = GraphBatch()
    run_id = batch.add_node(f"provkb:run/{run}", o.ACTIVITY, o.TRAINING_RUN, runId=run, name="r")
    hp = batch.add_node(
        f"provkb:run/{run}/hp/learning_rate/v1",
        o.ENTITY,
        o.HYPERPARAMETER,
        runId=run,
        name="learning_rate",
        value=0.01,
    )
    batch.add_edge(o.USED, run_id, hp)
    for epoch in range(1, epochs + 1):
        ep = batch.add_node(
            f"provkb:run/{run}/epoch/{epoch}", o.ACTIVITY, o.EPOCH, runId=run, epoch=epoch
        )
        m = batch.add_node(
            f"provkb:run/{run}/epoch/{epoch}/metrics",
            o.ENTITY,
            o.METRICS,
            runId=run,
            epoch=epoch,
            loss=1.0 / epoch,
        )
        batch.add_edge(o.WAS_INFORMED_BY, ep, run_id)
        batch.add_edge(o.WAS_GENERATED_BY, m, ep)
        batch.add_edge(o.USED, ep, hp)
    return batch


def _count(store: Store, run: str) -> tuple[int, int]:
    nodes = store.read("MATCH (n) WHERE n.runId = $run RETURN count(n) AS c", run=run).rows
    edges = store.read("MATCH (n)-[e]->() WHERE n.runId = $run RETURN count(e) AS c", run=run).rows
    return nodes[0]["c"], edges[0]["c"]


def test_write_is_idempotent(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    batch = _run_batch(run)
    assert store.write(batch) == len(batch)
    first = _count(store, run)
    store.write(batch)
    store.write(batch)
    assert _count(store, run) == first == (1 + 1 + 3 + 3, 1 + 3 * 3)


def test_nodes_keep_full_label_set_and_properties(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    store.write(_run_batch(run, epochs=1))
    rows = store.read(
        "MATCH (h:Entity {id: $id}) RETURN labels(h) AS labels, h.value AS value",
        id=f"provkb:run/{run}/hp/learning_rate/v1",
    ).rows
    assert sorted(rows[0]["labels"]) == ["Entity", "Hyperparameter"]
    assert rows[0]["value"] == 0.01
    scanned = store.read(
        "MATCH (h:Hyperparameter) WHERE h.runId = $run RETURN h.name AS n", run=run
    ).rows
    assert scanned == [{"n": "learning_rate"}]


def test_large_batch_is_chunked_and_complete(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    batch = _run_batch(run, epochs=3000)  # 6002 nodes, 9001 relationships
    store.write(batch)
    assert _count(store, run) == (6002, 9001)


def test_relation_to_unknown_node_is_refused_whole(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    batch = _run_batch(run, epochs=1)
    batch.add_edge(o.USED, f"provkb:run/{run}", "provkb:nowhere")
    with pytest.raises(QueryError, match="not in the knowledge base"):
        store.write(batch)
    assert _count(store, run) == (0, 0)


def test_uniqueness_constraint_holds_across_labels(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    store.write(_run_batch(run, epochs=1))
    clash = GraphBatch()
    clash.add_node(f"provkb:run/{run}/hp/learning_rate/v1", o.ENTITY, o.METRICS, runId=run)
    with pytest.raises(QueryError):
        store.write(clash)


def test_non_finite_and_unicode_values_round_trip(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    batch = GraphBatch()
    batch.add_node(
        f"provkb:run/{run}/epoch/1/metrics",
        o.ENTITY,
        o.METRICS,
        runId=run,
        loss=float("nan"),
        grad=float("inf"),
        note="Überwachung 训练 ✓",
        shape=(10, 64),
        config={"a": [1, 2]},
    )
    store.write(batch)
    row = store.read(
        "MATCH (m:Metrics) WHERE m.runId = $run "
        "RETURN m.loss AS loss, m.grad AS grad, m.note AS note, m.shape AS shape, "
        "m.config AS config",
        run=run,
    ).rows[0]
    assert math.isnan(row["loss"]) and row["grad"] == math.inf
    assert row["note"] == "Überwachung 训练 ✓"
    assert row["shape"] == [10, 64]
    assert row["config"] == '{"a": [1, 2]}'


def test_read_only_console_refuses_writes_and_changes_nothing(store: Store) -> None:
    before = store.counts()
    with pytest.raises(ReadOnlyViolation):
        store.read_only("CREATE (n:Entity {id: $id}) RETURN n.id", {"id": "provkb:sneaky"})
    with pytest.raises(ReadOnlyViolation):
        store.read_only("MATCH (n:Activity) WITH n LIMIT 1 SET n.hacked = true RETURN n.id")
    assert store.counts() == before
    assert store.read("MATCH (n) WHERE n.hacked = true RETURN count(n) AS c").rows == [{"c": 0}]


def test_read_only_console_answers_reads_and_reports_bad_queries(store: Store) -> None:
    result = store.read_only("RETURN $x + 1 AS y", {"x": 41})
    assert result.columns == ["y"] and result.rows == [{"y": 42}]
    with pytest.raises(QueryError, match="query failed"):
        store.read_only("MATCH (n RETURN n")
    with pytest.raises(QueryError, match="empty"):
        store.read_only("   ")


def test_unreachable_server_gives_clear_error() -> None:
    store = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        store.connect()


def test_encode_value_flattens_what_engines_cannot_store() -> None:
    import numpy as np

    assert encode_value(np.float32(0.5)) == 0.5
    assert encode_value(np.int64(3)) == 3
    assert encode_value([1, 2]) == [1, 2]
    assert encode_value([1, "a"]) == '[1, "a"]'
    assert encode_value({"b": 1, "a": None}) == '{"a": null, "b": 1}'
    assert encode_value(2**70) == str(2**70)
    assert encode_value(None) is None


def _neo4j_store(server: dict[str, str], **overrides: str) -> Store:
    settings = {
        "uri": server["NEO4J_URI"],
        "user": server["NEO4J_USER"],
        "password": server["NEO4J_PASSWORD"],
        **overrides,
    }
    return Store(resolve_settings(**settings))


def test_an_unknown_database_is_a_configuration_error(neo4j_server: dict[str, str]) -> None:
    """A wrong PROVKB_DATABASE is said once and clearly, never retried as an outage."""
    from provkb.errors import StoreMisconfigured

    store = _neo4j_store(neo4j_server, database="nosuchdb")
    with pytest.raises(StoreMisconfigured, match="no database 'nosuchdb'.*PROVKB_DATABASE"):
        store.connect()
    store.close()


def test_first_connects_of_several_processes_race_on_the_schema(
    neo4j_server: dict[str, str],
) -> None:
    """Four clients set the schema up at once on a server that has none: all connect."""
    import threading

    with _neo4j_store(neo4j_server) as admin:
        for row in admin.execute("SHOW CONSTRAINTS YIELD name WHERE name STARTS WITH 'provkb_'"):
            admin.execute(f"DROP CONSTRAINT `{row['name']}` IF EXISTS")
        for row in admin.execute(
            "SHOW INDEXES YIELD name, owningConstraint "
            "WHERE name STARTS WITH 'provkb_' AND owningConstraint IS NULL"
        ):
            admin.execute(f"DROP INDEX `{row['name']}` IF EXISTS")
        statements = cypher.schema_statements(admin.engine)
        expected = len([s for s in statements if s.startswith("CREATE CONSTRAINT")])
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def connect() -> None:
        client = _neo4j_store(neo4j_server)
        barrier.wait()
        try:
            client.connect()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with _neo4j_store(neo4j_server) as check:
        names = check.execute("SHOW CONSTRAINTS YIELD name WHERE name STARTS WITH 'provkb_'")
    assert len(names) == expected
