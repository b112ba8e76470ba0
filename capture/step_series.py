"""Per-step metrics as compact series (`ProvenanceCallback(log_every_n_steps=N)`).

Every N-th training step's logs (the dict Keras already made of its batch logs) are
kept by one `deque.append` in the hook, nothing else: no conversion, no device sync
(on TensorFlow Keras converts the batch logs to floats for every batch anyway; on
JAX the hook is async-safe, so Keras keeps dispatching batch ends off the training
thread). A flusher thread of the run turns them, every `flush_interval` seconds and
at each epoch end, into `MetricSeries` entities: one per epoch and metric (a part
per flush, while an epoch lasts longer than the interval, and per `MAX_PART_POINTS`
points), holding typed arrays `steps` (int, the run's 1-based step) and `values`
(float), and hands them to the run's background writer (journal first, as every
record). At its epoch end each part WAS_GENERATED_BY the Epoch activity; a part of
an epoch that never ended (the process died) has its `runId` and `epoch` only.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..kb.identity import now_iso
from ..kb.records import GraphBatch
from ..ontology import ENTITY, METRIC_SERIES, WAS_GENERATED_BY, Prop
from ..ontology.ids import segment
from . import ids
from .safety import WarnOnce

DEFAULT_FLUSH_SECONDS = 5.0  # a running epoch's new points reach the journal this often
MAX_PART_POINTS = 10_000  # points of one part: its values' JSON stays far below 1 MB
CLOSE_SECONDS = 5.0  # what the end of a fit waits at most for the last flush
_END = object()  # queued by end_epoch: the epoch's parts get their generation
_CLOSE = object()  # queued by close: the last flush, then the thread ends


def check_every(value: Any) -> int | None:
    """`log_every_n_steps` as given: None (off) or a positive int; ValueError else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"log_every_n_steps must be a positive integer or None, got {value!r}")
    return int(value)


def series_id(run_id: str, epoch: int, metric: str, part: int) -> str:
    """`provkb:run/<run>/epoch/<n>/steps/<metric>/<part>` (the metric name escaped)."""
    return f"{ids.epoch(run_id, epoch)}/steps/{segment(metric)}/{part}"


def _number(value: Any) -> float | None:
    """A log value as a float (NaN and infinities kept); None for text, bools, None."""
    if type(value) is float:
        return value
    if value is None or isinstance(value, bool | str | bytes):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _by_metric(
    steps: list[int], logs: list[Mapping[str, Any]]
) -> dict[str, tuple[list[int], list[float]]]:
    """{metric: (steps, values)} of one epoch's logged steps, in step order (Keras'
    executor may run batch ends out of order); a step whose value is no number is left
    out of that metric. The usual case (the same float keys every step) is one list
    comprehension per metric."""
    if any(a > b for a, b in zip(steps, steps[1:], strict=False)):
        order = sorted(range(len(steps)), key=steps.__getitem__)
        steps, logs = [steps[i] for i in order], [logs[i] for i in order]
    keys: dict[str, None] = {}
    for one in logs:
        for key in one:
            keys.setdefault(key, None)
    out: dict[str, tuple[list[int], list[float]]] = {}
    for key in keys:
        values = [one.get(key) for one in logs]
        if all(type(v) is float for v in values):
            out[str(key)] = (steps, values)  # type: ignore[assignment]
            continue
        kept = [(s, n) for s, v in zip(steps, values, strict=True) if (n := _number(v)) is not None]
        if kept:
            out[str(key)] = ([s for s, _ in kept], [n for _, n in kept])
    return out


