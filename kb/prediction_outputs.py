"""A model's outputs, summarised as a Predictions entity keeps them (issue 17): the
content fingerprint of arrays, the class each output row predicts, summary statistics
and a small sample, accumulated batch by batch. Pure numpy, no I/O."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ontology import Prop

SAMPLE_ROWS = 5  # output rows kept on a Predictions entity by default
SAMPLE_BYTES = 4096  # at most this much JSON text of them
SAMPLE_DIGITS = 6  # significant digits of the sampled values
SAMPLE_VALUES = 512  # rows with more values are not sampled (images, sequences)


# -- arrays ---------------------------------------------------------------------------
def array_fingerprint(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' dtypes, shapes and bytes: the fingerprint capture gives an
    in-memory dataset (`capture.datasets.fingerprint`), so the Test tab's input and the
    same array given to `predict` are one Dataset."""
    digest = hashlib.sha256()
    for arr in arrays:
        _update(digest, arr)
    return digest.hexdigest()


def _update(digest: Any, arr: np.ndarray) -> None:
    digest.update(f"{arr.dtype.str}{arr.shape}".encode())
    _update_bytes(digest, arr)


def _update_bytes(digest: Any, arr: np.ndarray) -> None:
    if arr.dtype.hasobject:
        digest.update(repr(arr.tolist()).encode())
    elif arr.size:
        digest.update(np.ascontiguousarray(arr).data)


def leaves(outputs: Any) -> list[tuple[str | None, np.ndarray]]:
    """(name, array) of a model's outputs: one array, a list/tuple or a dict of them."""
    if isinstance(outputs, Mapping):
        return [(str(k), np.asarray(outputs[k])) for k in sorted(outputs, key=str)]
    if isinstance(outputs, list | tuple):
        if len(outputs) == 1:
            return leaves(outputs[0])
        return [(str(i), np.asarray(v)) for i, v in enumerate(outputs)]
    return [(None, np.asarray(outputs))]


def class_labels(outputs: np.ndarray) -> np.ndarray | None:
    """The class each row of a classifier's outputs predicts: argmax of a (n, C>1)
    output, or for one column (a sigmoid, or logits when outside [0, 1]) the threshold
    0.5 (or 0); None for outputs of another shape."""
    arr = np.asarray(outputs)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return np.argmax(arr, axis=1)
    if arr.ndim in (1, 2) and (arr.ndim == 1 or arr.shape[1] == 1) and arr.dtype.kind == "f":
        flat = arr.reshape(-1)
        finite = flat[np.isfinite(flat)]
        logits = finite.size and (finite.min() < 0 or finite.max() > 1)
        return (flat > (0.0 if logits else 0.5)).astype(np.int64)
    return None


def _round(value: float) -> float:
    return float(f"{value:.{SAMPLE_DIGITS}g}") if math.isfinite(value) else value


def _sample_text(rows: list[Any]) -> str | None:
    """JSON of the first rows, as many whole rows as fit in `SAMPLE_BYTES`."""
    kept: list[Any] = []
    for row in rows:
        text = json.dumps([*kept, row])
        if len(text) > SAMPLE_BYTES:
            break
        kept.append(row)
    return json.dumps(kept) if kept else None


def _plain_row(row: np.ndarray) -> Any:
    arr = np.asarray(row)
    if arr.dtype.kind == "f":
        return np.vectorize(_round, otypes=[float])(arr).tolist() if arr.ndim else _round(arr)
    return arr.tolist()


@dataclass
class OutputSummary:
    """What a Predictions entity says about the outputs of one predict."""

    shape: tuple[int, ...]
    dtype: str
    samples: int
    fingerprint: str
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    nan_count: int = 0
    sample: str | None = None  # JSON of the first rows
    outputs: str | None = None  # JSON of every output, when the model has several
    classes: list[int] | None = None  # the predicted class of each sampled row

    def props(self) -> dict[str, Any]:
        return {
            Prop.SHAPE: list(self.shape),
            Prop.DTYPE: self.dtype,
            Prop.SAMPLES: self.samples,
            Prop.FINGERPRINT: self.fingerprint,
            Prop.MIN: self.minimum,
            Prop.MAX: self.maximum,
            Prop.MEAN: self.mean,
            Prop.STD: self.std,
            Prop.NAN_COUNT: self.nan_count,
            Prop.SAMPLE: self.sample,
            Prop.OUTPUTS: self.outputs,
            Prop.PREDICTED_CLASSES: self.classes,
        }


