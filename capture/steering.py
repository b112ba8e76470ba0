"""Run-level steering inside the training process (docs/graph-model.md, "Steering").

`SteeringPoller` claims a run's pending requests from a background thread (one cheap
write query every `interval` seconds, and right after each epoch end); the training
thread drains what it claimed without ever waiting on the database, and
`SteeringApplier` applies each request to the model and builds what to record;
`SteeringSession` (capture/steering_session.py) runs both for a run.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..kb.lifecycle import RUN_ENDED as RUN_ENDED  # re-exported: what a late request gets
from ..kb.records import GraphBatch
from ..kb.steering import (
    APPLIED,
    NOTE,
    REJECTED,
    SET,
    STOP,
    Steering,
    SteeringRequest,
    check_value,
)
from ..kb.store import Store
from ..ontology import Prop
from . import ids, model_info
from .facts import Source
from .recorder import RunRecorder
from .safety import WarnOnce
from .steerable import Steerable

log = logging.getLogger("provkb")

MAX_BACKOFF = 30.0


def claimer_name(run_id: str) -> str:
    """Who claims: host, process and run, unique per poller."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}:{uuid.uuid4().hex[:6]}"


class SteeringPoller:
    """Claims the pending requests of one run in a daemon thread.

    Claimed requests go to `deliver` (default: this poller's inbox, emptied by
    `drain`). Claiming is atomic in the store, so several pollers of one run never
    share a request. When the store cannot be reached, steering is unavailable: a
    warning once, then quiet retries with backoff; training never notices.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        interval: float = 1.0,
        deliver: Callable[[SteeringRequest], None] | None = None,
        warn: WarnOnce | None = None,
        limit: int = 50,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.interval = max(0.01, float(interval))
        self.claimer = claimer_name(run_id)
        self.limit = limit
        self._warn = warn or WarnOnce()
        self._inbox: queue.SimpleQueue[SteeringRequest] = queue.SimpleQueue()
        self._deliver = deliver or self._inbox.put
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._finish: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self.claimed = 0
        self.polls = 0
        self.failures = 0
        self.claim_seconds = 0.0  # total time spent in claim calls

    def start(self) -> SteeringPoller:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"provkb-steering-{self.run_id}", daemon=True
            )
            self._thread.start()
        return self

    def wake(self) -> None:
        """Claim now (e.g. an epoch just ended) instead of at the next interval."""
        self._wake.set()

    def deliver(self, request: SteeringRequest) -> None:
        """Hand a claimed request to this poller's inbox (for another poller's use)."""
        self._inbox.put(request)

    def drain(self) -> list[SteeringRequest]:
        """What was claimed so far (never blocks)."""
        out = []
        while True:
            try:
                out.append(self._inbox.get_nowait())
            except queue.Empty:
                return out

    def stop(self, finish: Callable[[], None] | None = None) -> None:
        """Stop claiming; `finish` then runs in the poller's thread (errors logged)."""
        self._finish = finish
        self._stopping.set()
        self._wake.set()
        if self._thread is None and finish is not None:
            self._run_finish()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread (and its `finish`); True when it ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll_once(self) -> list[SteeringRequest]:
        """One claim call; the claimed requests are delivered and returned."""
        started = time.perf_counter()
        try:
            claimed = Steering(self.store).claim(self.run_id, self.claimer, self.limit)
        finally:
            self.polls += 1
            self.claim_seconds += time.perf_counter() - started
        for request in claimed:
            self.claimed += 1
            self._deliver(request)
        return claimed

    def _loop(self) -> None:
        delay = self.interval
        while not self._stopping.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.poll_once()
                delay = self.interval
            except Exception as exc:
                self.failures += 1
                delay = min(max(delay, 0.5) * 2, MAX_BACKOFF)
                self._warn(
                    "provkb: steering is unavailable for run %s (%s); training continues "
                    "and requests are picked up once the store is back",
                    self.run_id,
                    exc,
                    exc=exc,
                )
        self._run_finish()

    def _run_finish(self) -> None:
        finish, self._finish = self._finish, None
        if finish is None:
            return
        try:
            finish()
        except Exception as exc:
            log.debug("provkb: steering clean-up of run %s failed: %s", self.run_id, exc)


@dataclass
class Applied:
    """What applying one request did (kept in `ProvenanceCallback.steering_log`)."""

    request_id: str
    action: str
    status: str  # applied or rejected
    epoch: int | None  # the action's epoch (see RunRecorder.steering)
    hyperparameter: str | None = None
    old_value: Any = None
    new_value: Any = None
    live_value: Any = None  # the value read back from the optimizer
    reason: str | None = None  # why it was rejected (applied: what else it did)
    claimed_by: str | None = None
    applied_at: float = 0.0  # time.time()
    action_id: str | None = None  # the recorded SteeringAction (applied only)

    def outcome_props(self) -> dict[str, Any]:
        """What the request node stores besides its status and reason."""
        if self.status != APPLIED:
            return {}
        return {Prop.APPLIED_EPOCH: self.epoch, Prop.ACTION_ID: self.action_id}


