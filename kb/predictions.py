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

import uuid
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
from .confusion import ConfusionMatrix
from .prediction_outputs import OutputSummary, array_fingerprint
from .records import GraphBatch

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
