"""Ingestion: the synthetic knowledge base written through ProvKB's writer path.

Runs are generated (capture's own graph builder, `synthetic`) and their batches merged
into writes of up to `max_records` records, exactly as `BackgroundWriter` merges what
callbacks submit (its default: 5000), then sent with `Store.write` (one transaction of
batched `UNWIND ... MERGE` statements per write). Only `Store.write` is timed;
generating the records in Python is reported apart.

Records per second count what the knowledge base holds afterwards (nodes plus
relationships), not the submitted records: a run's node is re-merged by every epoch
batch (epochsCompleted), which the writer sends but which adds no record.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from provkb.kb.records import GraphBatch
from provkb.kb.store import Store
from provkb.kb.writer import BackgroundWriter

from .common import log, stats
from .synthetic import KBSpec, run_batches

# What the background writer merges into one write (its `max_records` default).
DEFAULT_MAX_RECORDS: int = inspect.signature(BackgroundWriter).parameters["max_records"].default


def _writes(spec: KBSpec, max_records: int, start: int, stop: int):
    """Merged batches of at least `max_records` records (the writer's merging)."""
    pending: list[GraphBatch] = []
    size = 0
    for i in range(start, stop):
        for batch in run_batches(spec, i):
            pending.append(batch)
            size += len(batch)
            if size >= max_records:
                yield GraphBatch.concat(pending)
                pending, size = [], 0
    if pending:
        yield GraphBatch.concat(pending)


def ingest(
    store: Store,
    spec: KBSpec,
    max_records: int = DEFAULT_MAX_RECORDS,
    start: int = 0,
    stop: int | None = None,
    progress_every: int = 0,
) -> dict[str, Any]:
    """Write runs `start`..`stop` of `spec` to `store`; returns timings per write."""
    stop = spec.runs if stop is None else stop
    write_seconds: list[float] = []
    write_records: list[int] = []
    generate = 0.0
    t_gen = time.perf_counter()
    wall0 = time.perf_counter()
    next_report = progress_every
    for batch in _writes(spec, max_records, start, stop):
        generate += time.perf_counter() - t_gen
        t0 = time.perf_counter()
        store.write(batch)
        write_seconds.append(time.perf_counter() - t0)
        write_records.append(len(batch))
        if progress_every and sum(write_records) >= next_report:
            rate = sum(write_records) / sum(write_seconds)
            log(f"  ingestion: {sum(write_records):,} records submitted, {rate:,.0f}/s")
            next_report += progress_every
        t_gen = time.perf_counter()
    return {
        "write_seconds": write_seconds,
        "write_records": write_records,
        "generate_seconds": generate,
        "wall_seconds": time.perf_counter() - wall0,
    }


def run(store: Store, spec: KBSpec, max_records: int = DEFAULT_MAX_RECORDS) -> dict[str, Any]:
    """Ingest the whole knowledge base into `store` (expected empty); the figures."""
    before = store.counts()
    progress = 100_000 if spec.runs * spec.epochs >= 50_000 else 0
    out = ingest(store, spec, max_records=max_records, progress_every=progress)
    after = store.counts()
    stored = (after["nodes"] - before["nodes"]) + (after["relationships"] - before["relationships"])
    submitted = sum(out["write_records"])
    seconds = sum(out["write_seconds"])
    per_write = [
        r / s for r, s in zip(out["write_records"], out["write_seconds"], strict=True) if s > 0
    ]
    # Throughput by tenth of the ingestion: does it slow down as the store grows?
    tenths = []
    n = len(out["write_seconds"])
    for k in range(10):
        lo, hi = n * k // 10, n * (k + 1) // 10
        secs = sum(out["write_seconds"][lo:hi])
        if hi > lo and secs > 0:
            tenths.append(sum(out["write_records"][lo:hi]) / secs)
    return {
        "runs": spec.runs,
        "epochs": spec.epochs,
        "max_records_per_write": max_records,
        "writes": n,
        "records_stored": stored,
        "nodes": after["nodes"] - before["nodes"],
        "relationships": after["relationships"] - before["relationships"],
        "records_submitted": submitted,
        "write_seconds_total": seconds,
        "generate_seconds_total": out["generate_seconds"],
        "wall_seconds": out["wall_seconds"],
        "records_per_second": stored / seconds if seconds else None,
        "submitted_per_second": submitted / seconds if seconds else None,
        "per_write_submitted_per_second": stats(per_write),
        "by_tenth_submitted_per_second": tenths,
    }
