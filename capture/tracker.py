"""The hyperparameter watch of a run: reads the tracked values at ProvKB's hooks,
attributes each change to the callback that made it (`attribution`), and records an
adaptation when an epoch starts with a value that differs from its version. A person's
steered learning rate pauses the run's learning-rate schedules (`pause_schedules`), so
the value stays in force until the end of the `fit` (docs/graph-model.md, "Steering and
schedules")."""

from __future__ import annotations

from typing import Any

from ..kb.records import GraphBatch
from . import attribution, model_info
from .facts import GENERIC_CALLBACK
from .recorder import RunRecorder, same_value


class HyperparameterTracker:
    """Tracked values of one run, what each was last seen as, and who changed it."""

    def __init__(self, me: Any = None) -> None:
        self.me = me  # the ProvenanceCallback among the siblings
        self.siblings: list[Any] = []
        self.tracked: list[str] = []
        self._seen: dict[str, Any] = {}
        self._changed_by: dict[str, str] = {}
        self._steered: dict[str, tuple[Any, Any]] = {}  # name -> (live value, recorded)
        self._hook = attribution.TRAIN_BEGIN
        self._paused: list[tuple[Any, str]] = []  # (callback, hook) paused by steering

    def start(self, recorder: RunRecorder, siblings: list[Any], optimizer: Any) -> None:
        """A new run: watch the values its ledger tracks, as they are now."""
        self.siblings = siblings
        self.tracked = recorder.ledger.tracked_names()
        self._seen = model_info.read_tracked(optimizer, self.tracked)
        self._changed_by, self._steered = {}, {}
        self._hook = attribution.TRAIN_BEGIN
        self.resume_schedules()

    def checkpoint(self, hook: str, optimizer: Any) -> None:
        """Read the tracked values; attribute each change to the callbacks that ran."""
        values = model_info.read_tracked(optimizer, self.tracked)
        for name, value in list(values.items()):
            steered = self._steered.get(name)
            if steered is not None:  # a value steering set: seen as it was recorded
                if same_value(value, steered[0]):
                    values[name] = steered[1]
                else:
                    del self._steered[name]
        for name, value in values.items():
            if name in self._seen and not same_value(value, self._seen[name]):
                found = attribution.candidates(self.siblings, self.me, self._hook, hook, name)
                self._changed_by[name] = attribution.responsible(
                    found, name, self._seen[name], value, optimizer
                )
        self._seen.update(values)
        self._hook = hook

    def adaptations(
        self, recorder: RunRecorder, from_epoch: int, at: str, after_training: bool = False
    ) -> GraphBatch:
        """An adaptation for each tracked value that differs from its current version
        (`after_training`: seen when training ended, so no epoch of the run used it)."""
        batch = GraphBatch()
        for name in self.tracked:
            current = recorder.ledger.current(name)
            if current is None or name not in self._seen:
                continue
            value = self._seen[name]
            if not same_value(value, current.value):
                callback = self._changed_by.get(name, GENERIC_CALLBACK)
                batch.extend(
                    recorder.adaptation(
                        name, value, from_epoch, callback, at, after_training=after_training
                    )
                )
        self._changed_by.clear()
        return batch

    def steered(self, name: str, live: Any, recorded: Any) -> None:
        """Steering set `name`: the optimizer now holds `live`, recorded as `recorded`."""
        if name in self.tracked:
            self._seen[name] = recorded
            self._steered[name] = (live, recorded)
            self._changed_by.pop(name, None)

    def pause_schedules(self, name: str, from_epoch: int) -> tuple[list[str], str | None]:
        """A person set `name`: pause the Keras callbacks that schedule it (their hook
        that sets it does nothing until `resume_schedules`). Returns the paused class
        names and what to tell the requester (None when nothing schedules `name`)."""
        if name != model_info.LEARNING_RATE:
            return [], None
        for callback in self.siblings:
            hook = attribution.LR_CHANGERS.get(type(callback).__name__)
            if hook is None or any(callback is c for c, _ in self._paused):
                continue
            object.__setattr__(callback, hook, _paused_hook)  # shadows the class's hook
            self._paused.append((callback, hook))
        names = sorted({type(c).__name__ for c, _ in self._paused})
        if not names:
            return [], None
        return names, (
            f"the schedule of {name} ({', '.join(names)}) is paused from epoch {from_epoch} "
            "to the end of this fit: the steered value stays in force"
        )

    def resume_schedules(self) -> None:
        """Give the paused callbacks their hooks back (at the end of the run)."""
        for callback, hook in self._paused:
            vars(callback).pop(hook, None)
        self._paused = []

    def stopper(self) -> str:
        """Class name of the callback that stopped training."""
        names = [type(c).__name__ for c in self.siblings]
        for c in self.siblings:
            if type(c).__name__ == "EarlyStopping" and getattr(c, "stopped_epoch", 0):
                return "EarlyStopping"
        for name in ("EarlyStopping", "TerminateOnNaN"):
            if name in names:
                return name
        return GENERIC_CALLBACK


def _paused_hook(*args: Any, **kwargs: Any) -> None:
    """The hook of a schedule a person's steering paused: it sets nothing."""
