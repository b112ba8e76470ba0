"""A background writer: callers hand it batches and never wait for the database.

Batches are merged and sent from one thread. When the store cannot be reached the
writer warns once, keeps a bounded backlog in memory and retries with backoff; the
training process never blocks on it and never sees its exceptions.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from ..errors import ProvKBError
from .records import GraphBatch
from .store import Store

log = logging.getLogger("provkb.writer")

DEFAULT_MAX_BACKLOG = 500_000  # records kept in memory while the store is unreachable


@dataclass
class WriterStats:
    """What the writer has done so far."""

    submitted: int = 0
    written: int = 0
    dropped: int = 0
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
    ) -> None:
        self.store = store
        self.max_records = max_records
        self.interval = interval
        self.max_backlog = max_backlog
        self.stats = WriterStats()
        self._queue: queue.Queue[GraphBatch | None] = queue.Queue()
        self._backlog: list[GraphBatch] = []
        self._backlog_size = 0
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._in_flight = 0
        self._warned = False
        self._retry_at = 0.0
        self._backoff = 0.5

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
        with self._idle:
            self._in_flight += 1
        self.stats.submitted += len(batch)
        self._queue.put(batch)
        self.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted is written; False on timeout or while unreachable."""
        deadline = time.monotonic() + timeout
        self._retry_at = 0.0  # try again now
        with self._idle:
            while self._in_flight or self._backlog_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._backlog_size and not self._in_flight and self._retry_at > time.monotonic():
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
        if self._backlog_size:
            log.warning(
                "provkb: %d provenance records could not be written (%s)",
                self._backlog_size,
                self.stats.last_error,
            )
        return flushed and not self._backlog_size

    @property
    def backlog(self) -> int:
        """Records waiting for the store to come back."""
        return self._backlog_size

    # -- thread -----------------------------------------------------------------
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batches: list[GraphBatch] = []
            try:
                item = self._queue.get(timeout=self.interval)
                if item is None:
                    stopping = True
                else:
                    batches.append(item)
                size = sum(len(b) for b in batches)
                while size < self.max_records:
                    item = self._queue.get_nowait()
                    if item is None:
                        stopping = True
                        break
                    batches.append(item)
                    size += len(item)
            except queue.Empty:
                pass
            self._absorb(batches)
            self._send_backlog()

    def _absorb(self, batches: list[GraphBatch]) -> None:
        with self._idle:
            for batch in batches:
                self._backlog.append(batch)
                self._backlog_size += len(batch)
                self._in_flight -= 1
            while self._backlog_size > self.max_backlog and self._backlog:
                dropped = self._backlog.pop(0)
                self._backlog_size -= len(dropped)
                self.stats.dropped += len(dropped)
            self._idle.notify_all()

    def _send_backlog(self) -> None:
        if not self._backlog or time.monotonic() < self._retry_at:
            return
        with self._idle:
            pending = list(self._backlog)
        merged = GraphBatch.concat(pending)
        try:
            self.store.write(merged)
        except ProvKBError as exc:
            self._on_failure(exc)
            return
        except Exception as exc:  # never let the thread die
            self._on_failure(exc)
            return
        with self._idle:
            del self._backlog[: len(pending)]
            self._backlog_size -= len(merged)
            self.stats.written += len(merged)
            self._backoff = 0.5
            self._idle.notify_all()

    def _on_failure(self, exc: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 10.0)
        if not self._warned:
            self._warned = True
            log.warning(
                "provkb: cannot write provenance (%s); training continues, "
                "records are kept in memory and retried",
                exc,
            )
        with self._idle:
            self._idle.notify_all()
