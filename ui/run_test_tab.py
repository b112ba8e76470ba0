"""The run page's evaluation and test section (issue 17): the run's confusion matrices
as heat maps with per-class precision and recall, a Test tab that runs a stored model
of the run on an input (a NumPy .npy file, an image, or a CSV row) and records the test
as a Prediction by the person (`KnowledgeBase.test_model`), and the run's predictions.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from provkb.ontology import Prop
from provkb.queries import predictions as reads
from provkb.ui import common
from provkb.ui.common import fmt

UPLOAD_TYPES = ["npy", "csv", "txt", "png", "jpg", "jpeg", "bmp", "gif"]
FILE, ROW = "a file (.npy, image, .csv)", "a CSV row"
RESULT = "test_result"  # session key: the last test's outcome, per run
TESTED_BY = "Tested by (person)"  # not the steering form's "Requested by (person)"


def heat_map(matrix: dict[str, Any]) -> go.Figure:
    """A confusion matrix as a heat map: true class down, predicted class across."""
    classes = [str(c) for c in matrix.get(Prop.CLASSES) or []]
    values = matrix.get(Prop.MATRIX) or []
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=classes,
            y=classes,
            colorscale="Blues",
            texttemplate="%{z}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
            colorbar={"title": "samples"},
        )
    )
    fig.update_layout(
        xaxis={"title": "predicted class", "type": "category", "side": "top"},
        yaxis={"title": "true class", "type": "category", "autorange": "reversed"},
        height=120 + 32 * max(len(classes), 2),
        margin={"l": 60, "r": 20, "t": 60, "b": 20},
    )
    return fig


def per_class(matrix: dict[str, Any]) -> Any:
    """Precision, recall and support per class, as a table."""
    rows = [
        {"class": c, "precision": p, "recall": r, "support": s}
        for c, p, r, s in zip(
            matrix.get(Prop.CLASSES) or [],
            matrix.get(Prop.PRECISION) or [],
            matrix.get(Prop.RECALL) or [],
            matrix.get(Prop.SUPPORT) or [],
            strict=False,
        )
    ]
    return common.cell_table(rows, ["class", "precision", "recall", "support"])


def confusion_section(run_id: str) -> None:
    """The run's confusion matrices (the newest first; pick another)."""
    matrices = reads.confusion_matrices(common.kb(), run_id)
    if not matrices:
        st.caption(
            "No confusion matrix: `model.evaluate(x, y)` after a recorded "
            "`model.predict(x)` makes one, or `capture.confusion_matrix(x, y)`."
        )
        return
    labels = {
        i: f"{m.get('evaluation') or m.get(Prop.ID)} · accuracy {fmt(m.get(Prop.ACCURACY))}"
        for i, m in enumerate(matrices)
    }
    chosen = 0
    if len(matrices) > 1:
        chosen = st.selectbox(
            "Evaluation", list(labels), format_func=labels.get, key=f"cm_pick_{run_id}"
        )
    matrix = matrices[chosen]
    st.caption(
        f"{matrix.get(Prop.SAMPLES)} samples · accuracy {fmt(matrix.get(Prop.ACCURACY))} · "
        f"{labels[chosen].split(' · ')[0]}"
    )
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(heat_map(matrix), width="stretch", key=f"cm_heat_{run_id}")
    with c2:
        common.dataframe(
            per_class(matrix), hide_index=True, width="stretch", key=f"cm_table_{run_id}"
        )


def _model_label(model: dict[str, Any]) -> str:
    size = model.get(Prop.SIZE_BYTES)
    kb = f"{size / 1024:.0f} KB" if isinstance(size, int | float) else "?"
    return f"{model.get(Prop.PATH)} · {kb} · saved {fmt(model.get(Prop.GENERATED))}"


