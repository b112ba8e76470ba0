"""Describe the data given to fit/evaluate: every input and target (name, shape, dtype,
samples), the sample count and a content fingerprint, on the training thread's budget.

What the fingerprint hashes (`Dataset.fingerprint_basis`, docs/graph-model.md):

- in-memory arrays (NumPy, tensors, pandas; nested in tuples, lists, dicts): `content`,
  every array's dtype, shape and bytes;
- a tf.data pipeline whose source is in memory (`from_tensor_slices`/`from_tensors`)
  and whose other steps only batch, shuffle, cache, prefetch or repeat: `content`, the
  source arrays exactly as above (so the same arrays fed as NumPy or as tf.data are one
  dataset);
- any other tf.data pipeline or a `keras.utils.PyDataset`: `first-batches`, its element
  spec, cardinality and the first `FIRST_BATCHES` batches (read once, before training;
  a pipeline that reshuffles before batching gives other batches, hence another
  fingerprint, at each run);
- what cannot be read without consuming it (a Python generator): `type`, its type,
  structure and the run (`salt`), so it is never confused with another dataset.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .facts import DataPart, Dataset, FingerprintBasis

FIRST_BATCHES = 2  # batches a pipeline without an in-memory source is fingerprinted by
INPUT, TARGET = "input", "target"
# tf.data steps that keep the elements of their input (only group, order or buffer them)
_NEUTRAL_STEPS = ("Batch", "Shuffle", "Prefetch", "Cache", "Repeat", "Options", "Rebatch")


def _leaves(data: Any) -> list[Any]:
    """The arrays of a (possibly nested) structure, in a stable order."""
    return [leaf for _, leaf in _named_leaves(data)]


def _named_leaves(data: Any, name: str | None = None) -> list[tuple[str | None, Any]]:
    """(name, array) of a structure: dict keys name their values, positions (when
    several) name the items of a list or tuple."""
    if data is None:
        return []
    if isinstance(data, Mapping):
        return [
            leaf
            for key in sorted(data, key=str)
            for leaf in _named_leaves(data[key], _join(name, str(key)))
        ]
    if isinstance(data, list | tuple):
        if len(data) == 1:
            return _named_leaves(data[0], name)
        return [
            leaf for i, item in enumerate(data) for leaf in _named_leaves(item, _join(name, str(i)))
        ]
    return [(name, data)]


def _join(prefix: str | None, name: str) -> str:
    return name if prefix is None else f"{prefix}/{name}"


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


def _shape(arr: Any) -> tuple[int | None, ...] | None:
    shape = getattr(arr, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except TypeError:  # unknown rank
        return None


def _dtype(value: Any) -> str | None:
    dtype = getattr(value, "dtype", None)
    return None if dtype is None else str(getattr(dtype, "name", dtype))


def _parts(role: str, data: Any) -> list[DataPart]:
    out = []
    for name, leaf in _named_leaves(data):
        shape = _shape(leaf)
        samples = shape[0] if shape and isinstance(shape[0], int) else None
        out.append(DataPart(role, name, shape, _dtype(leaf), samples))
    return out


def _dataset(
    fp: str,
    name: str | None,
    parts: list[DataPart],
    samples: int | None,
    basis: str,
) -> Dataset:
    inputs = [p for p in parts if p.role == INPUT]
    targets = [p for p in parts if p.role == TARGET]
    first, target = (inputs[0] if inputs else None), (targets[0] if targets else None)
    return Dataset(
        fingerprint=fp,
        name=name,
        shape=first.shape if first else None,
        dtype=first.dtype if first else None,
        samples=samples,
        target_shape=target.shape if target else None,
        target_dtype=target.dtype if target else None,
        parts=tuple(parts),
        fingerprint_basis=basis,
    )


def describe(x: Any, y: Any = None, name: str | None = None, salt: str = "") -> Dataset | None:
    """Describe inputs `x` with targets `y` (module docstring: what is fingerprinted)."""
    if x is None:
        return None
    xs = _arrays(x)
    ys = _arrays(y) if y is not None else []
    if xs is not None and ys is not None:
        parts = _parts(INPUT, x) + _parts(TARGET, y)
        samples = parts[0].samples if parts else None
        return _dataset(fingerprint(*xs, *ys), name, parts, samples, FingerprintBasis.CONTENT)
    try:
        if hasattr(x, "element_spec") and hasattr(x, "cardinality"):
            return _pipeline(x, name, salt)
        if hasattr(x, "__getitem__") and hasattr(x, "__len__") and not isinstance(x, str):
            return _indexed(x, name, salt)
    except Exception:  # capture never fails on data it cannot read
        pass
    return _opaque(x, name, salt)


def _opaque(x: Any, name: str | None, salt: str) -> Dataset:
    spec = getattr(x, "element_spec", None)
    text = f"{type(x).__module__}.{type(x).__qualname__}:{spec!r}:{salt}"
    return Dataset(
        fingerprint=hashlib.sha256(text.encode()).hexdigest(),
        name=name or type(x).__name__,
        shape=None,
        dtype=None,
        samples=_cardinality(x),
        fingerprint_basis=FingerprintBasis.TYPE,
    )


def _split(element: Any) -> tuple[Any, Any]:
    """(x, y) of one element of a pipeline: (x, y[, sample_weight]) or x."""
    if isinstance(element, tuple) and len(element) in (2, 3):
        return element[0], element[1]
    return element, None


def _steps(ds: Any) -> list[Any]:
    """A tf.data pipeline's steps, from the last to its source."""
    out = []
    while ds is not None and len(out) < 100:
        out.append(ds)
        ds = getattr(ds, "_input_dataset", None)
    return out


