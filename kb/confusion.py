"""Confusion matrices of a classifier: true against predicted class labels, with
per-class precision and recall as scikit-learn computes them (issue 17). Pure numpy."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ontology import Prop


@dataclass(frozen=True)
class ConfusionMatrix:
    """Rows are true classes, columns predicted ones, in `classes` order (as
    scikit-learn's `confusion_matrix`); precision and recall per class (0.0 where a
    class was never predicted / never true, scikit-learn's zero_division value)."""

    classes: tuple[int, ...]
    matrix: np.ndarray
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    support: tuple[int, ...]

    @property
    def samples(self) -> int:
        return int(self.matrix.sum())

    @property
    def accuracy(self) -> float:
        total = self.samples
        return float(np.trace(self.matrix)) / total if total else 0.0

    def props(self) -> dict[str, Any]:
        return {
            Prop.CLASSES: list(self.classes),
            Prop.MATRIX: json.dumps(self.matrix.tolist()),
            Prop.PRECISION: list(self.precision),
            Prop.RECALL: list(self.recall),
            Prop.SUPPORT: list(self.support),
            Prop.SAMPLES: self.samples,
            Prop.ACCURACY: self.accuracy,
        }


def true_labels(y: Any) -> np.ndarray | None:
    """Class labels of targets: integers (n,) or (n, 1), or one-hot rows (n, C>1)
    (argmax); None when they are not class labels (e.g. real-valued targets)."""
    try:
        arr = np.asarray(y)
    except Exception:
        return None
    if arr.ndim == 2 and arr.shape[1] > 1:
        one_hot = arr.dtype.kind in "biuf" and np.isin(arr, (0, 1)).all()
        return np.argmax(arr, axis=1) if one_hot and (arr.sum(axis=1) == 1).all() else None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1 or arr.dtype.kind not in "biuf" or not arr.size:
        return None
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        return None
    return arr.astype(np.int64)


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    classes: Iterable[int] | None = None,
) -> ConfusionMatrix:
    """The confusion matrix of predicted against true class labels (ValueError when
    their lengths differ). `classes`: every label of the rows and columns (default:
    those that occur in either)."""
    true, pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"labels and predictions differ in shape: {true.shape} and {pred.shape}")
    known = sorted(
        set(classes or ()) | set(np.unique(true).tolist()) | set(np.unique(pred).tolist())
    )
    index = {label: i for i, label in enumerate(known)}
    n = len(known)
    rows = np.fromiter((index[v] for v in true.tolist()), np.int64, true.size)
    cols = np.fromiter((index[v] for v in pred.tolist()), np.int64, pred.size)
    matrix = np.bincount(rows * n + cols, minlength=n * n).reshape(n, n)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    diagonal = np.diag(matrix).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, diagonal / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, diagonal / np.maximum(support, 1), 0.0)
    return ConfusionMatrix(
        tuple(int(c) for c in known),
        matrix,
        tuple(float(p) for p in precision),
        tuple(float(r) for r in recall),
        tuple(int(s) for s in support),
    )
