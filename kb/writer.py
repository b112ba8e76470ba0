"""A background writer: callers hand it batches and never wait for the database.

Batches are merged and sent from one thread. With a `Journal`, each batch is first
appended to the local journal (in the caller's thread), and acknowledged there once the
store has it. When the store cannot be reached the writer warns once, keeps a bounded
backlog in memory (the journal keeps everything) and retries with backoff; the
training process never blocks on it and never sees its exceptions.

When the journal cannot be written (read-only, disk full, no permission), the writer
says so (once), keeps those batches in memory only, and never drops them in favour of
the journal; if memory overflows while the store is also away, the records it must let
go are counted (`WriterStats.lost`) and reported when it happens and when it closes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import QueryError, StoreUnavailable
from .journal import Journal, describe_os_error
from .records import GraphBatch
from .store import DanglingRelation, Store

log = logging.getLogger("provkb.writer")

DEFAULT_MAX_BACKLOG = 500_000  # records kept in memory while the store is unreachable
DEFAULT_LINGER = 1.0  # seconds a first batch waits for others to share its transaction
DANGLING_RETRIES = 3  # tries a batch gets after its relations missed their nodes
_WAKE = object()  # queued by flush/close: stop lingering, send now


@dataclass
class _After:
    """A store task queued by `after`: runs once what was submitted before it is written."""

    task: Callable[[Store], object]


@dataclass
class _Periodic:
    task: Callable[[Store], object]
    interval: float
    due: float = 0.0  # time.monotonic() of the next run


@dataclass
class WriterStats:
    """What the writer has done so far."""

    submitted: int = 0
    written: int = 0
    dropped: int = 0
    rejected: int = 0  # refused by the store (malformed), not retried
    failures: int = 0
    last_error: str | None = None
    unjournaled: int = 0  # records the journal could not take (kept in memory instead)
    lost: int = 0  # records neither stored nor journaled that the writer let go
    journal_error: str | None = None


class BackgroundWriter:
    """Sends `GraphBatch`es to a `Store` from a daemon thread."""

    def __init__(
        self,
        store: Store,
        max_records: int = 5000,
        interval: float = 0.25,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        journal: Journal | None = None,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        self.store = store
        self.journal = journal
        self.max_records = max_records
        self.interval = interval
        self.linger = linger
        self.max_backlog = max_backlog
        self.stats = WriterStats()
        self._queue: queue.Queue[tuple[int, GraphBatch] | object | None] = queue.Queue()
        self._backlog: list[tuple[int, GraphBatch]] = []  # (journal seq or 0, batch)
        self._replay_journal = False
        self._on_disk_only = 0  # records let go from memory: in the journal only
        self._backlog_size = 0
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._in_flight = 0
        self._warned: set[str] = set()
        self._retry_at = 0.0
        self._backoff = 0.5
        self._dangling: dict[int, int] = {}  # id(batch) -> refusals for missing nodes
        self._periodic: dict[str, _Periodic] = {}  # key -> task run from the thread
        self._after: list[_After] = []  # tasks queued by `after`, in order, not run yet

    def start(self) -> BackgroundWriter:
        """Start the sending thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="provkb-writer", daemon=True)
            self._thread.start()
        return self

    def submit(self, batch: GraphBatch) -> None:
        """Queue a batch; returns at once."""
        if not len(batch):
            return
        seq = 0
        if self.journal is not None:
            try:
                seq = self.journal.append(batch)
            except Exception as exc:  # never break training: keep it in memory instead
                self._journal_failed(batch, exc)
        with self._idle:
            self._in_flight += 1
        self.stats.submitted += len(batch)
        self._queue.put((seq, batch))
        self.start()

    def after(self, task: Callable[[Store], object]) -> None:
        """Queue `task(store)` to run from the writer's thread once every batch submitted
        before it is written (tasks in the order given; `flush` waits for them too).
        While the store is unreachable it is retried with the batches; another error
        is logged and the task dropped. Not journaled: lost if the process ends first."""
        with self._idle:
            self._in_flight += 1
        self._queue.put(_After(task))
        self.start()

    def _journal_failed(self, batch: GraphBatch, exc: Exception) -> None:
        assert self.journal is not None
        reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        self.stats.unjournaled += len(batch)
        self.stats.journal_error = f"cannot write the journal {self.journal.path}: {reason}"
        self._warn_once(
            "journal",
            f"{self.stats.journal_error}; training continues, the records it could not "
            f"take are kept in memory only (up to {self.max_backlog} records) until the "
            f"store has them",
        )

    def flush(self, timeout: float = 30.0, wait_while_unreachable: bool = False) -> bool:
        """Wait until everything submitted is written; False on timeout.

        When the store is unreachable (the writer is backing off), return False at once
        unless `wait_while_unreachable`: the journal keeps the records anyway.
        """
        if self._thread is None:  # closed or never started: nothing will send
            return not (self._backlog_size or self._in_flight)
        deadline = time.monotonic() + timeout
        self._retry_at = 0.0  # try again now
        self._queue.put(_WAKE)  # and don't linger
        with self._idle:
            while self._in_flight or self._backlog_size or self._replay_journal or self._after:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                waiting = self._backlog_size or self._replay_journal or self._after
                backing_off = self._retry_at > time.monotonic()
                if waiting and not self._in_flight and backing_off and not wait_while_unreachable:
                    return False  # store unreachable: don't keep the caller waiting
                self._idle.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Flush, then stop the thread. Returns True when nothing was left unwritten.

        What is left is said truthfully: records in the journal (`provkb sync` replays
        them) and records lost (neither stored nor journaled), counted in `stats.lost`."""
        flushed = self.flush(timeout)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        with self._idle:
            journaled = self._on_disk_only + sum(len(b) for seq, b in self._backlog if seq)
            unjournaled = sum(len(b) for seq, b in self._backlog if not seq)
            self._backlog = [(seq, b) for seq, b in self._backlog if seq]
            self._backlog_size = sum(len(b) for _, b in self._backlog)
            self.stats.lost += unjournaled
        complete = flushed and not unjournaled and not journaled
        if self.journal is not None:
            self._close_journal(complete, journaled)
        if self.stats.lost:
            log.warning(
                "provkb: %d provenance records were lost: the store did not take them "
                "(%s) and they are in no journal (%s)",
                self.stats.lost,
                self.stats.last_error,
                self.stats.journal_error or "no journal",
            )
        return complete

    def _close_journal(self, complete: bool, journaled: int) -> None:
        assert self.journal is not None
        if complete:
            try:
                self.journal.remove()
            except OSError as exc:
                log.warning(
                    "provkb: every record is in the store, but the journal %s could not be "
                    "removed (%s); `provkb sync` will find nothing new in it",
                    self.journal.path,
                    describe_os_error(exc),
                )
            return
        self.journal.close()
        if journaled:
            log.warning(
                "provkb: the store did not take every record (%s); %d records are kept in "
                "%s: run `provkb sync` when the store is back",
                self.stats.last_error,
                journaled,
                self.journal.path,
            )

    @property
    def backlog(self) -> int:
        """Records waiting for the store to come back."""
        return self._backlog_size

    # -- thread -----------------------------------------------------------------
    def every(self, key: str, interval: float, task: Callable[[Store], object] | None) -> None:
        """Run `task(store)` from the writer's thread about every `interval` seconds
        (e.g. a run's heartbeat); None removes it. Skipped while the store is unreachable;
        its errors are logged at debug level, never raised."""
        if task is None:
            self._periodic.pop(key, None)
            return
        self._periodic[key] = _Periodic(task, float(interval))
        self.start()

    def _run_periodic(self) -> None:
        if time.monotonic() < self._retry_at:  # backing off: the store is away
            return
        for key, periodic in list(self._periodic.items()):
            if time.monotonic() < periodic.due:
                continue
            periodic.due = time.monotonic() + periodic.interval
            try:
                periodic.task(self.store)
            except Exception as exc:
                log.debug("provkb: periodic task %s failed: %s", key, exc)

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batches, stopping = self._collect()
            self._absorb(batches)
            self._send_backlog()
            if self._after:
                self._run_after()
            if self._periodic:
                self._run_periodic()

    def _collect(self) -> tuple[list[tuple[int, GraphBatch]], bool]:
        """The batches of the next transaction, and whether the writer is stopping.

        Waits up to `interval` for a first batch, then up to `linger` for more (one
        transaction per epoch costs the server 10x the CPU of a shared one), unless
        `max_records` are reached or a flush or close asks to send now."""
        batches: list[tuple[int, GraphBatch]] = []
        size = 0
        deadline: float | None = None  # set by the first batch
        hurry = False  # a flush or close: take what is queued, wait no more
        while size < self.max_records:
            if hurry:
                wait = 0.0
            elif deadline is None:
                wait = self.interval
            else:
                wait = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batches, True
            if item is _WAKE:
                hurry = True
                continue
            if isinstance(item, _After):  # the batches before it go first
                with self._idle:
                    self._after.append(item)
                    self._in_flight -= 1
                if batches:
                    break
                continue
            batches.append(item)
            size += len(item[1])
            if deadline is None:
                deadline = time.monotonic() + self.linger
        return batches, False

    def _absorb(self, items: list[tuple[int, GraphBatch]]) -> None:
        with self._idle:
            for seq, batch in items:
                self._backlog.append((seq, batch))
                self._backlog_size += len(batch)
                self._in_flight -= 1
            while self._backlog_size > self.max_backlog and self._backlog:
                self._let_go()
            self._idle.notify_all()

    def _let_go(self) -> None:
        """Free memory (holding `_idle`): the oldest journaled batch (replayed from the
        journal later), or when none is journaled the oldest batch, which is lost."""
        index = next((i for i, (seq, _) in enumerate(self._backlog) if seq), None)
        seq, dropped = self._backlog.pop(0 if index is None else index)
        self._backlog_size -= len(dropped)
        self._dangling.pop(id(dropped), None)
        if seq:
            self._replay_journal = True  # still on disk: replayed from there
            self._on_disk_only += len(dropped)
            return
        self.stats.dropped += len(dropped)
        self.stats.lost += len(dropped)
        self._warn_once(
            "lost",
            f"the store is unreachable ({self.stats.last_error}) and the memory backlog "
            f"is full ({self.max_backlog} records): provenance records not in the journal "
            f"are being lost (counted in the writer's stats, reported at exit)",
        )

    def _send_backlog(self) -> None:
        if (not self._backlog and not self._replay_journal) or time.monotonic() < self._retry_at:
            return
        if self._replay_journal and not self._replay_from_journal():
            return
        with self._idle:
            pending = list(self._backlog)
        if not pending:
            return
        merged = GraphBatch.concat(batch for _, batch in pending)
        try:
            self.store.write(merged)
        except QueryError:  # a batch the store refuses: find it, keep the rest flowing
            self._send_one_by_one(pending)
            return
        except Exception as exc:  # unavailable, or unknown: keep everything, retry later
            self._on_failure(exc)
            return
        self._done(pending, written=len(merged))

    def _run_after(self) -> None:
        """Run the queued tasks in order once the backlog before them is written."""
        while self._after and not self._backlog and not self._replay_journal:
            if time.monotonic() < self._retry_at:
                return
            try:
                self._after[0].task(self.store)
            except StoreUnavailable as exc:  # kept, retried with the batches
                self._on_failure(exc)
                return
            except Exception as exc:
                log.warning("provkb: a store task failed and was dropped: %s", exc)
            with self._idle:
                self._after.pop(0)
                self._idle.notify_all()

    def _send_one_by_one(self, pending: list[tuple[int, GraphBatch]]) -> None:
        """Write batches singly; drop (with a warning) those the store refuses outright."""
        sent: list[tuple[int, GraphBatch]] = []
        written = 0
        for seq, batch in pending:
            try:
                self.store.write(batch)
                written += len(batch)
            except QueryError as exc:  # permanent: retrying cannot help
                if self._may_retry(batch, exc):  # unless the store was not itself yet
                    self._on_failure(exc)
                    break
                self.stats.rejected += len(batch)
                self.stats.last_error = str(exc)
                log.warning("provkb: the store refused %d records: %s", len(batch), exc)
            except Exception as exc:  # unavailable or unknown: stop here, retry later
                self._on_failure(exc)
                break
            sent.append((seq, batch))
        if sent:
            self._done(sent, written=written)

    def _may_retry(self, batch: GraphBatch, exc: QueryError) -> bool:
        """Whether a refused batch gets another try: one whose relations missed their
        nodes is retried (with backoff) up to `DANGLING_RETRIES` times, since a store
        that is stopping or has just restarted can answer so for a valid batch."""
        if not isinstance(exc, DanglingRelation):
            return False
        tries = self._dangling.get(id(batch), 0) + 1
        self._dangling[id(batch)] = tries
        return tries <= DANGLING_RETRIES

    def _done(self, sent: list[tuple[int, GraphBatch]], written: int) -> None:
        for _, batch in sent:
            self._dangling.pop(id(batch), None)
        self._acknowledge(max(seq for seq, _ in sent))
        with self._idle:
            del self._backlog[: len(sent)]
            self._backlog_size -= sum(len(b) for _, b in sent)
            self.stats.written += written
            self._backoff = 0.5
            self._idle.notify_all()

    def _acknowledge(self, seq: int) -> None:
        if self.journal is not None and seq:
            try:
                self.journal.acknowledge(seq)
            except OSError as exc:
                self._warn_once(
                    "ack",
                    f"cannot update the journal mark {self.journal.ack_path} "
                    f"({describe_os_error(exc)}); the records are in the store",
                )

    def _replay_from_journal(self) -> bool:
        """After the memory backlog overflowed: send what the journal holds, then resume."""
        assert self.journal is not None
        try:
            for seq, batch in self.journal.pending():
                self.store.write(batch)
                self._acknowledge(seq)
                self.stats.written += len(batch)
        except OSError as exc:  # the journal itself cannot be read: those records are gone
            with self._idle:
                self.stats.lost += self._on_disk_only
                self._on_disk_only = 0
                self._replay_journal = False
            self.stats.journal_error = (
                f"cannot read the journal {self.journal.path}: {describe_os_error(exc)}"
            )
            self._warn_once("journal-read", self.stats.journal_error)
            return True
        except Exception as exc:
            self._on_failure(exc)
            return False
        with self._idle:
            done = self.journal.acknowledged()
            # what the journal did not hold (seq 0) stays, as does what came after it
            kept = [(seq, b) for seq, b in self._backlog if not seq or seq > done]
            self._backlog = kept
            self._backlog_size = sum(len(b) for _, b in kept)
            self._replay_journal = False
            self._on_disk_only = 0
            self._idle.notify_all()
        return True

    def _on_failure(self, exc: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 10.0)
        if self.journal is not None and self.stats.journal_error is None:
            kept = f"in the journal {self.journal.path}"
        else:
            kept = f"in memory only (up to {self.max_backlog} records)"
        self._warn_once(
            "store",
            f"cannot write provenance ({exc}); training continues, records are kept {kept} "
            f"and retried",
        )
        with self._idle:
            self._idle.notify_all()

    def _warn_once(self, key: str, message: str) -> None:
        """Log `message` the first time something goes wrong in the way `key` names."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning("provkb: %s", message)
