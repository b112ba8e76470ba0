"""Predictions, confusion matrices and stored models as PROV records (issue 17).

Pure: numpy arrays in, `GraphBatch`es out (no Keras, no I/O). Both capture (a
`model.predict` with the callback) and the app's Test tab (`kb.model_test`) build
their records here, so both write the same shapes (docs/graph-model.md):

    (:Prediction)-[:USED {role: model}]->(:Model | :StoredModel)
    (:Prediction)-[:USED {role: input}]->(:Dataset)
    (:Predictions)-[:WAS_GENERATED_BY]->(:Prediction)-[:WAS_ASSOCIATED_WITH]->(:Person)
    (:ConfusionMatrix)-[:WAS_GENERATED_BY]->(:Evaluation)
    (:Evaluation)-[:USED {role: predictions}]->(:Predictions)
    (:StoredModel)-[:WAS_GENERATED_BY]->(:TrainingRun), (:StoredModel)-[:WAS_DERIVED_FROM]->(:Model)
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ontology import (
    CONFUSION_MATRIX,
    DATASET,
    PERSON,
    PREDICTION,
    PREDICTIONS,
    STORED_MODEL,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_DERIVED_FROM,
    WAS_GENERATED_BY,
    PredictionRole,
    Prop,
)
from ..ontology import ids as ontology_ids
from .records import GraphBatch

SAMPLE_ROWS = 5  # output rows kept on a Predictions entity by default
SAMPLE_BYTES = 4096  # at most this much JSON text of them
SAMPLE_DIGITS = 6  # significant digits of the sampled values
SAMPLE_VALUES = 512  # rows with more values are not sampled (images, sequences)
CONTENT = "content"  # fingerprintBasis of an in-memory input (as capture.datasets)


# -- ids ------------------------------------------------------------------------------
def new_prediction_id() -> str:
    """A fresh prediction id (several processes may predict with one run's model)."""
    return uuid.uuid4().hex[:12]


def prediction_node(run_id: str, prediction_id: str) -> str:
    """`provkb:run/<run>/prediction/<id>`."""
    return f"{ontology_ids.run(run_id)}/prediction/{ontology_ids.segment(prediction_id)}"


def predictions_node(prediction: str) -> str:
    """The Predictions entity a Prediction generated: `<prediction>/output`."""
    return f"{prediction}/output"


def model_node(run_id: str) -> str:
    """The run's Model entity (as capture names it)."""
    return f"{ontology_ids.run(run_id)}/model"


def stored_model_node(run_id: str) -> str:
    """The saved file of a run's model: `provkb:run/<run>/model/file`."""
    return f"{model_node(run_id)}/file"


def confusion_node(evaluation: str) -> str:
    """The confusion matrix an Evaluation generated: `<evaluation>/confusion-matrix`."""
    return f"{evaluation}/confusion-matrix"


def dataset_node(fingerprint: str) -> str:
    return ontology_ids.qualified(f"dataset/{fingerprint}")


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


# -- confusion matrices ---------------------------------------------------------------
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


# -- records --------------------------------------------------------------------------
@dataclass(frozen=True)
class InputData:
    """The input of a prediction, described like a dataset (capture.datasets)."""

    fingerprint: str
    name: str | None
    shape: tuple[int | None, ...] | None
    dtype: str | None
    samples: int | None
    basis: str = CONTENT


def describe_input(x: np.ndarray, name: str | None = None) -> InputData:
    """An in-memory input array as a dataset (its content fingerprint)."""
    arr = np.asarray(x)
    samples = int(arr.shape[0]) if arr.ndim else None
    return InputData(array_fingerprint(arr), name, tuple(arr.shape), arr.dtype.name, samples)


def input_dataset(batch: GraphBatch, data: InputData) -> str:
    """The Dataset node of an input (the properties capture gives an in-memory one)."""
    return batch.add_node(
        dataset_node(data.fingerprint),
        DATASET.kind,
        DATASET,
        **{
            Prop.NAME: data.name,
            Prop.SHAPE: list(data.shape) if data.shape is not None else None,
            Prop.DTYPE: data.dtype,
            Prop.SAMPLES: data.samples,
            Prop.FINGERPRINT: data.fingerprint,
            Prop.FINGERPRINT_BASIS: data.basis,
        },
    )


def prediction(
    batch: GraphBatch,
    run_id: str,
    prediction_id: str,
    model: str,
    dataset: str | None,
    summary: OutputSummary | None,
    person: str,
    started: str,
    ended: str,
    **extra: Any,
) -> str:
    """A Prediction of `run_id`'s model (node `model`: its Model or StoredModel) on
    input `dataset` (already in `batch` or the store) by `person`, and the Predictions
    entity it generated (when there were outputs); returns the Prediction's id."""
    activity = batch.add_node(
        prediction_node(run_id, prediction_id),
        PREDICTION.kind,
        PREDICTION,
        **{Prop.RUN_ID: run_id, Prop.STARTED: started, Prop.ENDED: ended, **extra},
    )
    person_id = batch.add_node(
        ontology_ids.person(person), PERSON.kind, PERSON, **{Prop.NAME: person}
    )
    batch.add_edge(WAS_ASSOCIATED_WITH, activity, person_id)
    batch.add_edge(USED, activity, model, **{Prop.ROLE: PredictionRole.MODEL})
    if dataset is not None:
        batch.add_edge(USED, activity, dataset, **{Prop.ROLE: PredictionRole.INPUT})
    if summary is not None:
        output = batch.add_node(
            predictions_node(activity),
            PREDICTIONS.kind,
            PREDICTIONS,
            **{Prop.RUN_ID: run_id, Prop.GENERATED: ended, **summary.props()},
        )
        batch.add_edge(WAS_GENERATED_BY, output, activity)
    return activity


def confusion(
    batch: GraphBatch,
    run_id: str,
    evaluation: str,
    matrix: ConfusionMatrix,
    predictions: str | None,
    generated: str,
) -> str:
    """The ConfusionMatrix `evaluation` generated, which USED the `predictions` it
    was computed from."""
    node = batch.add_node(
        confusion_node(evaluation),
        CONFUSION_MATRIX.kind,
        CONFUSION_MATRIX,
        **{Prop.RUN_ID: run_id, Prop.GENERATED: generated, **matrix.props()},
    )
    batch.add_edge(WAS_GENERATED_BY, node, evaluation)
    if predictions is not None:
        batch.add_edge(USED, evaluation, predictions, **{Prop.ROLE: PredictionRole.PREDICTIONS})
        batch.add_edge(WAS_DERIVED_FROM, node, predictions)
    return node


def stored_model(
    batch: GraphBatch,
    run_id: str,
    path: str,
    size: int,
    sha256: str,
    saved: str,
    host: str | None = None,
    weights_sha256: str | None = None,
    has_model: bool = True,
) -> str:
    """The saved `.keras` file of a run's model: generated by the run, derived from
    its Model (when the run recorded one)."""
    node = batch.add_node(
        stored_model_node(run_id),
        STORED_MODEL.kind,
        STORED_MODEL,
        **{
            Prop.RUN_ID: run_id,
            Prop.PATH: path,
            Prop.SIZE_BYTES: size,
            Prop.SHA256: sha256,
            Prop.FORMAT: "keras",
            Prop.HOSTNAME: host,
            Prop.WEIGHTS_SHA256: weights_sha256,
            Prop.GENERATED: saved,
        },
    )
    batch.add_edge(WAS_GENERATED_BY, node, ontology_ids.run(run_id))
    if has_model:
        batch.add_edge(WAS_DERIVED_FROM, node, model_node(run_id))
    return node