def _pipeline_samples(steps: list[Any]) -> int | None:
    """Samples of a pipeline: its batch step's input cardinality (whole batches only when
    it drops the remainder), else its own cardinality (elements are samples)."""
    for i, step in enumerate(steps):
        size = getattr(step, "_batch_size", None)
        if size is None or i + 1 >= len(steps):
            continue
        count = _cardinality(steps[i + 1])
        if count is None:
            return None
        batch = int(np.asarray(size))
        drop = bool(np.asarray(getattr(step, "_drop_remainder", False)))
        return (count // batch) * batch if drop else count
    return _cardinality(steps[0])


def _pipeline(ds: Any, name: str | None, salt: str) -> Dataset:
    spec_x, spec_y = _split(ds.element_spec)
    parts = _parts(INPUT, spec_x) + _parts(TARGET, spec_y)
    steps = _steps(ds)
    samples = _pipeline_samples(steps)
    parts = [DataPart(p.role, p.name, p.shape, p.dtype, samples) for p in parts]
    source = steps[-1]
    tensors = getattr(source, "_tensors", None)
    neutral = all(any(n in type(s).__name__ for n in _NEUTRAL_STEPS) for s in steps[:-1])
    if tensors is not None and neutral and "TensorSlice" in type(source).__name__:
        arrays = [np.asarray(t) for t in tensors]  # the data itself: parts as for arrays
        if len(arrays) == len(parts):
            parts = [
                DataPart(p.role, p.name, _shape(a), _dtype(a), samples)
                for p, a in zip(parts, arrays, strict=True)
            ]
        return _dataset(fingerprint(*arrays), name, parts, samples, FingerprintBasis.CONTENT)
    digest = hashlib.sha256(f"{ds.element_spec!r}:{_cardinality(ds)}".encode())
    for batch in ds.take(FIRST_BATCHES):
        for leaf in _leaves(batch):
            _update(digest, np.asarray(leaf))
    return _dataset(
        digest.hexdigest(),
        name or type(ds).__name__,
        parts,
        samples,
        FingerprintBasis.FIRST_BATCHES,
    )


def _indexed(ds: Any, name: str | None, salt: str) -> Dataset:
    """A `keras.utils.PyDataset` (or Sequence): batches by index, `len` of them."""
    count = len(ds)
    if count <= 0:
        return _opaque(ds, name, salt)
    first = ds[0]
    x, y = _split(tuple(first) if isinstance(first, list) else first)
    digest = hashlib.sha256(f"{type(ds).__qualname__}:{count}".encode())
    for i in range(min(FIRST_BATCHES, count)):
        for leaf in _leaves(ds[i] if i else first):
            _update(digest, np.asarray(leaf))
    parts = _parts(INPUT, x) + _parts(TARGET, y)
    size = parts[0].samples if parts else None
    last = _parts(INPUT, _split(ds[count - 1])[0]) if count > 1 else parts
    last_size = last[0].samples if last else None
    samples = None  # full batches but the last, as PyDataset yields them
    if size is not None and last_size is not None:
        samples = size * (count - 1) + last_size
    parts = [
        DataPart(p.role, p.name, (None, *(p.shape or ())[1:]), p.dtype, samples) for p in parts
    ]
    return _dataset(
        digest.hexdigest(),
        name or type(ds).__name__,
        parts,
        samples,
        FingerprintBasis.FIRST_BATCHES,
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
