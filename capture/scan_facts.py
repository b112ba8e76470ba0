"""The facts `capture.scan` finds in a training script, as plain dataclasses.

`ScanResult` is the public answer of `scan(path)`: datasets loaded, models with their
layers in order, compile and fit calls, callbacks, seeds, the constants the calls use,
what could not be told (`unknowns`, with reasons) and `notes`. `planned()` is the plan a
run is compared with; `to_dict()` is JSON-ready.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .scan_values import Value

PLANNED_FIT = ("epochs", "batch_size", "validation_split", "initial_epoch")


@dataclass(frozen=True)
class Call:
    """A call the scan recognised: the callee (imports resolved, e.g.
    `keras.layers.Dense`), its line, positional arguments and keyword arguments
    (positional ones whose parameter is known are given by name)."""

    name: str
    line: int
    args: tuple[Value, ...] = ()
    kwargs: dict[str, Value] = field(default_factory=dict)

    @property
    def short(self) -> str:
        """The callee's last name (`Dense`)."""
        return self.name.rsplit(".", 1)[-1]

    def get(self, name: str) -> Value | None:
        return self.kwargs.get(name)


@dataclass(frozen=True)
class DataLoad:
    """A dataset the script loads: the loader, what it loads (`digits`, `mnist`, a path)."""

    loader: str
    source: str | None
    call: Call


@dataclass(frozen=True)
class Layer:
    """One layer of a model, in order (`index` from 0), as constructed; `repeated`
    when it is constructed in a loop or comprehension (how often: known at run time)."""

    index: int
    class_name: str
    call: Call
    repeated: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A model the script builds: `api` sequential, functional, subclassed or
    application (`keras.applications.*`), the variable it is assigned to, its layers."""

    api: str
    name: str
    line: int
    variable: str | None
    layers: tuple[Layer, ...] = ()

    @property
    def layer_count(self) -> int | None:
        """What `len(model.layers)` will be: a Sequential model has no InputLayer in
        its layers, a functional one has one per `keras.Input`. None when not known
        (an application model, a layer constructed in a loop)."""
        if self.api == "application" or any(layer.repeated for layer in self.layers):
            return None
        if self.api == "sequential":
            return sum(1 for layer in self.layers if layer.class_name != "InputLayer")
        return len(self.layers)


@dataclass(frozen=True)
class Compile:
    """A `compile` call: the optimizer (a name like "adam", or `optimizer_call`, the
    optimizer constructed with its arguments), the loss and the metrics."""

    call: Call
    optimizer: Value | None = None
    optimizer_call: Call | None = None
    loss: Value | None = None
    loss_call: Call | None = None
    metrics: Value | None = None


@dataclass(frozen=True)
class Unknown:
    """A fact the scan found but cannot tell without running the script, and why."""

    what: str  # e.g. fit.epochs, compile.optimizer, Dense.units
    text: str
    reason: str
    line: int


@dataclass
class ScanResult:
    """Everything `scan` could tell about one script version (sha256 of its bytes)."""

    path: str
    sha256: str
    parsed: bool = True  # False: a syntax error; the facts are those of `lines_scanned`
    error: str | None = None
    lines: int = 0
    lines_scanned: int = 0
    datasets: list[DataLoad] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    compiles: list[Compile] = field(default_factory=list)
    fits: list[Call] = field(default_factory=list)
    callbacks: list[Call] = field(default_factory=list)
    seeds: list[Call] = field(default_factory=list)
    constants: dict[str, Value] = field(default_factory=dict)  # names followed to a value
    unknowns: list[Unknown] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> ModelSpec | None:
        """The model the plan describes: the first with layers, else the first."""
        return next((m for m in self.models if m.layers), self.models[0] if self.models else None)

    def planned(self) -> dict[str, Any]:
        """The plan: {fact: value} of what is known, with `Keras` names (epochs,
        batch_size, validation_split, optimizer, optimizer_class, learning_rate, loss,
        metrics, layers = the layer count, layer_classes, seed)."""
        out: dict[str, Any] = {}
        if self.fits:
            for name in PLANNED_FIT:
                _put(out, name, self.fits[0].get(name))
        if self.compiles:
            c = self.compiles[0]
            _put(out, "optimizer", c.optimizer)
            if c.optimizer_call is not None:
                out["optimizer_class"] = c.optimizer_call.short
                _put(out, "learning_rate", c.optimizer_call.get("learning_rate"))
            if c.loss_call is not None:
                out["loss"] = _snake(c.loss_call.short)
            else:
                _put(out, "loss", c.loss)
            _put(out, "metrics", c.metrics)
        model = self.model
        if model is not None and model.layer_count is not None:
            out["layers"] = model.layer_count
            out["layer_classes"] = [layer.class_name for layer in _counted(model)]
        if self.seeds and self.seeds[0].args:
            _put(out, "seed", self.seeds[0].args[0])
        return out

    def planned_origins(self) -> dict[str, str]:
        """{fact: how its planned value was found} for values that are not plain
        literals (names followed, argparse defaults), and {fact: why not known}."""
        out: dict[str, str] = {}
        values: dict[str, Value | None] = {}
        if self.fits:
            for name in PLANNED_FIT:
                values[name] = self.fits[0].get(name)
        if self.compiles:
            c = self.compiles[0]
            values["optimizer"] = c.optimizer
            values["loss"] = c.loss if c.loss_call is None else None
            values["metrics"] = c.metrics
            if c.optimizer_call is not None:
                lr = c.optimizer_call.get("learning_rate")
                values["learning_rate"] = lr
                if lr is None:
                    out["learning_rate"] = f"not given: the default of {c.optimizer_call.short}"
        for name, value in values.items():
            if value is None:
                continue
            if not value.known:
                out[name] = f"not known: {value.text}: {value.reason}"
            elif value.origin not in (None, "literal"):
                out[name] = value.origin
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every value plain (tuples as lists, other objects as text)."""
        return _plain(
            {
                "path": self.path,
                "sha256": self.sha256,
                "parsed": self.parsed,
                "error": self.error,
                "lines": self.lines,
                "linesScanned": self.lines_scanned,
                "datasets": [
                    {"loader": d.loader, "source": d.source, **_call(d.call)} for d in self.datasets
                ],
                "models": [
                    {
                        "api": m.api,
                        "name": m.name,
                        "line": m.line,
                        "variable": m.variable,
                        "layerCount": m.layer_count,
                        "layers": [{"index": la.index, **_call(la.call)} for la in m.layers],
                    }
                    for m in self.models
                ],
                "compile": [_compile(c) for c in self.compiles],
                "fit": [_call(f) for f in self.fits],
                "callbacks": [_call(c) for c in self.callbacks],
                "seeds": [_call(s) for s in self.seeds],
                "constants": {k: _value(v) for k, v in sorted(self.constants.items())},
                "planned": self.planned(),
                "unknowns": [vars(u) for u in self.unknowns],
                "notes": list(self.notes),
            }
        )