class StepSeries:
    """One run's step buffer (filled by the hook) and its flusher thread."""

    def __init__(
        self,
        run_id: str,
        every: int,
        submit: Callable[[GraphBatch], None],
        steps_per_epoch: int | None = None,
        flush_interval: float = DEFAULT_FLUSH_SECONDS,
        warn: WarnOnce | None = None,
    ) -> None:
        self.run_id = run_id
        self.every = every
        self.flush_interval = float(flush_interval)
        self._submit = submit
        self._warn = warn or WarnOnce()
        self._steps_per_epoch = steps_per_epoch if isinstance(steps_per_epoch, int) else None
        self._queue: collections.deque[tuple[Any, int, Any]] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # only when Keras does not know the epoch's steps
        self._thread: threading.Thread | None = None
        self._epoch = 0
        self._first = 0  # steps of the run before the current epoch
        self._top = -1  # the epoch's highest batch index seen (steps unknown)
        self._parts: dict[tuple[int, str], int] = {}  # (epoch, metric) -> parts written
        self._ids: dict[int, list[str]] = {}  # epoch -> its part ids (for the generation)
        self.points = 0  # points turned into series so far
        self.parts = 0  # parts submitted so far

    # -- the training thread (and Keras' batch-end executor) ---------------------------
    def start(self) -> StepSeries:
        """Start the flusher thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="provkb-steps", daemon=True)
            self._thread.start()
        return self

    def begin_epoch(self, epoch: int) -> None:
        """Epoch `epoch` (1-based) starts: its batch `b` is step `first + b + 1`."""
        self._epoch = epoch
        self._top = -1

    def record(self, batch: int, logs: Mapping[str, Any]) -> None:
        """Keep the logs of batch `batch` (0-based in its epoch) when its step is logged."""
        step = self._first + batch + 1
        if step % self.every == 0:
            self._queue.append((self._epoch, step, logs))
        if self._steps_per_epoch is None:
            with self._lock:
                if batch > self._top:
                    self._top = batch

    def end_epoch(self, epoch: int) -> None:
        """Epoch `epoch` ended (its Epoch activity is submitted): flush it now."""
        self._first += self._steps_per_epoch or (self._top + 1)
        self._queue.append((_END, epoch, None))
        self._wake.set()

    def close(self, timeout: float = CLOSE_SECONDS) -> bool:
        """Flush what is left and end the thread; False if it did not end in `timeout`."""
        self._queue.append((_CLOSE, 0, None))
        self._wake.set()
        thread = self._thread
        if thread is None:
            self._flush()
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # -- the flusher thread ------------------------------------------------------------
    def _run(self) -> None:
        closed = False
        while not closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            closed = self._flush()

    def _flush(self) -> bool:
        """Turn what is queued into parts and submit them; True once close was asked."""
        closed = False
        try:
            closed = self._submit_batch()
        except Exception as exc:  # never reaches training; the next flush tries again
            self._warn("provkb: could not record per-step metrics: %s", exc, exc=exc)
        return closed

    def _submit_batch(self) -> bool:
        logged: dict[int, tuple[list[int], list[Mapping[str, Any]]]] = {}  # epoch -> steps, logs
        ended: list[int] = []
        closed = False
        queue = self._queue
        while queue:
            epoch, step, logs = queue.popleft()
            if epoch is _END:
                ended.append(step)
            elif epoch is _CLOSE:
                closed = True
            else:
                steps, logs_list = logged.setdefault(epoch, ([], []))
                steps.append(step)
                logs_list.append(logs)
        batch = GraphBatch()
        at = now_iso()
        for epoch, (steps, logs_list) in logged.items():
            for metric, pairs in _by_metric(steps, logs_list).items():
                for start in range(0, len(pairs[0]), MAX_PART_POINTS):
                    end = start + MAX_PART_POINTS
                    self._part(batch, epoch, metric, pairs[0][start:end], pairs[1][start:end], at)
        for epoch in ended:
            for part in self._ids.pop(epoch, []):
                batch.add_edge(WAS_GENERATED_BY, part, ids.epoch(self.run_id, epoch))
        if len(batch):
            self._submit(batch)
        return closed

    def _part(
        self,
        batch: GraphBatch,
        epoch: int,
        metric: str,
        steps: list[int],
        values: list[float],
        at: str,
    ) -> None:
        k = self._parts.get((epoch, metric), 0) + 1
        self._parts[(epoch, metric)] = k
        node = series_id(self.run_id, epoch, metric, k)
        batch.add_node(
            node,
            ENTITY,
            METRIC_SERIES,
            **{
                Prop.RUN_ID: self.run_id,
                Prop.EPOCH: epoch,
                Prop.METRIC: metric,
                Prop.PART: k,
                Prop.STEPS: steps,
                Prop.VALUES: values,
                Prop.POINTS: len(steps),
                Prop.FIRST_STEP: steps[0],
                Prop.LAST_STEP: steps[-1],
                Prop.LOG_EVERY_N_STEPS: self.every,
                Prop.GENERATED: at,
            },
        )
        self._ids.setdefault(epoch, []).append(node)
        self.points += len(steps)
        self.parts += 1


def for_run(
    every: int | None,
    run_id: str,
    submit: Callable[[GraphBatch], None],
    params: Mapping[str, Any] | None,
    warn: WarnOnce,
    flush_interval: float = DEFAULT_FLUSH_SECONDS,
) -> StepSeries | None:
    """The started step series of a run, or None when steps are not logged."""
    if every is None:
        return None
    steps = (params or {}).get("steps")
    return StepSeries(run_id, every, submit, steps, flush_interval, warn).start()
