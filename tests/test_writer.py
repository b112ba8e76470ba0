"""The background writer on a real store, and on one that cannot be reached."""

from __future__ import annotations

import time
import uuid

from provkb import ontology as o
from provkb.config import resolve_settings
from provkb.errors import StoreUnavailable
from provkb.kb.records import GraphBatch
from provkb.kb.store import Store
from provkb.kb.writer import DANGLING_RETRIES, BackgroundWriter


def _batch(run: str, index: int) -> GraphBatch:
    batch = GraphBatch()
    batch.add_node(f"provkb:run/{run}/epoch/{index}", o.ACTIVITY, o.EPOCH, runId=run, epoch=index)
    return batch


def test_writer_delivers_everything_in_order(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    writer = BackgroundWriter(store)
    for i in range(1, 201):
        writer.submit(_batch(run, i))
    assert writer.close(timeout=60)
    assert writer.stats.written == 200 and writer.stats.dropped == 0
    rows = store.read("MATCH (e:Epoch) WHERE e.runId = $run RETURN count(e) AS c", run=run).rows
    assert rows == [{"c": 200}]


def test_writer_survives_unreachable_store_and_keeps_a_bounded_backlog(caplog) -> None:
    down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    writer = BackgroundWriter(down, max_backlog=50)
    for i in range(100):
        writer.submit(_batch("down", i))
    assert writer.flush(timeout=5) is False
    assert writer.backlog <= 50
    assert not writer.close(timeout=1)
    assert writer.stats.dropped >= 50
    warnings = [r for r in caplog.records if "cannot write provenance" in r.getMessage()]
    assert len(warnings) == 1  # warned once, not per batch


class CountingStore(Store):
    """A real store that counts the transactions the writer sends it."""

    writes = 0

    def write(self, batch: GraphBatch) -> int:
        self.writes += 1
        return super().write(batch)


def test_batches_submitted_while_lingering_share_one_transaction(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    counting = CountingStore(store.settings)
    writer = BackgroundWriter(counting, linger=60)
    for i in range(1, 11):
        writer.submit(_batch(run, i))
        time.sleep(0.02)  # epochs arriving one by one
    # a flush sends at once: it does not wait out the linger
    assert writer.flush(timeout=20)
    assert counting.writes == 1 and writer.stats.written == 10
    writer.submit(_batch(run, 11))
    assert writer.close(timeout=20)
    assert counting.writes == 2
    rows = store.read("MATCH (e:Epoch) WHERE e.runId = $run RETURN count(e) AS c", run=run).rows
    assert rows == [{"c": 11}]


def test_a_batch_missing_its_nodes_is_retried_then_dropped_and_the_rest_written(
    store: Store,
) -> None:
    run = uuid.uuid4().hex[:12]
    bad = GraphBatch()  # a relation to nodes that never existed
    bad.add_edge(o.WAS_INFORMED_BY, f"provkb:run/{run}/epoch/404", f"provkb:run/{run}/epoch/405")
    writer = BackgroundWriter(store, linger=0)
    writer.submit(_batch(run, 1))
    writer.submit(bad)
    writer.submit(_batch(run, 2))
    assert writer.flush(timeout=60, wait_while_unreachable=True)
    # a store that has just restarted can answer so for a valid batch: a few tries first
    assert writer.stats.failures == DANGLING_RETRIES
    assert writer.stats.rejected == len(bad) and writer.stats.written == 2
    rows = store.read("MATCH (e:Epoch) WHERE e.runId = $run RETURN count(e) AS c", run=run).rows
    assert rows == [{"c": 2}]
    writer.close(timeout=10)


# -- store tasks ordered with the batches (`after`) -----------------------------------
def test_a_task_runs_after_the_batches_submitted_before_it(store: Store) -> None:
    run = uuid.uuid4().hex[:12]
    writer = BackgroundWriter(store, linger=60)  # batches would wait a minute for others
    seen: list[int] = []
    count = "MATCH (e:Epoch) WHERE e.runId = $run RETURN count(e) AS c"
    for i in range(1, 6):
        writer.submit(_batch(run, i))
    writer.after(lambda s: seen.append(s.read(count, run=run).rows[0]["c"]))
    writer.submit(_batch(run, 6))
    writer.after(lambda s: seen.append(s.read(count, run=run).rows[0]["c"]))
    assert writer.flush(timeout=60)  # waits for the tasks too
    assert seen[0] >= 5 and seen[1] == 6
    assert writer.close(timeout=30)


def test_a_task_is_retried_while_the_store_is_away_and_a_broken_one_dropped(
    store: Store, caplog
) -> None:
    writer = BackgroundWriter(store)
    calls: list[str] = []

    def away_once(s: Store) -> None:
        calls.append("away")
        if calls.count("away") == 1:
            raise StoreUnavailable("the store went away")

    def broken(s: Store) -> None:
        calls.append("broken")
        raise ValueError("a bug in the task")

    writer.after(away_once)
    writer.after(broken)
    writer.after(lambda s: calls.append("last"))
    assert writer.flush(timeout=60, wait_while_unreachable=True)
    assert calls == ["away", "away", "broken", "last"]
    assert any("a bug in the task" in r.getMessage() for r in caplog.records)
    assert writer.close(timeout=30)
