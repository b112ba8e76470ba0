"""The run page's confusion matrix and Test tab in a real browser (issue 17): `provkb ui`
against a store holding one digits classifier captured with `save_model=True`, a
recorded predict and an evaluate of the same inputs (its confusion matrix). The test
uploads a NumPy file of one digit in the Test tab, sees the predicted class and finds
the test recorded as a Prediction by the person; screenshots in
tests/artifacts/ui/predict-*.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from test_ui_browser import (  # noqa: F401 - fixtures used by name
    ARTIFACTS,
    UiStore,
    _environment,
    open_page,
    page,
    save_screenshot,
    settle,
    ui_url,
    visible,
)

from provkb.capture.callback import ProvenanceCallback
from provkb.config import resolve_settings
from provkb.kb.store import Store
from provkb.ontology import PERSON, PREDICTION, STORED_MODEL, USED, WAS_ASSOCIATED_WITH

pytestmark = [pytest.mark.slow]
DIGIT = 7  # the index of the test sample uploaded


@pytest.fixture(scope="module")
def ui_store(
    engine: str, store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiStore]:
    """One captured digits classifier with a stored model, a predict and an evaluate, in
    the session's store of the engine (its embedded server already runs)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")}
    folder = tmp_path_factory.mktemp("provkb-ui-predict")
    if engine == "embedded":
        home = Path(store_env["PROVKB_HOME"])
        env, args, settings = base, ["--store", str(home)], resolve_settings(store=home)
    else:
        env = {**base, **store_env, "PROVKB_HOME": str(folder)}
        args = []
        with _environment({k: v for k, v in env.items() if k.startswith("PROVKB_")}):
            settings = resolve_settings()
    data = load_digits()
    x, y = (data.data / 16.0).astype("float32"), data.target
    with Store(settings) as store:
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        cb = ProvenanceCallback(
            experiment="ui-predict", run_name="digits-test-tab", store=store, save_model=True
        )
        model.fit(x[:1400], y[:1400], epochs=4, batch_size=64, callbacks=[cb], verbose=0)
        expected = model.predict(x[1400:], callbacks=[cb], verbose=0)
        model.evaluate(x[1400:], y[1400:], callbacks=[cb], verbose=0)
        assert cb.writer.flush(60)
    sample = folder / "digit.npy"
    np.save(sample, x[1400 + DIGIT])
    runs = {
        "run": cb.run_id,
        "sample": str(sample),
        "class": int(expected[DIGIT].argmax()),
        "outputs": int(expected.shape[1]),  # the model's outputs: one bar each
    }
    yield UiStore(env, args, settings, runs, engine)


def test_confusion_matrix_and_test_tab_in_a_real_browser(
    page,  # noqa: F811 - the fixture
    ui_url: str,  # noqa: F811
    ui_store: UiStore,
) -> None:
    run_id = ui_store.runs["run"]
    shot = ARTIFACTS if ui_store.engine == "embedded" else ARTIFACTS / ui_store.engine
    open_page(page, ui_url, f"monitor?run={run_id}", "Run monitor")
    visible(page, "Evaluation, test and predictions")
    visible(page, "397 samples · accuracy")  # the heat map's caption
    heat_map = page.get_by_role("tabpanel").first.locator("[data-testid='stPlotlyChart']")
    heat_map.first.wait_for(state="attached", timeout=120_000)  # drawn in the first tab
    page.get_by_role("tab", name="Test").click()
    # the Test tab's form: the steering form further down has its own person field
    # ("Requested by (person)"), so every field is looked up in this form by its label
    form = page.locator("[data-testid='stForm']").filter(
        has=page.get_by_role("button", name="Predict", exact=True)
    )
    form.wait_for(timeout=120_000)
    form.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        ui_store.runs["sample"]
    )
    visible(page, "digit.npy")
    person = form.get_by_role("textbox", name="Tested by (person)", exact=True)
    person.fill("playwright")
    form.get_by_role("button", name="Predict", exact=True).click()
    expected = ui_store.runs["class"]
    page.get_by_text(f"Predicted class: {expected}").first.wait_for(timeout=180_000)
    visible(page, "by playwright")  # the result's caption names the person recorded
    # the outputs' bar chart: Streamlit shows an empty box until the Vega-Lite library
    # has loaded and drawn it (SVG, one bar per output of the model); wait for the bars
    bars = page.locator("[data-testid='stVegaLiteChart'] [aria-roledescription='bar']")
    bars.nth(ui_store.runs["outputs"] - 1).wait_for(state="attached", timeout=120_000)
    assert bars.count() == ui_store.runs["outputs"]
    settle(page)
    save_screenshot(page, shot / "predict-test-tab.png")
    with Store(ui_store.settings) as store:
        rows = store.read(
            f"MATCH (p:{PREDICTION.label} {{runId: $run}})-[:{WAS_ASSOCIATED_WITH.rel_type}]->"
            f"(:{PERSON.label} {{name: 'playwright'}}) "
            f"MATCH (p)-[:{USED.rel_type} {{role: 'model'}}]->(f:{STORED_MODEL.label}) "
            f"RETURN f.runId AS run",
            run=run_id,
        ).rows
    assert rows == [{"run": run_id}]
    page.get_by_role("tab", name="Confusion matrix").click()
    settle(page)
    save_screenshot(page, shot / "predict-confusion-matrix.png")
