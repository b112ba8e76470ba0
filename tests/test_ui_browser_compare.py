"""Issue 16's "done when" in a real browser: the Compare page starts a second search
session from a selection on its parallel-coordinates chart. `provkb ui` runs against a
store holding one finished study of tiny real Keras trials on a slice of digits (six
learning rates, SGD), on each engine, driven in Debian's Chromium.

The person picks the study's runs, switches on "Next session from the top k" (the
chart keeps the top k runs in colour, the others grey), asks for the top 3 narrowed on
learning_rate with a reason, previews the ranges (nothing written) and starts the
session; the store then holds session 2 with its parent, the reason and the person.
Screenshot: tests/artifacts/ui/compare-next-session.png (neo4j: tests/artifacts/ui/neo4j/).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import test_ui_browser as browser

from provkb.capture.study import Study
from provkb.errors import ProvKBError
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.store import Store
from provkb.knowledge_base import KnowledgeBase
from provkb.queries import registry
from provkb.ui.common import fmt

pytestmark = browser.pytestmark
ui_url = browser.ui_url  # `provkb ui` on the store below, and the browser tab
page = browser.page
expect = browser.sync_api.expect  # Playwright's waiting assertions

PERSON = "playwright-compare"  # PROVKB_PERSON of the app: who starts the session
LEARNING_RATES = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
SPACE = {"learning_rate": [0.05, 0.3, 0.05], "batch_size": [32]}  # one trial per rate
EPOCHS = 3
TOP = 3
REASON = "the top 3 on the chart"
TOGGLE = "Next session from the top k"
GREY = "#d9d9d9"  # the runs outside a selection (ui/parcoords.py FAINT)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data[:240] / 16.0).astype("float32"), digits.target[:240]


def finished_study(store: Store) -> Study:
    """A study of six tiny Keras trials (one per learning rate), run to the end."""
    keras = pytest.importorskip("keras")
    x, y = _digits()

    def fit(params, callbacks):
        keras.utils.set_random_seed(5)
        model = keras.Sequential([
            keras.Input((64,)), keras.layers.Dense(12, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])  # fmt: skip
        model.compile(
            keras.optimizers.SGD(params["learning_rate"]),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model.fit(x, y, validation_split=0.25, epochs=EPOCHS,
                         batch_size=params["batch_size"], callbacks=callbacks,
                         verbose=0)  # fmt: skip

    study = Study(f"digits-cmp-{uuid.uuid4().hex[:6]}", SPACE, gain="val_accuracy",
                  store=store, person="ada")  # fmt: skip
    summary = study.run(fit)
    assert (summary.iterations, summary.failed, summary.pending) == (len(LEARNING_RATES), 0, 0)
    return study


@pytest.fixture(scope="module")
def ui_store(
    engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[browser.UiStore]:
    """One finished study only: a store folder of its own (embedded) or the session's
    Neo4j, emptied first. `runs` holds the study's name."""
    home = tmp_path_factory.mktemp("provkb-ui-compare")
    env, args, settings = browser.store_target(engine, request, home, PROVKB_PERSON=PERSON)
    try:
        with Store(settings) as store:
            store.clear()
            study = finished_study(store)
        yield browser.UiStore(env, args, settings, {"study": study.name}, engine)
    finally:
        EmbeddedServer(home).stop()


