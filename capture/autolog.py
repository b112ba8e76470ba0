"""One line in a script records every fit, evaluate and predict: `provkb.autolog()`.

Patches `keras.Model.fit` (adds a `ProvenanceCallback` unless the call has one, and
hands it the real arguments), `keras.Model.evaluate` (records an Evaluation of the
model's last run) and `keras.Model.predict` (a Prediction of the model's last run,
`capture.predictions`). `autolog(disable=True)` restores Keras.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from . import fit_context, model_store, sink
from .callback import ProvenanceCallback, callback_for
from .safety import WarnOnce, swallow
from .step_series import check_every

_PATCHED = ("fit", "evaluate", "predict")


@dataclass(frozen=True)
class _Config:
    experiment: str
    store: sink.StoreLike
    person: str | None
    project: str | None
    log_every_n_steps: int | None = None  # step series (ProvenanceCallback)
    save_model: model_store.SaveModel = False  # the trained model's file (issue 17)


@dataclass
class _State:
    config: _Config
    originals: dict[str, tuple[bool, Callable[..., Any]]]  # name -> (own attribute?, function)


_lock = threading.Lock()
_state: _State | None = None
_warn = WarnOnce()


def autolog(
    experiment: str = "default",
    store: sink.StoreLike = None,
    person: str | None = None,
    disable: bool = False,
    project: str | None = None,
    log_every_n_steps: int | None = None,
    save_model: model_store.SaveModel = False,
) -> None:
    """Record every `fit` and `evaluate` of Keras models from now on (or stop: `disable`);
    `log_every_n_steps`: also every N-th step's batch logs (step series); `save_model`:
    save each trained model as a `.keras` file (`ProvenanceCallback`'s argument)."""
    global _state
    with _lock:
        if disable:
            if _state is not None:
                _restore(_state)
                _state = None
            return
        config = _Config(
            experiment,
            store,
            person,
            project,
            check_every(log_every_n_steps),
            model_store.checked(save_model),  # a bad target fails here, not after a fit
        )
        if _state is not None:
            _state.config = config
            return
        model_class = keras.Model
        originals = {
            name: (name in vars(model_class), getattr(model_class, name)) for name in _PATCHED
        }
        _state = _State(config, originals)
        model_class.fit = _patched_fit(originals["fit"][1])
        model_class.evaluate = _patched_call(
            originals["evaluate"][1], "evaluate", _prepare_evaluate
        )
        model_class.predict = _patched_call(originals["predict"][1], "predict", _prepare_predict)


def is_enabled() -> bool:
    return _state is not None


def _restore(state: _State) -> None:
    for name, (own, function) in state.originals.items():
        if own:
            setattr(keras.Model, name, function)
        elif name in vars(keras.Model):
            delattr(keras.Model, name)


def _flat(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    if isinstance(callbacks, list | tuple):
        return list(callbacks)
    return [callbacks]


def _patched_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        state = _state
        callback = None
        try:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            if state is not None:
                callback = _prepare_fit(self, bound.arguments, state.config, sys._getframe(1))
            args, kwargs = bound.args[1:], bound.kwargs
        except Exception as exc:
            swallow(
                _warn,
                "provkb: autolog could not prepare fit (%s); training without it",
                exc,
                exc=exc,
            )
            callback = None
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            if callback is not None:
                callback.record_failure(exc)
            raise

    return fit


def _prepare_fit(
    model: Any, arguments: dict[str, Any], config: _Config, caller: Any
) -> ProvenanceCallback:
    given = arguments.get("callbacks")
    in_list = given.callbacks if isinstance(given, keras.callbacks.CallbackList) else None
    callbacks = list(in_list) if in_list is not None else _flat(given)
    callback = next((c for c in callbacks if isinstance(c, ProvenanceCallback)), None)
    if callback is None:
        callback = ProvenanceCallback(
            experiment=config.experiment,
            store=config.store,
            person=config.person,
            project=config.project,
            log_every_n_steps=config.log_every_n_steps,  # step series
            save_model=config.save_model,
        )
        callbacks.append(callback)
        if in_list is not None:
            in_list.append(callback)
            callback.set_model(model)
            callback.set_params(given.params)
        else:
            arguments["callbacks"] = callbacks
    callback._pending_fit = fit_context.from_call(
        arguments, fit_context.FIT_ARGUMENTS, callbacks, caller
    )
    return callback


def _patched_call(
    original: Callable[..., Any], what: str, prepare: Callable[[Any, dict[str, Any], Any], None]
) -> Callable[..., Any]:
    """`original` (evaluate or predict) with `prepare(model, arguments, caller)` first;
    a failing `prepare` is warned about and the call goes on unchanged."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_use_cached_eval_dataset"):  # validation inside fit
            return original(self, *args, **kwargs)
        try:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            prepare(self, bound.arguments, sys._getframe(1))
            args, kwargs = bound.args[1:], bound.kwargs
        except Exception as exc:
            swallow(_warn, f"provkb: autolog could not prepare {what} (%s)", exc, exc=exc)
        return original(self, *args, **kwargs)

    return call


def _attach_callback(
    model: Any, arguments: dict[str, Any]
) -> tuple[ProvenanceCallback, list[Any]] | None:
    """The ProvenanceCallback of this call (the caller's own, else the model's last
    run's, appended to its callbacks), or None (none, or a call from inside fit)."""
    given = arguments.get("callbacks")
    if isinstance(given, keras.callbacks.CallbackList):
        return None
    callbacks = _flat(given)
    callback = next((c for c in callbacks if isinstance(c, ProvenanceCallback)), None)
    if callback is None:
        callback = callback_for(model)
        if callback is None or callback._in_fit:
            return None
        callbacks.append(callback)
        arguments["callbacks"] = callbacks
    return callback, callbacks


def _prepare_evaluate(model: Any, arguments: dict[str, Any], caller: Any) -> None:
    """Record the evaluate as an Evaluation of the model's last run (its callback)."""
    attached = _attach_callback(model, arguments)
    if attached is not None:
        callback, callbacks = attached
        callback._pending_eval = fit_context.from_call(
            arguments, fit_context.EVALUATE_ARGUMENTS, callbacks, caller
        )


def _prepare_predict(model: Any, arguments: dict[str, Any], caller: Any) -> None:
    """Record the predict as a Prediction of the model's last run (its callback)."""
    attached = _attach_callback(model, arguments)
    if attached is not None:
        callback, callbacks = attached
        callback.predictions.pending = fit_context.from_call(
            arguments, ("x", "batch_size", "steps"), callbacks, caller
        )
