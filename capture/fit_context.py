"""What fit/evaluate were called with, read from the caller's frames.

Keras callbacks never see fit's data or batch size. From inside a hook the trainer's
`fit` (or `evaluate`) frame is up the stack, with `self` the model; its locals hold the
arguments (and, after Keras' `validation_split`, the training part of x/y). autolog
passes the real arguments instead (`from_call`), which does not depend on Keras'
internal variable names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

MAX_DEPTH = 60
FIT_ARGUMENTS = (
    "x",
    "y",
    "batch_size",
    "epochs",
    "validation_split",
    "validation_data",
    "shuffle",
    "initial_epoch",
    "class_weight",
    "sample_weight",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
EVALUATE_ARGUMENTS = ("x", "y", "batch_size", "steps", "sample_weight")
_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class CallArgs:
    """Arguments of one fit/evaluate call.

    `split_done`: x/y already are the training part (Keras applied `validation_split`).
    `names`: id of an argument value -> the caller's variable name for it.
    """

    arguments: dict[str, Any]
    callbacks: list[Any] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    split_done: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.arguments.get(key, default)

    def name_of(self, value: Any) -> str | None:
        return None if value is None else self.names.get(id(value))


def _library_dirs() -> tuple[str, ...]:
    dirs = [_HERE]
    keras = sys.modules.get("keras")
    if keras is not None and getattr(keras, "__file__", None):
        dirs.append(os.path.dirname(os.path.abspath(keras.__file__)))
    return tuple(dirs)


def caller_names(frame: FrameType | None) -> dict[int, str]:
    """Variable names of array-like values in the first frame outside Keras and ProvKB."""
    libraries = _library_dirs()
    depth = 0
    while frame is not None and depth < MAX_DEPTH:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(libraries):
            names: dict[int, str] = {}
            for key, value in frame.f_locals.items():
                if not key.startswith("_") and hasattr(value, "__len__"):
                    names.setdefault(id(value), key)
            return names
        frame = frame.f_back
        depth += 1
    return {}


def _callback_list(value: Any) -> list[Any] | None:
    import keras

    if isinstance(value, keras.callbacks.CallbackList):
        return list(value.callbacks)
    return None


def _find(start: FrameType | None, method: str, model: Any) -> FrameType | None:
    frame, depth = start, 0
    while frame is not None and depth < MAX_DEPTH:
        if frame.f_code.co_name == method and frame.f_locals.get("self") is model:
            local_names = frame.f_locals
            if "x" in local_names and "callbacks" in local_names:
                return frame
        frame = frame.f_back
        depth += 1
    return None


def fit_from_frames(model: Any) -> CallArgs | None:
    """The arguments of the running `model.fit`, from the trainer's frame."""
    frame = _find(sys._getframe(1), "fit", model)
    if frame is None:
        return None
    try:
        local_names = frame.f_locals
        arguments = {k: local_names[k] for k in FIT_ARGUMENTS if k in local_names}
        callbacks = _callback_list(local_names.get("callbacks")) or []
        return CallArgs(arguments, callbacks, caller_names(frame.f_back), split_done=True)
    finally:
        del frame


def evaluate_from_frames(model: Any) -> CallArgs | None:
    """The arguments of the running `model.evaluate`, from the trainer's frame."""
    frame = _find(sys._getframe(1), "evaluate", model)
    if frame is None:
        return None
    try:
        local_names = frame.f_locals
        arguments = {k: local_names[k] for k in EVALUATE_ARGUMENTS if k in local_names}
        callbacks = _callback_list(local_names.get("callbacks")) or []
        return CallArgs(arguments, callbacks, caller_names(frame.f_back))
    finally:
        del frame


def sibling_callbacks(callback: Any) -> list[Any] | None:
    """The CallbackList `callback` is running in, found in an enclosing frame."""
    frame, depth = sys._getframe(1), 0
    try:
        while frame is not None and depth < MAX_DEPTH:
            for value in frame.f_locals.values():
                callbacks = _callback_list(value)
                if callbacks is not None and any(c is callback for c in callbacks):
                    return callbacks
            frame = frame.f_back
            depth += 1
        return None
    finally:
        del frame


def from_call(
    arguments: Mapping[str, Any],
    names: tuple[str, ...],
    callbacks: list[Any],
    caller: FrameType | None,
) -> CallArgs:
    """Arguments given directly (autolog), before Keras split off validation data."""
    picked = {k: arguments[k] for k in names if k in arguments}
    return CallArgs(picked, list(callbacks), caller_names(caller), split_done=False)