class SteeringApplier:
    """Applies claimed requests to a model, on the training thread.

    Optimizer hyperparameters are set on the optimizer (the learning rate assigned to
    its variable; the others set and the train function rebuilt), `Steerable`s get
    their new `.value`, stop sets `model.stop_training`, notes are only recorded.
    `pause(name, from_epoch)` pauses the schedules of an optimizer value a person set
    (`HyperparameterTracker.pause_schedules`): their names and what to tell the person.
    """

    def __init__(
        self,
        model: Any,
        recorder: RunRecorder,
        steerables: dict[str, Steerable],
        pause: Callable[[str, int], tuple[list[str], str | None]] | None = None,
    ) -> None:
        self.model = model
        self.recorder = recorder
        self.steerables = steerables
        self.pause = pause

    def apply(
        self,
        request: SteeringRequest,
        next_epoch: int,
        last_epoch: int | None,
        at: str,
        batch: int | None = None,
    ) -> tuple[GraphBatch, Applied]:
        """Apply one request; the batch records the action (empty for a rejection:
        the request's outcome is written by `Steering.resolve`, see `SteeringSession`).

        `next_epoch` is the first epoch the change affects, `last_epoch` the latest
        finished one (None before the first). `batch` is set when applied mid-epoch.
        """
        try:
            return self._apply(request, next_epoch, last_epoch, at, batch)
        except _Refused as refused:
            return self.reject(request, str(refused))

    def reject(self, request: SteeringRequest, reason: str) -> tuple[GraphBatch, Applied]:
        outcome = Applied(
            request.request_id,
            request.action,
            REJECTED,
            None,
            request.hyperparameter,
            reason=reason,
            claimed_by=request.extra.get("claimedBy"),
            applied_at=time.time(),
        )
        return GraphBatch(), outcome

    def _apply(
        self,
        request: SteeringRequest,
        next_epoch: int,
        last_epoch: int | None,
        at: str,
        batch: int | None,
    ) -> tuple[GraphBatch, Applied]:
        if request.run_id != self.recorder.run_id:
            raise _Refused(f"the request is for run {request.run_id}, not this run")
        extra: dict[str, Any] = {} if batch is None else {"batch": batch}
        outcome = Applied(
            request.request_id,
            request.action,
            APPLIED,
            None,
            claimed_by=request.extra.get("claimedBy"),
            applied_at=time.time(),
        )
        name, value = request.hyperparameter, request.value
        if request.action == SET:
            outcome.epoch = next_epoch
            outcome.hyperparameter = name
            live, on_optimizer = self._set(name, value, next_epoch)
            outcome.old_value = self.recorder.ledger.current(name).value  # type: ignore[union-attr]
            outcome.new_value, outcome.live_value = value, live
            if on_optimizer and self.pause is not None and name:
                paused, outcome.reason = self.pause(name, next_epoch)
                if paused:
                    extra[Prop.PAUSED_SCHEDULES] = paused
        elif request.action == STOP:
            outcome.epoch = last_epoch
            self.model.stop_training = True
        elif request.action == NOTE:
            outcome.epoch = last_epoch
        else:
            raise _Refused(f"unknown steering action {request.action!r}")
        record = self.recorder.steering(
            request.request_id,
            request.action,
            request.person or self.recorder.run.person,
            outcome.epoch,
            at,
            hyperparameter=name if request.action == SET else None,
            value=value,
            reason=request.reason,
            note=request.note,
            request_node=request.node_id,
            seen_metrics=request.seen_metrics,
            **extra,
        )
        outcome.action_id = ids.steering_action(self.recorder.run_id, request.request_id)
        return record, outcome

    def _set(self, name: str | None, value: Any, from_epoch: int) -> tuple[Any, bool]:
        """Change the value in the training; returns what it now holds and whether it
        was set on the optimizer."""
        if not name:
            raise _Refused("no hyperparameter named")
        current = self.recorder.ledger.current(name)
        if current is None:
            raise _Refused(f"{name!r} is not a hyperparameter of this run")
        problem = check_value(name, value, current.value)
        if problem:
            raise _Refused(problem)
        steerable = self.steerables.get(name)
        if steerable is not None:
            steerable.set(value, from_epoch)
            return value, False
        optimizer = getattr(self.model, "optimizer", None)
        from_optimizer = (Source.OPTIMIZER, Source.ADAPTATION, Source.STEERING)
        if current.source in from_optimizer and optimizer is not None:
            try:  # the optimizer's own reason first (e.g. a learning-rate schedule)
                return model_info.set_optimizer_value(self.model, name, value), True
            except ValueError as exc:
                raise _Refused(str(exc)) from exc
        raise _Refused(f"{name!r} is not a steerable hyperparameter of this run")


class _Refused(Exception):
    """A request that cannot be applied (its reason is the message)."""
