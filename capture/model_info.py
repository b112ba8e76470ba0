"""Describe a Keras model: layers, parameters, weights hash, plan and hyperparameters."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..kb.steering import rules
from ..ontology import HyperparameterName
from .facts import Hyperparameter, Layer, Model, Plan, Source, shortest_float32

OPTIMIZER = HyperparameterName.OPTIMIZER  # the optimizer's configured name ("adam")
OPTIMIZER_CLASS = "optimizer_class"  # its class ("Adam")
LEARNING_RATE = HyperparameterName.LEARNING_RATE
LEARNING_RATE_SCHEDULE = "learning_rate_schedule"

# Optimizer hyperparameters a person may set while training runs, and what each takes:
# the one rule table, `kb.steering.rules.VALUE_RULES`.
STEERABLE_OPTIMIZER = rules.STEERABLE_OPTIMIZER
_NULLABLE = rules.NULLABLE


def base_name(obj: Any, name: str | None) -> str | None:
    """`name` without the `_<n>` Keras appends to automatic names of later instances
    in a process (`adam_9` -> `adam`); a name the user chose is kept as it is."""
    if not name:
        return name
    import re

    from keras.src.utils.naming import to_snake_case

    automatic = to_snake_case(type(obj).__name__)
    return automatic if re.fullmatch(rf"{re.escape(automatic)}_\d+", name) else name


def _scalar(value: Any) -> Any:
    """A Python scalar from a variable, tensor or numpy value (else `value` unchanged)."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    try:
        if callable(getattr(value, "numpy", None)):  # variables and eager tensors
            arr = np.asarray(value.numpy())
        else:
            import keras

            arr = np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:
        return value
    if arr.ndim != 0:
        return value
    item = arr.item()
    if arr.dtype in (np.float32, np.float16):  # as written: 0.01, not 0.009999999776482582
        return shortest_float32(item)
    return float(item) if isinstance(item, float) else item


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _name_of(value: Any) -> Any:
    """A readable name for a loss/metric given as string, serialized dict or object."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        if "class_name" in value:
            config = value.get("config")
            if isinstance(config, Mapping) and isinstance(config.get("name"), str):
                return config["name"]
            return value["class_name"]
        return {str(k): _name_of(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_name_of(v) for v in value]
    return getattr(value, "name", None) or getattr(value, "__name__", None) or type(value).__name__


def _activation_name(fn: Any) -> str | None:
    if fn is None:
        return None
    return getattr(fn, "__name__", None) or type(fn).__name__


def _count(layer: Any) -> int | None:
    try:
        return int(layer.count_params())
    except Exception:  # not built
        return None


def _output_shape(layer: Any) -> tuple[int | None, ...] | None:
    try:
        shape = layer.output.shape
        return tuple(None if d is None else int(d) for d in shape)
    except Exception:
        return None


def describe_layer(index: int, layer: Any) -> Layer:
    kernel = getattr(layer, "kernel_size", None)
    rate = getattr(layer, "rate", None)
    units = getattr(layer, "units", None)
    filters = getattr(layer, "filters", None)
    return Layer(
        index=index,
        name=layer.name,
        class_name=type(layer).__name__,
        params=_count(layer),
        activation=_activation_name(getattr(layer, "activation", None)),
        units=units if _is_number(units) else None,
        filters=filters if _is_number(filters) else None,
        kernel_size=tuple(int(k) for k in kernel) if isinstance(kernel, Iterable) else None,
        rate=float(rate) if _is_number(rate) else None,
        output_shape=_output_shape(layer),
    )


def describe_model(model: Any) -> Model:
    layers = tuple(describe_layer(i, layer) for i, layer in enumerate(model.layers))
    try:
        trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    except Exception:
        trainable = None
    return Model(model.name, type(model).__name__, _count(model), trainable, layers)


def weights_sha256(model: Any, weights: Any = None) -> str:
    """sha256 over every weight (dtype, shape and bytes, in order): the model's, or
    `weights` (a list like `get_weights()`, e.g. those EarlyStopping restores)."""
    digest = hashlib.sha256()
    for weight in model.get_weights() if weights is None else weights:
        arr = np.ascontiguousarray(weight)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.data if arr.size else b"")
    return digest.hexdigest()


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None


def plan(model: Any) -> Plan:
    """The model, optimizer and compile configurations as JSON."""
    import keras

    optimizer = getattr(model, "optimizer", None)
    return Plan(
        model_config=_json(_safe(model.get_config)),
        optimizer_config=_json(
            _safe(lambda: keras.saving.serialize_keras_object(optimizer)) if optimizer else None
        ),
        compile_config=_json(_safe(model.get_compile_config)),
    )


SEED = "seed"  # the global random seed `keras.utils.set_random_seed` set (reproduce)


def seed_hyperparameters() -> list[Hyperparameter]:
    """The global random seed Keras was given (`keras.utils.set_random_seed`), if any."""
    from keras.src.utils import rng_utils

    seed = rng_utils.get_random_seed()
    return [Hyperparameter(SEED, int(seed), Source.KERAS)] if isinstance(seed, int) else []


def _learning_rate_schedule(optimizer: Any) -> Any:
    import keras

    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    return None


def learning_rate_schedule_name(optimizer: Any) -> str | None:
    """Class name of the optimizer's learning-rate schedule, if it has one."""
    schedule = _learning_rate_schedule(optimizer)
    return type(schedule).__name__ if schedule is not None else None


