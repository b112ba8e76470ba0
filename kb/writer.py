"""A background writer: callers hand it batches and never wait for the database.

Batches are merged and sent from one thread. With a `Journal`, each batch is first
appended to the local journal (in the caller's thread: a buffered append), and
acknowledged there once the store has it. When the store cannot be reached the writer
warns once, keeps a bounded backlog in memory (the journal keeps everything) and
retries with backoff; the training process never blocks on it and never sees its
exceptions.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from ..errors import QueryError
from .journal import Journal
from .records import GraphBatch
from .store import DanglingRelation, Store

log = logging.getLogger("provkb.writer")

DEFAULT_MAX_BACKLOG = 500_000  # records kept in memory while the store is unreachable
DEFAULT_LINGER = 1.0  # seconds a first batch waits for others to share its transaction
DANGLING_RETRIES = 3  # tries a batch gets after its relations missed their nodes
_WAKE = object()  # queued by flush/close: stop lingering, send now


@dataclass
class WriterStats:
    """What the writer has done so far."""

    submitted: int = 0
    written: int = 0
    dropped: int = 0
    rejected: int = 0  # refused by the store (malformed), not retried
    failures: int = 0
    last_error: str | None = None


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
        self._backlog: list[tuple[int, GraphBatch]] = []
        self._replay_journal = False
        self._backlog_size = 0
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._in_flight = 0
        self._warned = False
        self._retry_at = 0.0
        self._backoff = 0.5
        self._dangling: dict[int, int] = {}  # id(batch) -> refusals for missing nodes

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
            except (OSError, TypeError, ValueError) as exc:
                self._warn_once(f"cannot append to the journal {self.journal.path}: {exc}")
        with self._idle:
            self._in_flight += 1
        self.stats.submitted += len(batch)
        self._queue.put((seq, batch))
        self.start()

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
            while self._in_flight or self._backlog_size or self._replay_journal:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                waiting = self._backlog_size or self._replay_journal
                backing_off = self._retry_at > time.monotonic()
                if waiting and not self._in_flight and backing_off and not wait_while_unreachable:
                    return False  # store unreachable: don't keep the caller waiting
                self._idle.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Flush, then stop the thread. Returns True when nothing was left unwritten."""
        flushed = self.flush(timeout)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        complete = flushed and not self._backlog_size and not self._replay_journal
        if self.journal is not None:
            if complete:
                self.journal.remove()
            else:
                self.journal.close()
                log.warning(
                    "provkb: the store did not take every record (%s); they are kept in "
                    "%s: run `provkb sync` when the store is back",
                    self.stats.last_error,
                    self.journal.path,
                )
        elif self._backlog_size:
            log.warning(
                "provkb: %d provenance records could not be written (%s)",
                self._backlog_size,
                self.stats.last_error,
            )
        return complete

    @property
    def backlog(self) -> int:
        """Records waiting for the store to come back."""
        return self._backlog_size

    # -- thread -----------------------------------------------------------------
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batches, stopping = self._collect()
            self._absorb(batches)
            self._send_backlog()

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
                _, dropped = self._backlog.pop(0)
                self._backlog_size -= len(dropped)
                self._dangling.pop(id(dropped), None)
                if self.journal is not None and self.journal.path.exists():
                    self._replay_journal = True  # still on disk: replayed from there
                else:
                    self.stats.dropped += len(dropped)
            self._idle.notify_all()

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
        if not isinstance(exc.__cause__, DanglingRelation):
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
                self._warn_once(f"cannot update the journal {self.journal.ack_path}: {exc}")

    def _replay_from_journal(self) -> bool:
        """After the memory backlog overflowed: send what the journal holds, then resume."""
        assert self.journal is not None
        try:
            for seq, batch in self.journal.pending():
                self.store.write(batch)
                self.journal.acknowledge(seq)
                self.stats.written += len(batch)
        except Exception as exc:
            self._on_failure(exc)
            return False
        with self._idle:
            done = self.journal.acknowledged()
            kept = [(seq, b) for seq, b in self._backlog if seq > done]
            self._backlog = kept
            self._backlog_size = sum(len(b) for _, b in kept)
            self._replay_journal = False
            self._idle.notify_all()
        return True

    def _on_failure(self, exc: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 10.0)
        kept = "in the journal" if self.journal is not None else "in memory"
        self._warn_once(
            f"cannot write provenance ({exc}); training continues, records are kept {kept} "
            f"and retried"
        )
        with self._idle:
            self._idle.notify_all()

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("provkb: %s", message)
