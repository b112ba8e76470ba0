"""The settings of the Keras callbacks that adapt or stop a training run: the plan of
the adaptations they make (docs/graph-model.md, "Adaptations")."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Iterable
from typing import Any

from ..ontology import Prop

# Each known callback's settings (constructor arguments kept as attributes).
SETTINGS = {
    "EarlyStopping": (
        "monitor",
        "patience",
        "min_delta",
        "restore_best_weights",
        "mode",
        "baseline",
        "start_from_epoch",
    ),
    "ReduceLROnPlateau": (
        "monitor",
        "factor",
        "patience",
        "min_lr",
        "min_delta",
        "cooldown",
        "mode",
    ),
    "LearningRateScheduler": (),
    "ModelCheckpoint": (
        "filepath",
        "monitor",
        "save_best_only",
        "save_weights_only",
        "save_freq",
        "mode",
    ),
    "BackupAndRestore": ("backup_dir", "save_freq"),
    "TerminateOnNaN": (),
}


def _plain(value: Any) -> Any:
    """A JSON-friendly value (NumPy scalars and paths made plain)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def schedule_source(schedule: Any) -> str:
    """The code of a schedule function (its source where Python has it, else repr)."""
    try:
        return textwrap.dedent(inspect.getsource(schedule)).strip()
    except (OSError, TypeError):
        return repr(schedule)


def settings(callback: Any) -> dict[str, Any] | None:
    """The settings of a known callback; None for the others."""
    names = SETTINGS.get(type(callback).__name__)
    if names is None:
        return None
    out = {name: _plain(getattr(callback, name)) for name in names if hasattr(callback, name)}
    if type(callback).__name__ == "ModelCheckpoint" and "filepath" in out:
        out["filepath"] = str(getattr(callback, "filepath", ""))
    schedule = getattr(callback, "schedule", None)
    if callable(schedule):
        out[Prop.SCHEDULE_SOURCE] = schedule_source(schedule)
    return out


def describe(callbacks: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Class name -> settings of the known callbacks among `callbacks` (the first of a
    class when there are several: adaptations name their callback by class)."""
    out: dict[str, dict[str, Any]] = {}
    for callback in callbacks:
        name = type(callback).__name__
        found = settings(callback)
        if found is not None and name not in out:
            out[name] = found
    return out


def restored_weights(callbacks: Iterable[Any]) -> Any:
    """The weights EarlyStopping puts back at the end of training (its own
    `on_train_end` may run after ProvKB's), else None."""
    for callback in callbacks:
        if type(callback).__name__ == "EarlyStopping" and restored_epoch([callback]):
            return callback.best_weights
    return None


def restored_epoch(callbacks: Iterable[Any]) -> int | None:
    """The epoch (1-based) whose weights EarlyStopping restores at the end of training
    (restore_best_weights with a best epoch seen), else None."""
    for callback in callbacks:
        if type(callback).__name__ != "EarlyStopping":
            continue
        if getattr(callback, "restore_best_weights", False) and (
            getattr(callback, "best_weights", None) is not None
        ):
            return int(callback.best_epoch) + 1
    return None