def model_test_tab(run_id: str) -> None:
    """Pick a stored model of the run, give an input, see (and record) the prediction."""
    kb = common.kb()
    models = kb.stored_models(run_id)
    if not models:
        st.caption(
            "This run stored no model: train with `ProvenanceCallback(save_model=True)` "
            "(or `provkb.autolog(save_model=True)`) to test it here."
        )
        return
    by_id = {m[Prop.ID]: m for m in models}
    with st.form(f"test_form_{run_id}"):
        model_id = st.selectbox(
            "Stored model",
            list(by_id),
            format_func=lambda i: _model_label(by_id[i]),
            key=f"test_model_{run_id}",
        )
        kind = st.radio("Input", (FILE, ROW), horizontal=True, key=f"test_kind_{run_id}")
        upload = st.file_uploader("Input file", type=UPLOAD_TYPES, key=f"test_file_{run_id}")
        row = st.text_input(
            "CSV row",
            key=f"test_row_{run_id}",
            placeholder="numbers separated by commas, one sample",
        )
        person = st.text_input(
            TESTED_BY,
            value=common.user_name(),
            key=f"test_person_{run_id}",
            help="The person this test is recorded as: the Prediction's agent in lineage.",
        )
        sent = st.form_submit_button("Predict", type="primary")
    if sent:
        if kind == FILE and upload is None:
            st.error("Choose an input file first (.npy, an image or .csv).")
            return
        data, name = (upload.getvalue(), upload.name) if kind == FILE else (row, "row.csv")
        try:
            result = kb.test_model(model_id, data, person=person.strip() or None, name=name)
        except Exception as exc:  # PredictionError and the like: a message, never a trace
            common.show_error(exc)
            return
        st.session_state[RESULT] = {
            "run": run_id,
            "prediction": result.prediction,
            "classes": result.classes,
            "outputs": result.outputs[:5].tolist(),
            "person": result.person,
            "shape": list(result.inputs.shape),
        }
    shown = st.session_state.get(RESULT)
    if shown and shown.get("run") == run_id:
        show_result(shown)


def show_result(result: dict[str, Any]) -> None:
    classes = result.get("classes")
    if classes:
        text = ", ".join(str(c) for c in classes[:10])
        st.success(f"Predicted class: **{text}**")
    st.caption(
        f"input shape {tuple(result['shape'])} · recorded as `{result['prediction']}` "
        f"by {result['person']}"
    )
    outputs = result.get("outputs") or []
    if outputs and isinstance(outputs[0], list) and len(outputs[0]) <= 100:
        rows = [{"output": i, "value": v} for i, v in enumerate(outputs[0])]
        st.bar_chart(common.cell_table(rows, ["output", "value"]), x="output", y="value")
    else:
        st.json(outputs)


def predictions_tab(run_id: str) -> None:
    rows = reads.predictions(common.kb(), run_id)
    if not rows:
        st.caption("No prediction of this run's model is recorded yet.")
        return
    table = [
        {
            "started": r.get(Prop.STARTED),
            "by": "app test (stored model)" if r.get("storedModel") else "predict",
            "samples": r["output"].get(Prop.SAMPLES),
            "shape": r["output"].get(Prop.SHAPE),
            "classes of the first rows": r["output"].get(Prop.PREDICTED_CLASSES),
            "mean": r["output"].get(Prop.MEAN),
            "fingerprint": (r["output"].get(Prop.FINGERPRINT) or "")[:12],
            "id": r.get(Prop.ID),
        }
        for r in rows
    ]
    common.dataframe(
        common.cell_table(table, list(table[0])),
        hide_index=True,
        width="stretch",
        key=f"pred_table_{run_id}",
    )


def render(run_id: str) -> None:
    """The section: tabs Confusion matrix, Test, Predictions."""
    st.markdown("**Evaluation, test and predictions**")
    matrix, test, made = st.tabs(["Confusion matrix", "Test", "Predictions"])
    with matrix:
        common.guarded(lambda: confusion_section(run_id))()
    with test:
        common.guarded(lambda: model_test_tab(run_id))()
    with made:
        common.guarded(lambda: predictions_tab(run_id))()