def _counted(model: ModelSpec) -> list[Layer]:
    """The layers `len(model.layers)` counts (a Sequential model has no InputLayer)."""
    if model.api == "sequential":
        return [layer for layer in model.layers if layer.class_name != "InputLayer"]
    return list(model.layers)


def _snake(name: str) -> str:
    """Keras' default name of a loss class (`SparseCategoricalCrossentropy` ->
    `sparse_categorical_crossentropy`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _put(out: dict[str, Any], name: str, value: Value | None) -> None:
    if value is not None and value.known:
        out[name] = value.value


def _value(v: Value) -> dict[str, Any]:
    out: dict[str, Any] = {"text": v.text, "known": v.known}
    if v.known:
        out["value"] = v.value
        if v.origin and v.origin != "literal":
            out["origin"] = v.origin
    else:
        out["reason"] = v.reason
    return out


def _call(c: Call) -> dict[str, Any]:
    return {
        "call": c.name,
        "line": c.line,
        "args": [_value(v) for v in c.args],
        "kwargs": {k: _value(v) for k, v in c.kwargs.items()},
    }


def _compile(c: Compile) -> dict[str, Any]:
    out = _call(c.call)
    out["optimizer"] = _call(c.optimizer_call) if c.optimizer_call else None
    out["lossClass"] = _call(c.loss_call) if c.loss_call else None
    return out


def _plain(value: Any) -> Any:
    """`value` as JSON can hold it (no NaN/infinity, tuples and sets as lists)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=repr)
    return repr(value)
