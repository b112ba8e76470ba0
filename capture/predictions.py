"""`model.predict` with the callback (or under autolog) as a Prediction, and confusion
matrices of classifiers (issue 17, docs/graph-model.md).

Keras hands a callback no data in predict, only each batch's outputs
(`on_predict_batch_end(step, {"outputs": ...})`, Keras 3 on every backend). So the
input is read like evaluate's (autolog passes the call's arguments, else the trainer's
frame), the outputs are summarised batch by batch without keeping them
(`kb.predictions.OutputAccumulator`), and the Prediction is written at
`on_predict_end` through the background writer: predict never waits for the store.

Confusion matrices. Keras' evaluate gives callbacks only metric values, never the
predictions, so a matrix cannot come out of evaluate itself without predicting a
second time. Two ways give one without a second pass:

- `model.evaluate(x, y)` after a recorded `model.predict(x)` of the same inputs (same
  content fingerprint): the Evaluation also generates a ConfusionMatrix from the
  predicted classes that predict already made;
- `capture.confusion_matrix(x, y)`: one recorded predict of `x`, then an Evaluation
  that used those Predictions (test metric `accuracy`) and generated the matrix.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PredictionError
from ..kb import confusion as confusions
from ..kb import prediction_outputs as summaries
from ..kb import predictions as records
from ..kb.records import GraphBatch
from ..ontology import PredictionRole
from . import datasets, fit_context, ids
from .facts import Dataset, Role
from .fit_context import CallArgs
from .run_lifecycle import now
from .run_start import fact
from .safety import WarnOnce

PREDICT_ARGUMENTS = ("x", "batch_size", "steps")


@dataclass(frozen=True)
class Recorded:
    """The last recorded predict of a callback: what a later evaluate can reuse."""

    input_fingerprint: str | None
    samples: int
    labels: np.ndarray | None  # the predicted class of every row (None: no classifier)
    classes: int  # the classifier's number of classes (its output width, 2 for one column)
    predictions: str | None  # the Predictions entity's id
    prediction: str  # the Prediction's id


@dataclass
class _Ongoing:
    prediction_id: str
    started: str
    dataset: Dataset | None
    outputs: summaries.OutputAccumulator
    classes: int = 0


def predict_from_frames(model: Any) -> CallArgs | None:
    """The arguments of the running `model.predict`, from the trainer's frame."""
    frame = fit_context._find(sys._getframe(1), "predict", model)
    if frame is None:
        return None
    try:
        local_names = frame.f_locals
        arguments = {k: local_names[k] for k in PREDICT_ARGUMENTS if k in local_names}
        return CallArgs(arguments, [], fit_context.caller_names(frame.f_back))
    finally:
        del frame


def batch_outputs(logs: Any) -> Any:
    """A predict batch's outputs from its logs: `outputs` (Keras flattens the dict of a
    model with named outputs into the logs themselves)."""
    if not logs:
        return None
    if "outputs" in logs:
        return logs["outputs"]
    return dict(logs)


def _classes(outputs: Any) -> int:
    found = summaries.leaves(outputs)
    if not found:
        return 0
    first = found[0][1]
    return int(first.shape[1]) if first.ndim == 2 and first.shape[1] > 1 else 2