def live_value(optimizer: Any, key: str) -> Any:
    """The current value of an optimizer hyperparameter (the learning rate from its variable)."""
    return _scalar(getattr(optimizer, key))


def _is_float32(optimizer: Any, key: str) -> bool:
    """Is optimizer attribute `key` a float32 variable (the learning rate)?"""
    held = getattr(optimizer, key, None)
    return not isinstance(held, bool | int | float) and "float32" in str(getattr(held, "dtype", ""))


def optimizer_hyperparameters(optimizer: Any) -> list[Hyperparameter]:
    """Every key of `optimizer.get_config()`; numeric live ones are tracked."""
    config = dict(optimizer.get_config())
    out = [
        Hyperparameter(OPTIMIZER, base_name(optimizer, config.pop("name", None)), Source.OPTIMIZER),
        Hyperparameter(OPTIMIZER_CLASS, type(optimizer).__name__, Source.OPTIMIZER),
    ]
    schedule = _learning_rate_schedule(optimizer)
    if schedule is not None:
        out.append(
            Hyperparameter(
                LEARNING_RATE_SCHEDULE, _json(config.get(LEARNING_RATE)), Source.OPTIMIZER
            )
        )
    for key, value in config.items():
        live = _safe(lambda k=key: live_value(optimizer, k)) if hasattr(optimizer, key) else None
        tracked = _is_number(live)
        if tracked:
            value = live
        elif isinstance(value, Mapping | list | tuple):
            value = _json(value)
        steerable = _safe(lambda k=key, v=live: steering_refusal(optimizer, k, v)) is None
        held32 = bool(tracked and _safe(lambda k=key: _is_float32(optimizer, k)))
        out.append(
            Hyperparameter(
                key, value, Source.OPTIMIZER, tracked=tracked, steerable=steerable, float32=held32
            )
        )
    return out


def steering_refusal(optimizer: Any, key: str, value: Any) -> str | None:
    """Why hyperparameter `key` of `optimizer` cannot be set to `value` mid-run (None: it can)."""
    name = type(optimizer).__name__
    if key not in STEERABLE_OPTIMIZER:
        return f"{key!r} of {name} cannot be changed while training"
    if not hasattr(optimizer, key):
        return f"the optimizer {name} has no hyperparameter {key!r}"
    if key == LEARNING_RATE:
        schedule = _learning_rate_schedule(optimizer)
        if schedule is not None:
            return (
                f"the learning rate of this run is a LearningRateSchedule "
                f"({type(schedule).__name__}): it cannot be set while training"
            )
    problem = rules.optimizer_value_problem(key, value)
    if problem or value is None:
        return problem
    if key == "momentum" and _without_momentum_slots(optimizer):
        return (
            f"{name} was built with momentum 0 and has no momentum slots, so its momentum "
            f"cannot be steered; compile it with a non-zero momentum to make it steerable"
        )
    return None


def _without_momentum_slots(optimizer: Any) -> bool:
    """SGD keeps momentum slots only when built with a non-zero momentum."""
    slots = getattr(optimizer, "momentums", None)
    if isinstance(slots, list):  # built
        return not slots
    return type(optimizer).__name__ == "SGD" and getattr(optimizer, "momentum", 1) == 0


def set_optimizer_value(model: Any, key: str, value: Any) -> Any:
    """Set an optimizer hyperparameter so that the next train step uses it; returns
    the value read back (the learning rate as its float32 variable holds it).

    Keras 3 bakes Python-valued hyperparameters (momentum, beta_1, ...) into the
    compiled train step on the TensorFlow and JAX backends, so the train function is
    rebuilt for them. Raises ValueError (nothing changed) when it cannot be done.
    """
    optimizer = model.optimizer
    problem = steering_refusal(optimizer, key, value)
    if problem:
        raise ValueError(problem)
    current = getattr(optimizer, key)
    if _is_number(value) and isinstance(_scalar(current), float):
        value = float(value)
    if key == LEARNING_RATE:
        optimizer.learning_rate = value  # assigns the variable: no retracing
        return live_value(optimizer, key)
    if hasattr(current, "assign") and value is not None:
        current.assign(value)
        return live_value(optimizer, key)
    setattr(optimizer, key, value)
    try:
        model.make_train_function(force=True)
    except Exception as exc:
        setattr(optimizer, key, current)
        with contextlib.suppress(Exception):
            model.make_train_function(force=True)
        raise ValueError(
            f"the train step could not be rebuilt with {key}={value!r}: {exc}"
        ) from exc
    return _scalar(getattr(optimizer, key))


def read_tracked(optimizer: Any, names: Iterable[str]) -> dict[str, Any]:
    """The current values of tracked optimizer hyperparameters."""
    out = {}
    for name in names:
        try:
            out[name] = live_value(optimizer, name)
        except Exception:
            continue
    return out


def compile_hyperparameters(model: Any) -> list[Hyperparameter]:
    """Loss, metrics and the other compile() arguments."""
    config = _safe(model.get_compile_config) or {}
    out = []
    for key in (
        "loss",
        "metrics",
        "loss_weights",
        "weighted_metrics",
        "run_eagerly",
        "steps_per_execution",
        "jit_compile",
    ):
        value = _name_of(config.get(key))
        if value is None and key == "loss":
            value = _name_of(getattr(model, "loss", None))
        if value is not None:
            if isinstance(value, Mapping):
                value = _json(value)
            out.append(Hyperparameter(key, value, Source.COMPILE))
    return out
