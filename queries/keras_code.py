"""Readable Python source for Keras objects, from the configurations a run stored.

`object_code({"module": "keras.layers", "class_name": "Dense", "config": {...}})` gives
`keras.layers.Dense(units=16, activation='relu')`: the public class and only the
arguments that differ from the class's defaults. Each call is checked by building the
object again and comparing its configuration with the stored one; when that fails
(a custom class, a default Keras changed) the stored configuration itself is written,
`keras.saving.deserialize_keras_object({...})`, which rebuilds it exactly. Keras is
imported on first use only.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pprint
import re
from collections.abc import Mapping, Sequence
from typing import Any

WIDTH = 88  # ruff's default line length: a generated script passes `ruff check` as it is
INDENT = "    "
_SERIALIZED_KEYS = {"class_name", "config"}


def is_serialized(value: Any) -> bool:
    """A Keras serialized object: a dict with `class_name` and `config`."""
    return isinstance(value, Mapping) and set(value) >= _SERIALIZED_KEYS


def literal(value: Any) -> str:
    """`value` (JSON data) as a Python literal; tuples stay tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def block(value: Any, indent: str = "") -> str:
    """A long literal laid out over lines (`pprint`), each line indented by `indent`."""
    text = pprint.pformat(value, width=WIDTH - len(indent) - 4, sort_dicts=False)
    return text.replace("\n", "\n" + indent)


def call(
    func: str, args: Mapping[str, str], indent: str = "", positional: Sequence[str] = ()
) -> str:
    """`func(p, ..., k=v, ...)` on one line when it fits, else one argument per line."""
    parts = [*positional, *(f"{k}={v}" for k, v in args.items())]
    one_line = f"{func}({', '.join(parts)})"
    if len(indent) + len(one_line) + 1 <= WIDTH and "\n" not in one_line:
        return one_line
    inner = indent + INDENT
    lines = [f"{func}("] + [f"{inner}{part}," for part in parts] + [f"{indent})"]
    return "\n".join(lines)


def automatic_name(cls: type, name: Any) -> bool:
    """Is `name` what Keras names an instance of `cls` by itself (`dense`, `dense_3`)?"""
    if not isinstance(name, str):
        return False
    from keras.src.utils.naming import to_snake_case

    return re.fullmatch(rf"{re.escape(to_snake_case(cls.__name__))}(_\d+)?", name) is not None


def public_path(serialized: Mapping[str, Any], cls: type) -> str | None:
    """`keras.layers.Dense` when the serialized module exports the class, else None."""
    module = serialized.get("module")
    if not isinstance(module, str) or not (module == "keras" or module.startswith("keras.")):
        return None
    try:
        found = getattr(importlib.import_module(module), cls.__name__, None)
    except ImportError:
        return None
    return f"{module}.{cls.__name__}" if found is cls else None


def _value(value: Any) -> Any:
    """Stored data as the argument Keras takes (serialized objects rebuilt)."""
    import keras

    if is_serialized(value):
        return keras.saving.deserialize_keras_object(dict(value))
    return value


def _required(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.name != "self" and p.kind in kinds and p.default is p.empty]


def _comparable(cls: type, config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not (k == "name" and automatic_name(cls, v))}


def arguments(cls: type, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The entries of `config` a call of `cls` must give: the required ones and those
    that differ from a default instance (automatic names left out); None if `cls`
    cannot be built from `config` that way."""
    required = _required(cls)
    if any(name not in config for name in required):
        return None
    try:
        reference = cls(**{name: _value(config[name]) for name in required}).get_config()
    except Exception:
        return None
    return {
        k: v
        for k, v in _comparable(cls, config).items()
        if k in required or k not in reference or reference[k] != v
    }


def _rebuilds(cls: type, args: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    try:
        rebuilt = cls(**{k: _value(v) for k, v in args.items()}).get_config()
    except Exception:
        return False
    return _comparable(cls, rebuilt) == _comparable(cls, config)


def value_code(value: Any, indent: str = "") -> str:
    """A stored value as code: a Keras object's call, else a literal (also inside
    lists and dicts: `metrics=['accuracy', keras.metrics.AUC()]`)."""
    if is_serialized(value):
        return object_code(value, indent)
    if isinstance(value, list):
        return "[" + ", ".join(value_code(v, indent) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{literal(k)}: {value_code(v, indent)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return literal(value)


def fallback(serialized: Mapping[str, Any], indent: str = "") -> str:
    """The stored configuration itself, rebuilt by Keras."""
    return f"keras.saving.deserialize_keras_object(\n{indent}{INDENT}" + (
        block(dict(serialized), indent + INDENT) + f"\n{indent})"
    )


def object_code(serialized: Mapping[str, Any], indent: str = "") -> str:
    """Code that builds the Keras object `serialized` describes (see the module text)."""
    import keras

    try:
        obj = keras.saving.deserialize_keras_object(dict(serialized))
        cls = type(obj)
        config = obj.get_config()
    except Exception:
        return fallback(serialized, indent)
    path = public_path(serialized, cls)
    args = arguments(cls, config) if path else None
    if path is None or args is None or not _rebuilds(cls, args, config):
        return fallback(serialized, indent)
    given = serialized.get("config") or {}
    for key, value in args.items():  # float32 values as stored: 0.01, not 0.0099999997
        if isinstance(value, float) and isinstance(given.get(key), float):
            import numpy as np

            if np.float32(value) == np.float32(given[key]):
                args[key] = given[key]
    return call(path, {k: value_code(v, indent + INDENT) for k, v in args.items()}, indent)