class PredictionCapture:
    """The Predictions of one `ProvenanceCallback` (its `on_predict_*` hooks delegate
    here). `last` is the latest recorded predict; `sample_rows` output rows are kept
    on each Predictions entity (0: none)."""

    def __init__(self, callback: Any, sample_rows: int = summaries.SAMPLE_ROWS) -> None:
        self._callback = callback
        self.sample_rows = max(0, int(sample_rows))
        self.pending: CallArgs | None = None  # set by autolog before predict
        self.last: Recorded | None = None
        self._ongoing: _Ongoing | None = None
        self._warn = WarnOnce()

    # -- the hooks --------------------------------------------------------------------
    def begin(self) -> None:
        """`on_predict_begin`: what the prediction uses (the run's model, the input)."""
        cb = self._callback
        args = self.pending or predict_from_frames(cb.model)
        self.pending = None
        self._ongoing = None
        if cb._in_fit:  # a predict inside training: the model is not the run's result yet
            return
        recorder = cb.recorder
        if recorder is None or not recorder.has_model:
            self._warn("provkb: predict without a recorded training run: nothing recorded")
            return
        prediction_id = records.new_prediction_id()
        dataset = None
        if args is not None and args.get("x") is not None:
            x, name = (
                args.get("x"),
                cb.dataset_names.get(PredictionRole.INPUT) or args.name_of(args.get("x")),
            )
            salt = f"{cb.run_id}/prediction/{prediction_id}"
            dataset = fact(
                self._warn, "prediction input", lambda: datasets.describe(x, name=name, salt=salt)
            )
        accumulator = summaries.OutputAccumulator(sample_rows=self.sample_rows)
        self._ongoing = _Ongoing(prediction_id, now(), dataset, accumulator)

    def batch_end(self, step: int, logs: Any) -> None:
        """`on_predict_batch_end`: summarise step `step`'s outputs (nothing is kept;
        Keras may call it off the training thread, in any order)."""
        ongoing = self._ongoing
        if ongoing is None:
            return
        outputs = batch_outputs(logs)
        if outputs is not None:
            if not ongoing.classes:
                ongoing.classes = _classes(outputs)
            ongoing.outputs.add(outputs, step)

    def end(self) -> None:
        """`on_predict_end`: the Prediction and its Predictions, to the writer."""
        ongoing, cb = self._ongoing, self._callback
        self._ongoing = None
        recorder = cb.recorder
        if ongoing is None or recorder is None:
            return
        summary = ongoing.outputs.summary()
        batch = GraphBatch()
        dataset = recorder.dataset(batch, ongoing.dataset) if ongoing.dataset else None
        activity = records.prediction(
            batch,
            cb.run_id,
            ongoing.prediction_id,
            recorder.model_node,
            dataset,
            summary,
            recorder.run.person,
            ongoing.started,
            now(),
        )
        fingerprint = ongoing.dataset.fingerprint if ongoing.dataset is not None else None
        self.last = Recorded(
            fingerprint,
            summary.samples if summary is not None else 0,
            ongoing.outputs.labels,
            ongoing.classes,
            records.predictions_node(activity) if summary is not None else None,
            activity,
        )
        cb._submit(batch)

    # -- confusion matrices -----------------------------------------------------------
    def for_evaluation(self, batch: GraphBatch, args: CallArgs | None, generated: str) -> None:
        """Add the ConfusionMatrix of the evaluation just added to `batch` when the last
        recorded predict was of the same inputs `x` (no second pass over the data)."""
        last, recorder = self.last, self._callback.recorder
        if last is None or last.labels is None or args is None or recorder is None:
            return
        x, y = args.get("x"), args.get("y")
        true = confusions.true_labels(y) if y is not None else None
        if true is None or len(true) != len(last.labels):
            return
        described = datasets.describe(x)
        if described is None or described.fingerprint != last.input_fingerprint:
            return
        matrix = confusions.confusion_matrix(true, last.labels, range(last.classes))
        evaluation = ids.evaluation(recorder.run_id, recorder.evaluations)
        records.confusion(batch, recorder.run_id, evaluation, matrix, last.predictions, generated)

    def explicit(self, x: Any, y: Any, batch_size: int | None = None) -> confusions.ConfusionMatrix:
        """`ProvenanceCallback.confusion_matrix`: predict `x` once (recorded), compare
        with the class labels `y`, record an Evaluation that used those predictions and
        generated the matrix; returns the matrix."""
        cb = self._callback
        recorder = cb.recorder
        if cb.model is None or recorder is None or not recorder.has_model:
            raise PredictionError(
                "confusion_matrix needs the model of a recorded run: fit it with this "
                "callback first"
            )
        true = confusions.true_labels(y)
        if true is None:
            raise PredictionError(
                "confusion_matrix needs class labels y: integers of shape (n,) or (n, 1), "
                "or one-hot rows (n, classes)"
            )
        started, before = now(), self.last
        self.pending = CallArgs({"x": x, "batch_size": batch_size}, [], {})
        outputs = cb.model.predict(x, batch_size=batch_size, verbose=0, callbacks=[cb])
        found = summaries.leaves(outputs)
        predicted = summaries.class_labels(found[0][1]) if found else None
        if predicted is None:
            raise PredictionError(
                "confusion_matrix needs a classifier: the model's outputs of shape "
                f"{found[0][1].shape if found else None} are no class scores"
            )
        if len(predicted) != len(true):
            raise PredictionError(
                f"y has {len(true)} labels but x gave {len(predicted)} predictions"
            )
        matrix = confusions.confusion_matrix(true, predicted, range(_classes(outputs)))
        recorded = self.last if self.last is not before else None
        fact(self._warn, "confusion matrix", lambda: self._record(x, y, matrix, started, recorded))
        return matrix

    def _record(
        self,
        x: Any,
        y: Any,
        matrix: confusions.ConfusionMatrix,
        started: str,
        recorded: Recorded | None,
    ) -> None:
        cb = self._callback
        recorder = cb.recorder
        assert recorder is not None
        k = recorder.evaluations + 1
        name = cb.dataset_names.get(Role.TEST)
        dataset = datasets.describe(x, y, name=name, salt=f"{cb.run_id}/test/{k}")
        ended = now()
        batch = recorder.evaluation(started, ended, {"accuracy": matrix.accuracy}, dataset)
        predictions = recorded.predictions if recorded is not None else None
        evaluation = ids.evaluation(recorder.run_id, recorder.evaluations)
        records.confusion(batch, recorder.run_id, evaluation, matrix, predictions, ended)
        cb._submit(batch)
