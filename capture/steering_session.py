"""The steering of one run inside its training process (docs/graph-model.md, "Steering").

A `SteeringSession` starts the run's `SteeringPoller` and `SteeringApplier`, applies
what was claimed at epoch ends (or every N batches, stop requests then deferred to the
epoch end), and cleans up when the run ends. The training thread never waits on the
store: actions go to the background writer, and each request's outcome is written by
`Steering.resolve` as a task of that writer, after the action it refers to. A request
node's state therefore changes only through the guarded statements of `kb`: claimed by
the poller, resolved by its claimer once, and at the end whatever is left rejected by
`Steering.reject_unapplied`, queued after every outcome and the run's final status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..kb.records import GraphBatch
from ..kb.steering import APPLIED, NOTE, SET, STOP, Steering, SteeringRequest
from ..kb.store import Store
from ..kb.writer import BackgroundWriter
from .facts import Source
from .recorder import RunRecorder
from .run_lifecycle import now
from .safety import WarnOnce, swallow
from .steerable import Steerable
from .steering import RUN_ENDED, Applied, SteeringApplier, SteeringPoller


def steerables_of(
    given: Mapping[str, Steerable] | Iterable[Steerable] | None,
) -> dict[str, Steerable]:
    """name -> Steerable, from a mapping or a list of `Steerable`s."""
    if given is None:
        return {}
    items = given.items() if isinstance(given, Mapping) else ((s.name, s) for s in given)
    out: dict[str, Steerable] = {}
    for name, steerable in items:
        if not isinstance(steerable, Steerable):
            raise TypeError(
                f"steerable {name!r} must be a provkb.Steerable, got {type(steerable).__name__}"
            )
        out[str(name)] = steerable
    return out


def _resolver(request: SteeringRequest, outcome: Applied) -> Callable[[Store], object]:
    props = outcome.outcome_props()
    return lambda store: Steering(store).resolve(request, outcome.status, outcome.reason, **props)


class SteeringSession:
    """Steering of one run: started with the run, `apply`ed at its boundaries, `end`ed
    after its final status. `log` (the callback's `steering_log`) gets every outcome."""

    def __init__(
        self,
        writer: BackgroundWriter,
        recorder: RunRecorder,
        log: list[Applied],
        warn: WarnOnce,
        poll_interval: float = 1.0,
        pause: Callable[[str, int], tuple[list[str], str | None]] | None = None,
    ) -> None:
        self.writer = writer
        self.pause = pause  # pauses the schedules of a steered value (SteeringApplier)
        self.recorder = recorder
        self.log = log
        self.poll_interval = poll_interval
        self._warn = warn
        self.poller: SteeringPoller | None = None
        self._applier: SteeringApplier | None = None
        self._deferred: list[SteeringRequest] = []
        self._ending: SteeringPoller | None = None
        self.stopped_by_request: int | None = None  # the epoch a stop request ended

    def start(self, model: Any, steerables: Mapping[str, Steerable]) -> None:
        """Start claiming requests for the run (warned, never raised, when it cannot)."""
        try:
            ledger = self.recorder.ledger
            recorded = {  # those recorded as user values (not shadowed by Keras' own)
                name: s
                for name, s in steerables.items()
                if (v := ledger.current(name)) is not None and v.source == Source.USER
            }
            self._applier = SteeringApplier(model, self.recorder, recorded, self.pause)
            self.poller = SteeringPoller(
                self.writer.store, self.recorder.run_id, self.poll_interval, warn=self._warn
            ).start()
        except Exception as exc:
            self.poller = None
            swallow(self._warn, "provkb: steering is unavailable: %s", exc, exc=exc)

    def apply(
        self, model: Any, next_epoch: int, last_epoch: int | None, batch: int | None = None
    ) -> list[Applied]:
        """Apply what the poller claimed; returns the applied outcomes.

        At an epoch end (`batch` None) changes take effect from `next_epoch`; every N
        batches from the next batch, stop requests then waiting for the epoch end.
        """
        poller, applier = self.poller, self._applier
        if poller is None or applier is None:
            return []
        requests, self._deferred = [*self._deferred, *poller.drain()], []
        if not requests:
            if batch is None:
                poller.wake()
            return []
        # JAX: reading `model` attaches the training state to the model first (mid-epoch
        # it lives apart), so the next step starts from what we change.
        applier.model = model
        out, done, applied, at = GraphBatch(), [], [], now()
        for request in requests:
            if batch is not None and request.action == STOP:
                self._deferred.append(request)
                continue
            try:
                record, outcome = applier.apply(request, next_epoch, last_epoch, at, batch)
            except Exception as exc:  # a bug, not a refusal: reject, keep training
                swallow(self._warn, "provkb: a steering request failed: %s", exc, exc=exc)
                record, outcome = applier.reject(request, f"could not be applied: {exc}")
            out.extend(record)
            done.append((request, outcome))
            if outcome.status == APPLIED:
                applied.append(outcome)
                if request.action == STOP:
                    self.stopped_by_request = outcome.epoch
        self._record(out, done)
        if batch is None:
            poller.wake()
        return applied

    def changed(self, outcome: Applied) -> tuple[str, Any, Any] | None:
        """(name, live value, recorded value) when `outcome` set a hyperparameter."""
        if outcome.action == SET and outcome.hyperparameter is not None:
            return outcome.hyperparameter, outcome.live_value, outcome.new_value
        return None

    def _record(self, out: GraphBatch, done: list[tuple[SteeringRequest, Applied]]) -> None:
        """Submit the actions, then queue each request's outcome (written after them)."""
        if len(out):
            self.writer.submit(out)
        for request, outcome in done:
            self.log.append(outcome)
            self.writer.after(_resolver(request, outcome))

    def end(self, next_epoch: int, last_epoch: int | None) -> None:
        """Stop claiming (call after the run's final status is submitted). What was
        claimed but not applied: notes are recorded, the rest rejected; once the poller
        has stopped, whatever is left in the store is rejected, after everything else
        this run wrote (so a request submitted later is refused by its submitter:
        `Steering.submit_request` checks the run again after writing it)."""
        poller, applier = self.poller, self._applier
        if poller is None:
            return
        self.poller = None
        try:
            requests = [*self._deferred, *poller.drain()]
            self._deferred = []
            out, done = GraphBatch(), []
            for request in requests:
                if applier is None:
                    continue
                if request.action == NOTE:
                    record, outcome = applier.apply(request, next_epoch, last_epoch, now())
                else:
                    record, outcome = applier.reject(request, RUN_ENDED)
                out.extend(record)
                done.append((request, outcome))
            self._record(out, done)
        except Exception as exc:
            swallow(self._warn, "provkb: steering clean-up failed: %s", exc, exc=exc)
        writer, run_id = self.writer, self.recorder.run_id

        def sweep() -> None:  # in the poller's thread, after its last claim
            writer.after(lambda store: Steering(store).reject_unapplied(run_id, RUN_ENDED))

        self._ending = poller
        poller.stop(sweep)

    def join(self, timeout: float) -> bool:
        """Wait for the stopped poller (its sweep then queued); True when it ended."""
        poller = self._ending
        if poller is None:
            return True
        with contextlib.suppress(Exception):
            if poller.join(timeout):
                self._ending = None
                return True
        return False
