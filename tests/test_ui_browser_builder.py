"""End to end in Debian's Chromium: the Query builder page of `provkb ui` asks Keras-Prov
Q3 (average loss and epoch time per optimizer) of the demo's captured runs without a
line of Cypher, downloads the answer, and opens the generated Cypher in the Queries
page's editor, where it runs again. Screenshots: tests/artifacts/ui/builder*.png.
"""

from __future__ import annotations

import csv
import io

from test_ui_browser import (
    ARTIFACTS,
    WIDTH,
    UiStore,
    assert_no_error,
    in_table,
    page,
    pytestmark,
    save_screenshot,
    ui_store,
    ui_url,
    visible,
)

from provkb.kb.store import Store
from provkb.queries import build
from provkb.queries.builder import SUBJECTS

__all__ = ["page", "pytestmark", "ui_store", "ui_url"]  # fixtures and marks, imported

EXPERIMENT = "digits-optimizers"  # the demo's runs
BUSY_MS = 120_000  # a busy machine: a long rerun is not a failure


def settle(tab) -> None:
    """Wait until the app has finished running its script (test_ui_browser's, longer)."""
    tab.wait_for_selector("[data-testid='stApp']")
    tab.wait_for_timeout(600)
    tab.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=BUSY_MS
    )
    tab.wait_for_timeout(800)


def open_page(tab, url: str, path: str, heading: str) -> None:
    tab.set_viewport_size({"width": WIDTH, "height": 1000})
    tab.goto(f"{url}/{path}")
    tab.get_by_role("heading", name=heading).first.wait_for()
    settle(tab)
    assert_no_error(tab)


def choose(tab, label: str, *options: str) -> None:
    """Pick options of a selectbox or multiselect by typing each (the only match) and Enter."""
    box = tab.get_by_role("combobox", name=label)
    for option in options:
        box.click()
        box.fill(option)
        tab.get_by_role("option", name=option, exact=True).first.wait_for()
        tab.keyboard.press("Enter")
        settle(tab)


def q3():
    """What the browser builds, from Python."""
    return build(
        "epochs",
        group_by=["optimizer"],
        aggregates=[("avg", "metric.loss"), ("avg", "elapsedSeconds")],
        experiment=EXPERIMENT,
    )


def test_builder_asks_q3_and_opens_its_cypher_in_the_editor(
    page, ui_url: str, ui_store: UiStore
) -> None:
    shots = ARTIFACTS if ui_store.engine == "embedded" else ARTIFACTS / ui_store.engine
    page.set_default_timeout(BUSY_MS)
    with Store(ui_store.settings) as store:
        expected = q3().run(store)
    assert len(expected.rows) == 3  # sgd, adam, rmsprop

    open_page(page, ui_url, "builder", "Query builder")
    choose(page, "Ask about", SUBJECTS["epochs"].title)
    choose(page, "Experiment", EXPERIMENT)
    choose(page, "Group by", "optimizer")
    choose(page, "Aggregates (per group)", "avg(metric.loss)", "avg(elapsedSeconds)")
    page.get_by_role("button", name="Run", exact=True).click()
    settle(page)
    visible(page, "3 row(s)")
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    visible(page, "Generated Cypher")
    save_screenshot(page, shots / "builder.png")
    in_table(page, str(expected.rows[0]["optimizer"]))
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    answer = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [r["optimizer"] for r in answer] == [r["optimizer"] for r in expected.rows]
    for got, want in zip(answer, expected.rows, strict=True):
        for column in ("avg_loss", "avg_elapsedSeconds"):
            assert abs(float(got[column]) - want[column]) <= 1e-9 * abs(want[column])

    page.get_by_role("button", name="Open in the Cypher editor").click()
    page.get_by_role("heading", name="Queries").first.wait_for()
    settle(page)
    editor = page.get_by_role("textbox", name="Cypher")
    assert editor.input_value() == q3().cypher
    page.get_by_role("button", name="Run", exact=True).click()
    settle(page)
    visible(page, "3 row(s)")
    save_screenshot(page, shots / "builder-in-editor.png")
    in_table(page, str(expected.rows[0]["optimizer"]))
