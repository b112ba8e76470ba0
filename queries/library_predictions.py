"""`predictions` and `confusion-matrix`: a run's recorded predictions and the per-class
figures of its confusion matrices (issue 17; the records of `kb/predictions.py`)."""

from __future__ import annotations

from ..ontology import (
    ACTIVITY,
    CONFUSION_MATRIX,
    ENTITY,
    EVALUATION,
    PREDICTION,
    PREDICTIONS,
    STORED_MODEL,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_GENERATED_BY,
    PredictionRole,
    Prop,
)
from .library import _RUN_PARAM, _find_run, _text
from .spec import ChartHint, NamedQuery

_E, _A, _RID = ENTITY.label, ACTIVITY.label, Prop.RUN_ID
_GEN, _USED, _ASSOC = WAS_GENERATED_BY.rel_type, USED.rel_type, WAS_ASSOCIATED_WITH.rel_type

PREDICTIONS_QUERY = NamedQuery(
    name="predictions",
    summary="A run's recorded predictions: who, with which model, on what, what came out.",
    description=(
        "One row per Prediction of the run's model, newest first: when, the person, "
        "whether it used the run's Model (a predict with the callback or autolog) or its "
        "StoredModel file (a test from the app), the input dataset's fingerprint and "
        "samples, the output's shape, mean and fingerprint, and the predicted classes "
        "of its first rows."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        MATCH (p:{_A} {{{_RID}: r.{_RID}}}) WHERE p:{PREDICTION.label}
        OPTIONAL MATCH (p)-[:{_ASSOC}]->(who)
        OPTIONAL MATCH (p)-[um:{_USED}]->(m) WHERE um.{Prop.ROLE} = $modelRole
        OPTIONAL MATCH (p)-[ui:{_USED}]->(d) WHERE ui.{Prop.ROLE} = $inputRole
        OPTIONAL MATCH (o:{_E})-[:{_GEN}]->(p) WHERE o:{PREDICTIONS.label}
        RETURN p.{Prop.ID} AS prediction, p.{Prop.STARTED} AS startedAtTime,
               who.{Prop.NAME} AS person,
               CASE WHEN m:{STORED_MODEL.label} THEN 'stored model' ELSE 'model' END AS used,
               d.{Prop.FINGERPRINT} AS input, d.{Prop.SAMPLES} AS samples,
               o.{Prop.SHAPE} AS shape, o.{Prop.MEAN} AS mean,
               o.{Prop.FINGERPRINT} AS fingerprint, o.{Prop.PREDICTED_CLASSES} AS classes
        ORDER BY coalesce(startedAtTime, '') DESC, prediction
        """
    ),
    params=(_RUN_PARAM,),
    constants={"modelRole": PredictionRole.MODEL, "inputRole": PredictionRole.INPUT},
)

CONFUSION_MATRIX_QUERY = NamedQuery(
    name="confusion-matrix",
    summary="Per-class precision, recall and support of a run's confusion matrices.",
    description=(
        "One row per class of each ConfusionMatrix of the run (the newest evaluation "
        "first): the evaluation that generated it, the matrix's accuracy, the class, its "
        "precision, recall and support (true samples). The matrix itself is the "
        "ConfusionMatrix's `matrix` property (JSON rows: true class, columns: predicted)."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        MATCH (c:{_E} {{{_RID}: r.{_RID}}}) WHERE c:{CONFUSION_MATRIX.label}
        MATCH (c)-[:{_GEN}]->(e:{_A}) WHERE e:{EVALUATION.label}
        UNWIND range(0, size(c.{Prop.CLASSES}) - 1) AS i
        RETURN e.{Prop.ID} AS evaluation, c.{Prop.ACCURACY} AS accuracy,
               c.{Prop.CLASSES}[i] AS class, c.{Prop.PRECISION}[i] AS precision,
               c.{Prop.RECALL}[i] AS recall, c.{Prop.SUPPORT}[i] AS support
        ORDER BY coalesce(c.{Prop.GENERATED}, '') DESC, evaluation, class
        """
    ),
    params=(_RUN_PARAM,),
    chart=ChartHint("bar", "class", ("precision", "recall")),
)
