"""The local journal: nothing handed to the writer is lost while the store is down."""

from __future__ import annotations

import uuid
from pathlib import Path

from provkb import ontology as o
from provkb.config import resolve_settings
from provkb.kb.journal import Journal, journals, sync
from provkb.kb.quarantine import quarantined
from provkb.kb.records import GraphBatch, batch_from_dict, batch_to_dict
from provkb.kb.store import Store
from provkb.kb.writer import BackgroundWriter


def _epoch_batch(run: str, epoch: int) -> GraphBatch:
    batch = GraphBatch()
    ep = batch.add_node(
        f"provkb:run/{run}/epoch/{epoch}", o.ACTIVITY, o.EPOCH, runId=run, epoch=epoch
    )
    m = batch.add_node(
        f"provkb:run/{run}/epoch/{epoch}/metrics",
        o.ENTITY,
        o.METRICS,
        runId=run,
        epoch=epoch,
        loss=float("nan") if epoch == 2 else 1.0 / epoch,
    )
    batch.add_edge(o.WAS_GENERATED_BY, m, ep)
    return batch


def _counts(store: Store, run: str) -> tuple[int, int]:
    n = store.read("MATCH (n) WHERE n.runId = $r RETURN count(n) AS c", r=run).rows[0]["c"]
    e = store.read("MATCH (n)-[e]->() WHERE n.runId = $r RETURN count(e) AS c", r=run).rows
    return n, e[0]["c"]


def test_batch_survives_serialisation() -> None:
    batch = _epoch_batch("r", 3)
    again = batch_from_dict(batch_to_dict(batch))
    assert [(n.id, n.kind, n.extra_labels) for n in again.nodes] == [
        (n.id, n.kind, n.extra_labels) for n in batch.nodes
    ]
    assert [(e.relation, e.src, e.dst) for e in again.edges] == [
        (e.relation, e.src, e.dst) for e in batch.edges
    ]


def test_store_down_then_sync_loses_nothing_and_replays_idempotently(
    store: Store, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:12]
    folder = tmp_path / "journal"
    down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    writer = BackgroundWriter(down, journal=Journal(folder, run), max_backlog=10)
    for epoch in range(1, 21):
        writer.submit(_epoch_batch(run, epoch))
    assert writer.close(timeout=2) is False
    status = Journal(folder, run).status()
    assert status.entries == 20 and status.pending_records == 60

    # a torn last line (process killed mid-append) is quarantined, not fatal
    with open(folder / f"{run}.jsonl", "a") as handle:
        handle.write('{"seq": 21, "n": 3, "batch": {"nod')

    reports = sync(store, folder)
    assert [(r.batches, r.records, r.removed) for r in reports] == [(20, 60, True)]
    assert reports[0].quarantined == 1 and "cut short" in reports[0].details[0]
    assert [e.line for e in quarantined(folder)] == [22]  # after the header and 20 entries
    assert _counts(store, run) == (40, 20)
    assert journals(folder) == []
    assert sync(store, folder) == []  # nothing left


def test_writer_with_journal_acknowledges_and_removes_it(store: Store, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:12]
    folder = tmp_path / "journal"
    writer = BackgroundWriter(store, journal=Journal(folder, run))
    for epoch in range(1, 6):
        writer.submit(_epoch_batch(run, epoch))
    assert writer.close(timeout=60) is True
    assert not (folder / f"{run}.jsonl").exists()
    assert _counts(store, run) == (10, 5)


def test_backlog_overflow_is_replayed_from_the_journal(store: Store, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:12]
    folder = tmp_path / "journal"
    writer = BackgroundWriter(store, journal=Journal(folder, run), max_backlog=4)
    writer._retry_at = float("inf")  # hold sending back, as if the store were away
    for epoch in range(1, 31):
        writer.submit(_epoch_batch(run, epoch))
    writer.flush(timeout=0.5)
    assert writer.backlog <= 4 and writer.stats.dropped == 0
    writer._retry_at = 0.0  # the store is back
    assert writer.close(timeout=60) is True
    assert _counts(store, run) == (60, 30)