def choose(tab, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` (its combobox input shows it)."""
    box = tab.get_by_role("combobox", name=label, exact=True)
    box.click()
    tab.get_by_role("option", name=option, exact=True).click()
    browser.settle(tab)
    expect(box).to_have_value(option)


def fill(tab, label: str, text: str) -> None:
    """Type `text` into the text or number input labelled `label` and submit it."""
    box = tab.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    browser.settle(tab)
    expect(box).to_have_value(text)


def chart_lines(tab) -> dict:
    """The parallel-coordinates trace in the page: what the app sent (`color`, one value
    per line; `colorscale`, `cmin`; `dims`, each axis' values) and what Plotly draws
    with (`drawn`: the colour scale and range Plotly kept after validating them)."""
    return tab.locator(".st-key-cmp_parcoords .js-plotly-plot").evaluate(
        """(plot) => {
            const t = plot.data[0], f = plot._fullData[0];
            return {color: Array.from(t.line.color), cmin: t.line.cmin,
                    colorscale: t.line.colorscale,
                    dims: Object.fromEntries(t.dimensions.map(
                        d => [d.label, Array.from(d.values)])),
                    drawn: {colorscale: f.line.colorscale, cmin: f.line.cmin,
                            cmax: f.line.cmax}};
        }"""
    )


def drawn_colours(lines: dict) -> list[str]:
    """Each line's colour as Plotly draws it: the colour of the last stop of the scale
    it kept at or below the line's position (enough to tell grey from coloured)."""
    drawn = lines["drawn"]
    low, span = drawn["cmin"], drawn["cmax"] - drawn["cmin"]
    return [
        [c for pos, c in drawn["colorscale"] if pos <= (v - low) / span + 1e-9][-1]
        for v in lines["color"]
    ]


def test_a_second_session_starts_from_the_charts_top_k(
    page, ui_url: str, ui_store: browser.UiStore
) -> None:
    folder = browser.ARTIFACTS if ui_store.engine == "embedded" else browser.ARTIFACTS / "neo4j"
    study = ui_store.runs["study"]
    new = f"{study}-narrowed"
    with Store(ui_store.settings) as store:  # what the page should offer, read directly
        plan = KnowledgeBase(store).preview_next_study(
            study, new, top=TOP, narrow=["learning_rate"], reason=REASON
        )
    assert len(plan.kept) == TOP and plan.narrowed == ["learning_rate"]
    assert plan.space["learning_rate"] != SPACE["learning_rate"]  # the top 3 narrow it

    browser.open_page(page, ui_url, "compare", "Compare runs")
    choose(page, "Runs", f"study: {study}")
    page.locator(".st-key-cmp_parcoords .js-plotly-plot").wait_for()
    before = chart_lines(page)  # one line per trial, coloured by its gain
    assert sorted(before["dims"]["learning_rate"]) == pytest.approx(LEARNING_RATES)
    assert GREY not in drawn_colours(before)  # no selection: no grey line

    switch = page.get_by_role("switch", name=TOGGLE)  # a Streamlit toggle
    switch.check(force=True)  # its input is visually hidden behind the drawn switch
    browser.settle(page)
    expect(switch).to_be_checked()
    fill(page, "k", str(TOP))
    narrow = page.locator("[data-testid='stMultiSelect']").filter(
        has=page.get_by_text("Narrow", exact=True)
    )
    expect(narrow.get_by_role("button", name="Remove batch_size")).to_be_visible()  # default
    narrow.get_by_role("button", name="Remove batch_size").click()  # narrow learning_rate only
    browser.settle(page)
    expect(narrow.get_by_role("button", name="Remove batch_size")).to_have_count(0)
    expect(narrow.get_by_role("button", name="Remove learning_rate")).to_be_visible()
    fill(page, "New study", new)
    fill(page, "Reason", REASON)
    browser.visible(page, f"The chart's selection: the top {TOP} run(s) of {study}")

    # The chart: the top 3 keep their colours (the value scale); the others are grey,
    # below it. Each line is one run; its learning_rate tells which.
    lines = chart_lines(page)
    assert lines["colorscale"][0][1] == lines["colorscale"][1][1] == GREY
    assert lines["colorscale"][2][1] != GREY
    lit = [i for i, c in enumerate(lines["color"]) if c > lines["cmin"]]
    grey = [i for i, c in enumerate(lines["color"]) if c == lines["cmin"]]
    assert len(lit) == TOP and len(grey) == len(LEARNING_RATES) - TOP
    kept_lrs = sorted(k.params["learning_rate"] for k in plan.kept)
    assert sorted(lines["dims"]["learning_rate"][i] for i in lit) == pytest.approx(kept_lrs)
    assert sorted(lines["color"][i] for i in lit) == pytest.approx(
        sorted(k.gain for k in plan.kept)
    )  # coloured by their own gain
    browser.visible(page, f"the {TOP} selected run(s) in colour, the others grey")
    browser.visible(page, "other runs (not selected)")  # the legend

    # Preview: the ranges before -> after, the kept trials; nothing written.
    page.get_by_role("button", name="Preview").click()
    browser.settle(page)
    browser.visible(page, f"{new}, the next session of {study}")
    browser.assert_no_error(page)
    ranges = {r["hyperparameter"]: r for r in browser.table_rows(page, "after")}
    assert set(ranges) == set(SPACE) == set(plan.space)
    assert ranges["learning_rate"] == {
        "hyperparameter": "learning_rate",
        "before": fmt(SPACE["learning_rate"]),
        "after": fmt(plan.space["learning_rate"]),
        "change": "narrowed",
    }
    assert (ranges["batch_size"]["after"], ranges["batch_size"]["change"]) == (
        fmt(plan.space["batch_size"]),
        "kept",
    )
    kept = browser.table_rows(page, "rank")
    assert [r["runId"] for r in kept] == [k.run_id for k in plan.kept]
    with Store(ui_store.settings) as store, pytest.raises(ProvKBError, match="no study named"):
        KnowledgeBase(store).study(new)  # a preview writes nothing

    # Start: the new study, session 2 of the study, by the app's person.
    page.get_by_role("button", name="Start session").click()
    browser.settle(page)
    success = page.locator("[data-testid='stAlertContentSuccess']")
    expect(success).to_contain_text(f"Started study {new}: session 2 of {study}")
    browser.assert_no_error(page)
    browser.save_screenshot(page, folder / "compare-next-session.png")
    with Store(ui_store.settings) as store:
        settings = KnowledgeBase(store).study(new).settings()
        lineage = registry.run(store, "study-lineage", study=new).rows
    assert (settings["parentStudy"], settings["session"]) == (study, 2)
    assert settings["space"] == plan.space
    assert [(r["session"], r["study"], r["parent"], r["person"]) for r in lineage] == [
        (1, study, None, "ada"),
        (2, new, study, PERSON),
    ]
    assert (lineage[1]["reason"], lineage[1]["top"]) == (REASON, TOP)
    assert lineage[1]["keptRuns"] == [k.run_id for k in plan.kept]

    # What Plotly draws (checked last, after the session): the selected lines coloured,
    # the others grey. Plotly.js drops a colour scale that does not end at exactly 1
    # and draws with its default (the theme's blues) instead.
    page.locator(".st-key-cmp_parcoords .js-plotly-plot").wait_for()
    lines = chart_lines(page)
    colours = drawn_colours(lines)
    assert lines["drawn"]["colorscale"] == lines["colorscale"], (
        "Plotly did not draw with the app's colour scale (it rejected it): "
        f"sent {lines['colorscale']}, drawn {lines['drawn']['colorscale']}"
    )
    lit = [i for i, c in enumerate(lines["color"]) if c > lines["cmin"]]
    assert sorted(lines["dims"]["learning_rate"][i] for i in lit) == pytest.approx(kept_lrs)
    assert [c == GREY for c in colours] == [i not in lit for i in range(len(colours))]
