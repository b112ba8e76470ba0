"""Reads of predictions, confusion matrices and stored models (issue 17): the app's run
page (heat map, Test tab) and `KnowledgeBase.test_model` use them.

Lookups go through the core label and `runId` (the indexed pair), then test the domain
label, as `queries.app` does. Every function takes a `Reader` (a `KnowledgeBase` or a
`Store`) and returns plain Python.
"""

from __future__ import annotations

import json
from typing import Any

from ..ontology import (
    ACTIVITY,
    CONFUSION_MATRIX,
    ENTITY,
    EVALUATION,
    PREDICTION,
    PREDICTIONS,
    STORED_MODEL,
    USED,
    WAS_GENERATED_BY,
    PredictionRole,
    Prop,
)
from .app import Reader

_E, _A, _RID, _ID = ENTITY.label, ACTIVITY.label, Prop.RUN_ID, Prop.ID
_GEN, _USED = WAS_GENERATED_BY.rel_type, USED.rel_type

STORED_MODELS = f"""
MATCH (m:{_E} {{{_RID}: $run}}) WHERE m:{STORED_MODEL.label}
RETURN properties(m) AS props ORDER BY coalesce(m.{Prop.GENERATED}, '') DESC, m.{_ID}
"""
STORED_MODEL_BY_ID = f"""
MATCH (m:{_E} {{{_ID}: $id}}) WHERE m:{STORED_MODEL.label}
RETURN properties(m) AS props
"""
CONFUSION_MATRICES = f"""
MATCH (c:{_E} {{{_RID}: $run}}) WHERE c:{CONFUSION_MATRIX.label}
OPTIONAL MATCH (c)-[:{_GEN}]->(e:{_A}) WHERE e:{EVALUATION.label}
RETURN properties(c) AS props, e.{_ID} AS evaluation
ORDER BY coalesce(c.{Prop.GENERATED}, '') DESC, c.{_ID}
"""
PREDICTIONS_OF_RUN = f"""
MATCH (p:{_A} {{{_RID}: $run}}) WHERE p:{PREDICTION.label}
OPTIONAL MATCH (o:{_E})-[:{_GEN}]->(p) WHERE o:{PREDICTIONS.label}
OPTIONAL MATCH (p)-[u:{_USED}]->(m:{_E}) WHERE u.{Prop.ROLE} = $modelRole
RETURN properties(p) AS prediction, properties(o) AS output, m.{_ID} AS model,
       labels(m) AS modelLabels
ORDER BY coalesce(p.{Prop.STARTED}, '') DESC, p.{_ID}
LIMIT $limit
"""


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def stored_models(kb: Reader, run_id: str) -> list[dict[str, Any]]:
    """The saved model files of a run (newest first)."""
    return [r["props"] for r in kb.read(STORED_MODELS, run=run_id).rows]


def stored_model(kb: Reader, node_id: str) -> dict[str, Any] | None:
    """One StoredModel by its node id, or None."""
    rows = kb.read(STORED_MODEL_BY_ID, id=node_id).rows
    return rows[0]["props"] if rows else None


def confusion_matrices(kb: Reader, run_id: str) -> list[dict[str, Any]]:
    """A run's confusion matrices (newest first): `matrix` as a list of rows, `classes`,
    `precision`, `recall`, `support`, `accuracy`, `samples` and the `evaluation` id."""
    out = []
    for row in kb.read(CONFUSION_MATRICES, run=run_id).rows:
        props = dict(row["props"])
        props[Prop.MATRIX] = _json(props.get(Prop.MATRIX))
        props["evaluation"] = row["evaluation"]
        out.append(props)
    return out


def predictions(kb: Reader, run_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """A run's Predictions (newest first): the activity's and its output's properties
    (`sample` decoded), the model entity it used and whether that was a stored file."""
    rows = kb.read(
        PREDICTIONS_OF_RUN, run=run_id, limit=int(limit), modelRole=PredictionRole.MODEL
    ).rows
    out = []
    for row in rows:
        output = dict(row["output"] or {})
        if Prop.SAMPLE in output:
            output[Prop.SAMPLE] = _json(output[Prop.SAMPLE])
        out.append(
            {
                **row["prediction"],
                "output": output,
                "model": row["model"],
                "storedModel": STORED_MODEL.label in (row["modelLabels"] or []),
            }
        )
    return out
