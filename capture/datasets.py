"""Describe the data given to fit/evaluate: shape, dtype, samples and a content hash."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .facts import Dataset


def _leaves(data: Any) -> list[Any]:
    """The arrays of a (possibly nested) structure, in a stable order."""
    if data is None:
        return []
    if isinstance(data, Mapping):
        return [leaf for key in sorted(data, key=str) for leaf in _leaves(data[key])]
    if isinstance(data, list | tuple):
        return [leaf for item in data for leaf in _leaves(item)]
    return [data]


def _as_array(value: Any) -> np.ndarray | None:
    """A numpy view of an in-memory array (numpy, tensors, pandas), else None."""
    if isinstance(value, np.ndarray):
        return value
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        return None
    try:
        if hasattr(value, "detach"):  # torch
            value = value.detach().cpu()
        return np.asarray(value)
    except Exception:
        return None


def _arrays(data: Any) -> list[np.ndarray] | None:
    leaves = _leaves(data)
    arrays = [_as_array(leaf) for leaf in leaves]
    if not leaves or any(a is None for a in arrays):
        return None
    return arrays  # type: ignore[return-value]


def _update(digest: Any, arr: np.ndarray) -> None:
    digest.update(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype.hasobject:
        digest.update(repr(arr.tolist()).encode())
    elif arr.size:
        digest.update(np.ascontiguousarray(arr).data)


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for arr in arrays:
        _update(digest, arr)
    return digest.hexdigest()


def _shape(arr: np.ndarray) -> tuple[int, ...]:
    return tuple(int(d) for d in arr.shape)


def describe(x: Any, y: Any = None, name: str | None = None, salt: str = "") -> Dataset | None:
    """Describe inputs `x` with targets `y`.

    In-memory arrays are fingerprinted by content. Anything else (tf.data, generators,
    PyDataset) cannot be hashed without consuming it: its fingerprint is the hash of
    its type, structure and `salt` (e.g. run and role), so it is never confused with
    another dataset.
    """
    if x is None:
        return None
    xs = _arrays(x)
    ys = _arrays(y) if y is not None else []
    if xs is not None and ys is not None:
        first, target = xs[0], (ys[0] if ys else None)
        return Dataset(
            fingerprint=fingerprint(*xs, *ys),
            name=name,
            shape=_shape(first),
            dtype=str(first.dtype),
            samples=int(first.shape[0]) if first.ndim else None,
            target_shape=_shape(target) if target is not None else None,
            target_dtype=str(target.dtype) if target is not None else None,
        )
    spec = getattr(x, "element_spec", None)
    text = f"{type(x).__module__}.{type(x).__qualname__}:{spec!r}:{salt}"
    return Dataset(
        fingerprint=hashlib.sha256(text.encode()).hexdigest(),
        name=name or type(x).__name__,
        shape=None,
        dtype=None,
        samples=_cardinality(x),
    )


def _cardinality(x: Any) -> int | None:
    try:
        if hasattr(x, "cardinality"):
            n = int(x.cardinality())
            return n if n >= 0 else None
    except Exception:
        return None
    return None


def unpack(data: Any) -> tuple[Any, Any]:
    """(x, y) of `validation_data`-like input: a tuple/list (x, y[, sample_weight]) or x."""
    if isinstance(data, tuple | list) and len(data) in (2, 3):
        return data[0], data[1]
    return data, None


def split(x: Any, y: Any, validation_split: float) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Keras' `validation_split`: the last fraction of the samples is for validation."""
    leaves = [leaf for leaf in _leaves(x) if leaf is not None]
    if not leaves or not validation_split:
        return (x, y), (None, None)
    total = int(leaves[0].shape[0])
    at = int(math.floor(total * (1.0 - validation_split)))

    def cut(data: Any, start: int, end: int) -> Any:
        if data is None:
            return None
        if isinstance(data, Mapping):
            return {k: cut(v, start, end) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return type(data)(cut(v, start, end) for v in data)
        return data[start:end]

    return (cut(x, 0, at), cut(y, 0, at)), (cut(x, at, total), cut(y, at, total))
