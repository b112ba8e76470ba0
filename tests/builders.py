"""Known graphs for tests, made by the real capture code (imported as `builders`).

A `RunBuilder` drives `capture.recorder.RunRecorder` step by step, in the order a
training writes (start, epochs and the adaptations or steering between them, finish,
evaluations), and `write` sends its batches through `Store.write`, the store's one
write path. Node ids come from the id builders (`ids`, i.e. `provkb.capture.ids`) and
the facts are capture's own (`facts`), so a test's graph cannot drift from what capture
records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from provkb.capture import facts, ids
from provkb.capture.recorder import RunRecorder
from provkb.kb.records import GraphBatch
from provkb.kb.store import Store
from provkb.ontology import RunStatus

__all__ = ["RunBuilder", "at", "dataset", "facts", "ids", "write"]

T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)


def at(start: datetime = T0, seconds: float = 0.0) -> str:
    """The ISO 8601 UTC text `seconds` after `start` (how capture writes times)."""
    return (start + timedelta(seconds=seconds)).isoformat()


def dataset(fingerprint: str, name: str, samples: int = 1000) -> facts.Dataset:
    """A float32 image dataset of `samples` 28x28 arrays."""
    return facts.Dataset(fingerprint, name, (samples, 28, 28), "float32", samples)


class RunBuilder:
    """One run, recorded as capture records it: `batches` holds each step's batch (the
    start first), `batch` all of them together.

    `epoch` numbers are 1-based; `elapsed` seconds per epoch place the epochs end to
    end from the run's start, unless an epoch is given its own times.
    """

    def __init__(
        self,
        run_id: str,
        *,
        name: str = "run",
        experiment: str = "experiment",
        project: str = "project",
        person: str = "alice",
        started: str | None = None,
        epochs_planned: int | None = None,
        command_line: str | None = None,
        steerable: bool = True,
        hyperparameters: Iterable[facts.Hyperparameter] = (),
        datasets: Mapping[str, facts.Dataset] | None = None,
        software: facts.Software | None = None,
        machine: facts.Machine | None = None,
        environment: facts.Environment | None = None,
        script: facts.Script | None = None,
        plan: facts.Plan | None = None,
        model: facts.Model | None = None,
    ) -> None:
        self.started = started or at()
        self.run = facts.Run(
            run_id,
            name,
            experiment,
            project,
            person,
            self.started,
            epochs_planned,
            command_line=command_line,
            steerable=steerable,
        )
        self.recorder = RunRecorder(self.run)
        context = facts.RunContext(
            self.run,
            software=software,
            machine=machine,
            environment=environment,
            script=script,
            plan=plan,
            model=model,
            hyperparameters=list(hyperparameters),
            datasets=dict(datasets or {}),
        )
        self.batches = [self.recorder.start(context)]
        self._clock = datetime.fromisoformat(self.started)

    @property
    def node(self) -> str:
        """The run's node id."""
        return self.recorder.run_node

    @property
    def batch(self) -> GraphBatch:
        """Everything recorded so far, in order."""
        return GraphBatch.concat(self.batches)

    def _add(self, batch: GraphBatch) -> RunBuilder:
        self.batches.append(batch)
        return self

    def _times(self, elapsed: float, started: str | None, ended: str | None) -> tuple[str, str]:
        start = datetime.fromisoformat(started) if started else self._clock
        end = datetime.fromisoformat(ended) if ended else start + timedelta(seconds=elapsed)
        self._clock = end
        return start.isoformat(), end.isoformat()

    @property
    def now(self) -> str:
        """The end of the latest epoch (the run's start before the first)."""
        return self._clock.isoformat()

    def epoch(
        self,
        n: int,
        logs: Mapping[str, Any],
        elapsed: float = 1.0,
        *,
        started: str | None = None,
        ended: str | None = None,
    ) -> RunBuilder:
        """Epoch `n` ended with `logs` (its metrics)."""
        start, end = self._times(elapsed, started, ended)
        return self._add(self.recorder.epoch(n, start, end, elapsed, logs))

    def adaptation(self, name: str, value: Any, from_epoch: int, callback: str) -> RunBuilder:
        """A scheduling callback set `name` to `value` from epoch `from_epoch` on (now)."""
        return self._add(self.recorder.adaptation(name, value, from_epoch, callback, self.now))

    def steering(
        self, request_id: str, action: str, person: str, epoch: int | None, **kw: Any
    ) -> RunBuilder:
        """A person's steering request applied now (`RunRecorder.steering`'s keywords)."""
        started = kw.pop("started", self.now)
        return self._add(self.recorder.steering(request_id, action, person, epoch, started, **kw))

    def early_stop(self, epoch: int, callback: str = "EarlyStopping") -> RunBuilder:
        """`callback` stopped the training after epoch `epoch`."""
        return self._add(self.recorder.early_stop(epoch, callback, self.now))

    def finish(
        self,
        status: str = RunStatus.COMPLETED,
        *,
        stopped_epoch: int | None = None,
        error: str | None = None,
        weights_sha256: str | None = None,
    ) -> RunBuilder:
        """The run ended (now) with `status`."""
        batch = self.recorder.finish(status, self.now, stopped_epoch, error, weights_sha256)
        return self._add(batch)

    def evaluation(
        self, logs: Mapping[str, Any], on: facts.Dataset | None = None, *, started: str, ended: str
    ) -> RunBuilder:
        """An evaluation of the run's model with test metrics `logs`."""
        return self._add(self.recorder.evaluation(started, ended, logs, on))

    def write(self, store: Store) -> RunBuilder:
        """Write everything so far (`Store.write`)."""
        store.write(self.batch)
        return self


def write(store: Store, *parts: RunBuilder | GraphBatch) -> int:
    """Write runs and batches in one `Store.write`; returns the records written."""
    batch = GraphBatch.concat(p.batch if isinstance(p, RunBuilder) else p for p in parts)
    return store.write(batch)
