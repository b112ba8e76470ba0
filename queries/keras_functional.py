"""A functional Keras model's stored configuration as readable code: one line per layer,
called on the variables of the layers it takes (`provkb reproduce`).

    features = keras.Input(shape=(8,), name='features')
    dense = keras.layers.Dense(units=4, activation='tanh')(features)
    return keras.Model(inputs=features, outputs=dense)

Only graphs whose every layer is called once on whole outputs of other layers (one
tensor, or a list of them as `Concatenate` takes) are written so; the code is run once
and the model it builds compared with the configuration (classes and connections, each
layer's own arguments being checked by `keras_code`). None otherwise: the caller then
writes the configuration itself.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

from .keras_code import INDENT, call, literal, object_code

_TENSOR = "__keras_tensor__"
_TAKEN = {"keras", "model", "config", "inputs", "outputs"}


def _history(arg: Any) -> str | None:
    """The layer whose whole (first) output `arg` is, else None."""
    if not isinstance(arg, Mapping) or arg.get("class_name") != _TENSOR:
        return None
    history = (arg.get("config") or {}).get("keras_history")
    if isinstance(history, list | tuple) and len(history) == 3 and list(history[1:]) == [0, 0]:
        return str(history[0])
    return None


def _sources(layer: Mapping[str, Any]) -> list[str] | str | None:
    """The layers a layer is called on: a name, a list of names, [] for an input;
    None when it is called otherwise (twice, with keyword arguments, on a part)."""
    nodes = layer.get("inbound_nodes") or []
    if not nodes:
        return []
    if len(nodes) != 1 or nodes[0].get("kwargs") or len(nodes[0].get("args") or []) != 1:
        return None
    arg = nodes[0]["args"][0]
    if isinstance(arg, list | tuple):
        names = [_history(a) for a in arg]
        return None if any(n is None for n in names) else [str(n) for n in names]
    return _history(arg)


def _ends(value: Any) -> list[str] | None:
    """`input_layers`/`output_layers` ([name, 0, 0] or a list of them) as names."""
    if isinstance(value, list | tuple) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, list | tuple) and len(v) == 3 and list(v[1:]) == [0, 0] for v in value
    ):
        return None
    return [str(v[0]) for v in value]


def _variable(name: str, used: set[str]) -> str:
    base = re.sub(r"\W", "_", name) or "layer"
    if base[0].isdigit() or keyword.iskeyword(base) or base in _TAKEN:
        base = f"layer_{base}"
    found, n = base, 1
    while found in used:
        n += 1
        found = f"{base}_{n}"
    used.add(found)
    return found


def _input(layer: Mapping[str, Any]) -> str | None:
    config = layer.get("config") or {}
    shape = config.get("batch_shape")
    if not isinstance(shape, list | tuple) or not shape or shape[0] is not None:
        return None
    args = {"shape": literal(tuple(shape[1:])), "name": literal(config.get("name"))}
    if config.get("dtype") not in (None, "float32"):
        args["dtype"] = literal(config["dtype"])
    return None if config.get("sparse") or config.get("ragged") else call("keras.Input", args)


def _structure(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(class, the positions of the layers it takes) per layer, comparable across names."""
    layers = config.get("layers") or []
    position = {str(layer.get("name")): i for i, layer in enumerate(layers)}
    out: list[tuple[str, Any]] = []
    for layer in layers:
        found = _sources(layer)
        taken = [position.get(n) for n in found] if isinstance(found, list) else position.get(found)
        out.append((str(layer.get("class_name")), taken))
    ends = [position.get(n) for n in _ends(config.get("output_layers")) or []]
    return [*out, ("outputs", ends)]


def _rebuilt(lines: list[str]) -> Any:
    import keras

    namespace: dict[str, Any] = {"keras": keras}
    exec("def build():\n" + "\n".join(lines) + "\n", namespace)  # our own generated code
    return namespace["build"]()


def functional_body(config: Mapping[str, Any]) -> str | None:
    """The body of `build_model()` for a functional model (see the module text)."""
    layers = config.get("layers") or []
    inputs, outputs = _ends(config.get("input_layers")), _ends(config.get("output_layers"))
    if not layers or not inputs or not outputs:
        return None
    used: set[str] = set()
    names: dict[str, str] = {}
    lines: list[str] = []
    for layer in layers:
        name, sources = str(layer.get("name")), _sources(layer)
        if sources is None or name in names:
            return None
        variable = names[name] = _variable(name, used)
        if sources == []:
            code = _input(layer) if layer.get("class_name") == "InputLayer" else None
            if code is None:
                return None
            lines.append(f"{INDENT}{variable} = {code}")
            continue
        taken = [sources] if isinstance(sources, str) else sources
        if any(s not in names for s in taken):
            return None
        on = (
            names[sources]
            if isinstance(sources, str)
            else "[" + ", ".join(names[s] for s in taken) + "]"
        )
        built = {k: v for k, v in layer.items() if k not in ("build_config", "inbound_nodes")}
        built["config"] = {**(built.get("config") or {}), "name": name}
        lines.append(f"{INDENT}{variable} = {object_code(built, INDENT)}({on})")
    ends = {"inputs": inputs, "outputs": outputs}
    args = {
        k: (names[v[0]] if len(v) == 1 else "[" + ", ".join(names[n] for n in v) + "]")
        for k, v in ends.items()
    }
    if config.get("name") and not re.fullmatch(r"(functional|model)(_\d+)?", config["name"]):
        args["name"] = literal(config["name"])
    lines.append(f"{INDENT}return {call('keras.Model', args, INDENT)}")
    try:
        rebuilt = _rebuilt(lines).get_config()
    except Exception:
        return None
    return "\n".join(lines) if _structure(rebuilt) == _structure(config) else None
