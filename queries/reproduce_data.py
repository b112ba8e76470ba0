"""The data loading of a reproduction script: known datasets by their recorded name,
else a clearly marked placeholder (`provkb reproduce`).

ProvKB records a dataset's name (the `datasets=` the callback was given, or the
caller's variable), shape, dtype, sample count and content fingerprint, not where it
came from or how it was preprocessed. A name that names a well-known dataset
(`digits`, `load_digits`, `mnist`, ...) is loaded from scikit-learn or
`keras.datasets` and brought to the recorded shape, dtype and sample counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..capture.facts import Role
from ..ontology import Prop


@dataclass(frozen=True)
class Source:
    """How to load a well-known dataset: code leaving its arrays in `x` and `y`."""

    title: str
    code: tuple[str, ...]


def _sklearn(name: str) -> Source:
    return Source(
        f"scikit-learn's {name}",
        (f"from sklearn.datasets import {name}", "", f"x, y = {name}(return_X_y=True)"),
    )


def _keras(name: str) -> Source:
    return Source(
        f"keras.datasets.{name}",
        (f"(x, y), _ = keras.datasets.{name}.load_data()",),
    )


# Longest names first: `fashion_mnist` before `mnist`.
KNOWN: dict[str, Source] = {
    "breast_cancer": _sklearn("load_breast_cancer"),
    "fashion_mnist": _keras("fashion_mnist"),
    "cifar100": _keras("cifar100"),
    "cifar10": _keras("cifar10"),
    "digits": _sklearn("load_digits"),
    "mnist": _keras("mnist"),
    "iris": _sklearn("load_iris"),
    "wine": _sklearn("load_wine"),
}


def known_source(name: Any) -> Source | None:
    """The well-known dataset a recorded name names (`digits`, `x_digits`, `mnist-train`)."""
    if not isinstance(name, str):
        return None
    padded = "_" + re.sub(r"[^a-z0-9]+", "_", name.lower()) + "_"
    return next((s for key, s in KNOWN.items() if f"_{key}_" in padded), None)


def describe(ds: Mapping[str, Any]) -> str:
    """`'digits': 256 samples of shape (64,), float32` (what the run recorded)."""
    shape = ds.get(Prop.SHAPE)
    sample = tuple(shape[1:]) if isinstance(shape, list) else None
    return (
        f"{ds.get(Prop.NAME)!r}: {ds.get(Prop.SAMPLES)} samples of shape {sample}, "
        f"{ds.get(Prop.DTYPE)}"
    )


@dataclass(frozen=True)
class DataPlan:
    """The body of `load_data()` and what the script's comments say about it."""

    body: tuple[str, ...]
    known: bool
    notes: tuple[str, ...]


def _several_inputs(ds: Mapping[str, Any]) -> bool:
    import json

    try:
        parts = json.loads(ds.get(Prop.INPUTS) or "[]")
    except ValueError:
        return False
    return sum(1 for p in parts if isinstance(p, dict) and p.get("role") == "input") > 1


def pieces(text: str, width: int = 64) -> list[str]:
    """`text` cut at spaces into pieces of about `width` characters (spaces kept)."""
    words = text.split(" ")
    pieces, line = [], ""
    for word in words:
        if line and len(line) + len(word) > width:
            pieces.append(line)
            line = ""
        line += word + " "
    return [*pieces, line.rstrip(" ")]


def _placeholder(run_id: str, datasets: Sequence[Mapping[str, Any]], why: str) -> DataPlan:
    recorded = "; ".join(f"{d.get(Prop.ROLE)} data {describe(d)}" for d in datasets)
    message = (
        f"provkb reproduce: {why} of run {run_id} ({recorded or 'no dataset recorded'}). "
        "Replace load_data() in this script with code that returns ((x, y), validation), "
        "validation being (x_val, y_val) or None."
    )
    body = ("raise NotImplementedError(", *(f"    {part!r}" for part in pieces(message)), ")")
    return DataPlan(body, False, ("PLACEHOLDER: the data source is unknown: fill in load_data().",))


def scanned(scan: Mapping[str, Any]) -> tuple[Source | None, str | None]:
    """The first well-known dataset the script's scan saw loaded, and how the script
    loads its data (`numpy.load('x.npy')`, line 12 of train.py), for the notes."""
    loads = [d for d in scan.get("datasets") or [] if isinstance(d, Mapping)]
    for load in loads:
        found = known_source(load.get("source")) or known_source(
            str(load.get("loader") or "").rsplit(".", 1)[-1]
        )
        if found is not None:
            return found, _where(scan, load)
    return None, "; ".join(_where(scan, load) for load in loads) or None


def _where(scan: Mapping[str, Any], load: Mapping[str, Any]) -> str:
    args = [a.get("text", "?") for a in load.get("args") or [] if isinstance(a, Mapping)]
    args += [f"{k}={v.get('text', '?')}" for k, v in (load.get("kwargs") or {}).items()]
    return f"{load.get('call')}({', '.join(args)}), line {load.get('line')} of {scan.get('path')}"


def plan(
    run_id: str,
    datasets: Sequence[Mapping[str, Any]],
    separate_validation: bool,
    scan: Mapping[str, Any] | None = None,
) -> DataPlan:
    """`load_data()` for the recorded train (and validation) datasets: the dataset the
    script's scan saw loaded when it is well known, else the recorded name's."""
    by_role = {d.get(Prop.ROLE): d for d in datasets}
    train = by_role.get(Role.TRAIN)
    if train is None:
        return _placeholder(run_id, datasets, "ProvKB recorded no training data")
    source, where = scanned(scan or {})
    how = f"as the scan of the run's script found it ({where})" if source else None
    if source is None:
        source = known_source(train.get(Prop.NAME))
        how = f"by the recorded name {train.get(Prop.NAME)!r}"
    shape = train.get(Prop.SHAPE)
    fixed = isinstance(shape, list) and all(isinstance(d, int) for d in shape[1:])
    if source is None or not fixed or _several_inputs(train):
        why = "ProvKB does not know where to load the data"
        if where:
            why += f" (the script loads it with {where})"
        return _placeholder(run_id, datasets, why)
    validation = by_role.get(Role.VALIDATION)
    n_train = int(train.get(Prop.SAMPLES) or shape[0] or 0)
    n_val = int(validation.get(Prop.SAMPLES) or 0) if validation is not None else 0
    body = list(source.code)
    dims = ", ".join(str(d) for d in ["-1", *shape[1:]])
    body.append(f"x = x.reshape(({dims})).astype({train.get(Prop.DTYPE)!r})")
    if train.get(Prop.TARGET_DTYPE):
        body.append(f"y = y.astype({train.get(Prop.TARGET_DTYPE)!r})")
    if separate_validation and validation is not None:
        body += [
            f"n_train, end = {n_train}, {n_train + n_val}",
            "return (x[:n_train], y[:n_train]), (x[n_train:end], y[n_train:end])",
        ]
    else:  # the validation split (if any) is the last part of these arrays, as Keras takes it
        body += [f"n_samples = {n_train + n_val}", "return (x[:n_samples], y[:n_samples]), None"]
    notes = (
        f"The data: {source.title}, {how}, brought to the recorded shape, dtype and "
        f"sample count ({describe(train)}).",
        "ProvKB records the data's shape, dtype and content fingerprint, not its "
        "preprocessing: add scaling or other steps here. The original training data's "
        f"fingerprint was {train.get(Prop.FINGERPRINT)}; `provkb query reproductions` "
        "says whether the reproduction used the same data (sameData).",
    )
    return DataPlan(tuple(body), True, notes)
