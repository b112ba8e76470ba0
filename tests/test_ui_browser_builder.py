"""End to end in Debian's Chromium (issues 15 and 16): the Query builder page of
`provkb ui` asks Keras-Prov Q3 (average loss and epoch time per optimizer) of the demo's
captured runs without a line of Cypher. The table it shows and the CSV it downloads hold
what `provkb.queries.build(...)` answers from the store; the generated Cypher, opened in
the Queries page's editor, runs there and gives the same rows. Screenshots:
tests/artifacts/ui/builder.png and builder-in-editor.png.
"""

from __future__ import annotations

import csv
import io
import json
import math

import test_ui_browser as browser
from test_ui_browser import ui_store  # noqa: F401 - the demo's runs and the known graph

from provkb.kb.store import Store
from provkb.queries import build
from provkb.queries.builder import SUBJECTS

pytestmark = browser.pytestmark
ui_url = browser.ui_url  # `provkb ui` on the store above, and the browser tab
page = browser.page
expect = browser.sync_api.expect  # Playwright's waiting assertions

EXPERIMENT = "digits-optimizers"  # the demo's runs
BUSY_MS = 120_000  # a busy machine: a long rerun is not a failure


def q3():
    """What the browser builds, from Python."""
    return build(
        "epochs",
        group_by=["optimizer"],
        aggregates=[("avg", "metric.loss"), ("avg", "elapsedSeconds")],
        experiment=EXPERIMENT,
    )


def choose(tab, label: str, *options: str) -> None:
    """Pick each option of the selectbox or multiselect labelled `label` from its list."""
    box = tab.get_by_role("combobox", name=label, exact=True)
    for option in options:
        box.click()
        box.fill(option)  # the list shows the matching options only
        tab.get_by_role("option", name=option, exact=True).first.click()
        browser.settle(tab)
        tab.keyboard.press("Escape")  # a multiselect's list stays open
    browser.settle(tab)


def close(shown: str, want: float) -> bool:
    """A number as a cell or the CSV shows it equals `want` to the digits it shows."""
    text = shown.replace(",", "")
    decimals = len(text.partition(".")[2]) if "." in text and "e" not in text.lower() else 15
    return math.isclose(float(text), want, rel_tol=1e-12, abs_tol=0.51 * 10**-decimals)


def assert_rows(got: list[dict[str, str]], want: list[dict], columns: tuple[str, ...]) -> None:
    assert [list(r) for r in got] == [list(columns)] * len(got), got
    assert [r["optimizer"] for r in got] == [str(r["optimizer"]) for r in want], got
    for shown, row in zip(got, want, strict=True):
        for column in columns[1:]:
            assert close(shown[column], row[column]), (column, shown, row)


def test_builder_asks_q3_and_opens_its_cypher_in_the_editor(
    page,
    ui_url: str,
    ui_store: browser.UiStore,  # noqa: F811 - the fixture
) -> None:
    shots = browser.ARTIFACTS if ui_store.engine == "embedded" else browser.ARTIFACTS / "neo4j"
    page.set_default_timeout(BUSY_MS)
    query = q3()
    with Store(ui_store.settings) as store:
        expected = query.run(store)
    optimizers = [r["optimizer"] for r in expected.rows]  # Keras names RMSprop "rm_sprop"
    assert len(optimizers) == len(ui_store.runs) == 3 and optimizers == sorted(set(optimizers))
    assert all(r["avg_loss"] > 0 and r["avg_elapsedSeconds"] > 0 for r in expected.rows)
    columns = query.columns
    assert columns == ("optimizer", "avg_loss", "avg_elapsedSeconds")

    browser.open_page(page, ui_url, "builder", "Query builder")
    choose(page, "Ask about", SUBJECTS["epochs"].title)
    choose(page, "Experiment", EXPERIMENT)
    choose(page, "Group by", "optimizer")
    choose(page, "Aggregates (per group)", "avg(metric.loss)", "avg(elapsedSeconds)")
    # what the page will run is the Cypher it shows
    cypher = page.locator("[data-testid='stCode']").first
    expect(cypher).to_contain_text("avg(elapsedSeconds) AS avg_elapsedSeconds")
    page.get_by_role("button", name="Run", exact=True).click()
    browser.settle(page)
    browser.assert_no_error(page)
    browser.visible(page, f"{len(expected.rows)} row(s)")
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    browser.visible(page, "Generated Cypher")
    browser.save_screenshot(page, shots / "builder.png")
    assert_rows(browser.table_rows(page, columns[-1]), expected.rows, columns)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = download.value.path().read_text()
    answer = list(csv.DictReader(io.StringIO(text)))
    assert_rows(answer, expected.rows, columns)

    page.get_by_role("button", name="Open in the Cypher editor").click()
    page.get_by_role("heading", name="Queries").first.wait_for()
    browser.settle(page)
    browser.assert_no_error(page)
    editor = page.get_by_role("textbox", name="Cypher")
    assert editor.input_value() == query.cypher
    params = page.get_by_role("textbox", name="Parameters (JSON object)")
    assert json.loads(params.input_value()) == query.params
    page.get_by_role("button", name="Run", exact=True).click()
    browser.settle(page)
    browser.assert_no_error(page)
    browser.visible(page, f"{len(expected.rows)} row(s)")
    browser.save_screenshot(page, shots / "builder-in-editor.png")
    assert_rows(browser.table_rows(page, columns[-1]), expected.rows, columns)
