"""Which callback changed a hyperparameter, from where the change was seen.

ProvKB reads the tracked values in its own hooks (checkpoints). Between two
checkpoints only some hooks of the other callbacks ran: the earlier hook of the
callbacks after ProvKB in the list, whatever ran in between (batch and test hooks), and
the later hook of the callbacks before ProvKB. So a change seen at a checkpoint is
explained by those callbacks only, whatever the order of the list. Known Keras
callbacks change the learning rate in one hook each; callbacks known never to change
hyperparameters are ignored; any other callback is a candidate in every hook it
overrides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .facts import GENERIC_CALLBACK
from .model_info import LEARNING_RATE, learning_rate_schedule_name

TRAIN_BEGIN = "on_train_begin"
EPOCH_BEGIN = "on_epoch_begin"
FIRST_BATCH = "on_train_batch_begin"
EPOCH_END = "on_epoch_end"
TRAIN_END = "on_train_end"

# Hooks every callback runs between two ProvKB checkpoints (start, end).
_BETWEEN = {
    (FIRST_BATCH, EPOCH_END): (
        "on_train_batch_end",
        "on_batch_begin",
        "on_batch_end",
        "on_test_begin",
        "on_test_batch_begin",
        "on_test_batch_end",
        "on_test_end",
    ),
}
# Keras callbacks that change the learning rate, and in which hook.
LR_CHANGERS = {"LearningRateScheduler": EPOCH_BEGIN, "ReduceLROnPlateau": EPOCH_END}
# Callbacks that never change hyperparameters.
PASSIVE = frozenset(
    {
        "BackupAndRestore",
        "CSVLogger",
        "EarlyStopping",
        "History",
        "ModelCheckpoint",
        "ProgbarLogger",
        "ProvenanceCallback",
        "RemoteMonitor",
        "SwapEMAWeights",
        "TensorBoard",
        "TerminateOnNaN",
    }
)


def overrides(callback: Any, hook: str) -> bool:
    """True when `callback` does something in `hook` (a method or a LambdaCallback entry)."""
    import keras

    if hook in vars(callback):
        return True
    base = getattr(keras.callbacks.Callback, hook, None)
    return getattr(type(callback), hook, None) is not base


def _may_change(callback: Any, hook: str, name: str) -> bool:
    cls = type(callback).__name__
    if cls in LR_CHANGERS:
        return name == LEARNING_RATE and LR_CHANGERS[cls] == hook
    if cls in PASSIVE:
        return False
    return overrides(callback, hook)


def candidates(callbacks: Sequence[Any], me: Any, start: str, end: str, name: str) -> list[Any]:
    """Callbacks whose code ran between ProvKB's `start` and `end` hooks and may
    have changed hyperparameter `name`."""
    index = next((i for i, c in enumerate(callbacks) if c is me), len(callbacks))
    before, after = callbacks[:index], callbacks[index + 1 :]
    found = [c for c in after if _may_change(c, start, name)]
    for hook in _BETWEEN.get((start, end), ()):
        found += [c for c in callbacks if c is not me and _may_change(c, hook, name)]
    found += [c for c in before if _may_change(c, end, name)]
    unique: list[Any] = []
    for c in found:
        if not any(c is u for u in unique):
            unique.append(c)
    return unique


def _plateau_explains(callback: Any, old: Any, new: Any) -> bool:
    """ReduceLROnPlateau just reduced `old` to `new` (and entered its cooldown)."""
    try:
        expected = max(float(old) * float(callback.factor), float(callback.min_lr))
        fresh = callback.wait == 0 and callback.cooldown_counter == callback.cooldown
        return fresh and abs(expected - float(new)) <= 1e-6 * max(abs(expected), 1e-12)
    except (AttributeError, TypeError, ValueError):
        return False


def responsible(found: Sequence[Any], name: str, old: Any, new: Any, optimizer: Any = None) -> str:
    """Class name of the callback that made the change, or the generic agent's name."""
    if len(found) == 1:
        return type(found[0]).__name__
    if len(found) > 1:
        plateaus = [c for c in found if type(c).__name__ == "ReduceLROnPlateau"]
        if any(_plateau_explains(c, old, new) for c in plateaus):
            return "ReduceLROnPlateau"
        others = [c for c in found if type(c).__name__ != "ReduceLROnPlateau"]
        if len(others) == 1:
            return type(others[0]).__name__
        # a Keras learning-rate callback beats custom callbacks that merely could have
        # (e.g. a LambdaCallback drawing a progress bar)
        known = [c for c in others if type(c).__name__ in LR_CHANGERS]
        if name == LEARNING_RATE and len(known) == 1:
            return type(known[0]).__name__
        return GENERIC_CALLBACK
    if name == LEARNING_RATE and optimizer is not None:
        schedule = learning_rate_schedule_name(optimizer)
        if schedule:
            return schedule
    return GENERIC_CALLBACK