class OutputAccumulator:
    """Collects a predict's outputs batch by batch and summarises them at the end: the
    statistics of the first output over its finite values, the fingerprint of every
    output (`array_fingerprint` of each whole output: the same as of the array predict
    returns), the first rows and, for a classifier, every row's predicted class.

    It keeps references to the batches' arrays until `summary` (Keras holds them too,
    to concatenate them), and copies nothing. Keras may call a predict's batch ends
    from a thread pool (a callback list whose callbacks are all `async_safe`), in any
    order: `add` takes the batch's step, under a lock, and the summary follows the
    steps' order."""

    def __init__(self, sample_rows: int = SAMPLE_ROWS) -> None:
        self.sample_rows = max(0, int(sample_rows))
        self._lock = threading.Lock()
        self._batches: dict[int, list[tuple[str | None, np.ndarray]]] = {}
        self._next = 0

    def add(self, outputs: Any, step: int | None = None) -> None:
        """One batch of outputs (an array, or a list/dict of arrays) of step `step`
        (default: after the previous one)."""
        found = [(name, arr) for name, arr in leaves(outputs) if arr.ndim]
        if not found:
            return
        with self._lock:
            if step is None:
                step = self._next
            self._next = max(self._next, step + 1)
            self._batches[step] = found

    def _ordered(self) -> list[list[tuple[str | None, np.ndarray]]]:
        with self._lock:
            return [self._batches[k] for k in sorted(self._batches)]

    @property
    def samples(self) -> int:
        return sum(int(batch[0][1].shape[0]) for batch in self._ordered())

    @property
    def labels(self) -> np.ndarray | None:
        """The predicted class of every row, in order (None: not a classifier)."""
        parts = []
        for batch in self._ordered():
            labels = class_labels(batch[0][1])
            if labels is None:
                return None
            parts.append(labels.astype(np.int64, copy=False))
        return np.concatenate(parts) if parts else None

    def summary(self) -> OutputSummary | None:
        """The summary of everything added (None when nothing was)."""
        batches = self._ordered()
        if not batches:
            return None
        specs = [(name, arr.shape[1:], arr.dtype) for name, arr in batches[0]]
        samples = sum(int(b[0][1].shape[0]) for b in batches)
        digest = hashlib.sha256()
        if all([(n, a.shape[1:], a.dtype) for n, a in b] == specs for b in batches):
            for i, (_, shape, dtype) in enumerate(specs):  # as array_fingerprint(whole)
                digest.update(f"{dtype.str}{(samples, *shape)}".encode())
                for batch in batches:
                    _update_bytes(digest, batch[i][1])
        else:  # batches of other shapes (variable-length outputs): each with its shape
            for batch in batches:
                for _, arr in batch:
                    _update(digest, arr)
        stats = [_stats(batch[0][1]) for batch in batches]
        rows: list[Any] = []
        for batch in batches:
            first = batch[0][1]
            if len(rows) >= self.sample_rows or not len(first) or first[0].size > SAMPLE_VALUES:
                break
            rows += [_plain_row(row) for row in first[: self.sample_rows - len(rows)]]
        several = None
        if len(specs) > 1:
            several = json.dumps(
                [{"name": n, "shape": [samples, *s], "dtype": d.name} for n, s, d in specs]
            )
        labels = self.labels
        count = sum(s[0] for s in stats)
        total, squares = sum(s[2] for s in stats), sum(s[3] for s in stats)
        mean = total / count if count else None
        return OutputSummary(
            shape=(samples, *(int(d) for d in specs[0][1])),
            dtype=specs[0][2].name,
            samples=samples,
            fingerprint=digest.hexdigest(),
            minimum=min(s[4] for s in stats) if count else None,
            maximum=max(s[5] for s in stats) if count else None,
            mean=mean,
            std=math.sqrt(max(squares / count - mean * mean, 0.0)) if mean is not None else None,
            nan_count=sum(s[1] for s in stats),
            sample=_sample_text(rows) if rows else None,
            outputs=several,
            classes=labels[: len(rows)].tolist() if labels is not None and rows else None,
        )


def _stats(arr: np.ndarray) -> tuple[int, int, float, float, float, float]:
    """(finite values, other values, sum, sum of squares, min, max) of a numeric array."""
    if arr.dtype.kind not in "biuf" or not arr.size:
        return 0, 0, 0.0, 0.0, math.inf, -math.inf
    values = arr.astype(np.float64, copy=False).reshape(-1)
    finite = np.isfinite(values)
    good = values if finite.all() else values[finite]
    if not good.size:
        return 0, int(values.size), 0.0, 0.0, math.inf, -math.inf
    return (
        int(good.size),
        int(values.size - good.size),
        float(good.sum()),
        float(np.dot(good, good)),
        float(good.min()),
        float(good.max()),
    )


def summarize(outputs: Any, sample_rows: int = SAMPLE_ROWS) -> OutputSummary | None:
    """The summary of a whole predict's outputs at once."""
    acc = OutputAccumulator(sample_rows=sample_rows)
    acc.add(outputs)
    return acc.summary()
