"""Issue 15's Study page in a real browser: `provkb ui` against test_ui_app's known graph
(study `dl-steer`, running: item 25 running, 26 and 27 pending), on each engine, driven
in Debian's Chromium. The person picks item 26 and types an edit; the page refreshes by
itself and keeps what they typed; item 26 is claimed before they press Apply: the
refusal is shown, the picker keeps item 26 (marked no longer pending) and nothing
changes. Then an edit of item 27 applies. Screenshots: tests/artifacts/ui/study-refused.png
and study-edited.png.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import test_ui_browser as browser
from test_ui_app import STUDY_NAME, build_known_graph

from provkb.kb.embedded import EmbeddedServer
from provkb.kb.store import Store
from provkb.kb.study import StudyQueue

pytestmark = browser.pytestmark
ui_url = browser.ui_url  # `provkb ui` on the store below, and the browser tab
page = browser.page
expect = browser.sync_api.expect  # Playwright's waiting assertions
PlaywrightTimeout = browser.sync_api.TimeoutError

LIVE_WAIT = 60_000  # ms: what the page shows by itself (the study view refreshes every 5 s)
PARAMS = "Parameters (JSON object)"


@pytest.fixture(scope="module")
def ui_store(
    engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[browser.UiStore]:
    """The known graph only (no demo training): a store folder of its own (embedded) or
    the session's Neo4j, emptied first."""
    home = tmp_path_factory.mktemp("provkb-ui-study")
    env, args, settings = browser.store_target(engine, request, home)
    try:
        with Store(settings) as store:
            store.clear()
            build_known_graph(store)
        yield browser.UiStore(env, args, settings, {}, engine)
    finally:
        EmbeddedServer(home).stop()


def snapshot(store: Store) -> list[dict]:
    return store.read(
        "MATCH (n) WHERE n.study = $name AND (n:TrialItem OR n:SteeringAction OR n:StudyState) "
        "RETURN n.id AS id, properties(n) AS props ORDER BY id",
        name=STUDY_NAME,
    ).rows


def choose(tab, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`, opening its list again when the
    page's own refresh closed it first (as a person would click once more)."""
    box = tab.get_by_role("combobox", name=label)
    box.wait_for(timeout=LIVE_WAIT)
    wanted = tab.get_by_role("option", name=option, exact=True)
    deadline = time.monotonic() + LIVE_WAIT / 1000
    while True:
        box.click()
        try:
            wanted.click(timeout=5_000)
            break
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                options = tab.get_by_role("option").all_inner_texts()
                raise AssertionError(f"no option {option!r} in {label!r}: {options}") from None
            tab.keyboard.press("Escape")
    browser.settle(tab)


def wait_text(tab, text: str, timeout: int = LIVE_WAIT) -> None:
    tab.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout)


def test_an_item_that_started_cannot_be_edited_from_the_study_page(
    page, ui_url: str, ui_store: browser.UiStore
) -> None:
    folder = browser.ARTIFACTS if ui_store.engine == "embedded" else browser.ARTIFACTS / "neo4j"
    browser.open_page(page, ui_url, "study", "Study")
    wait_text(page, "Gain per iteration: val_accuracy (gain)")
    params = {"learning_rate": 0.04, "batch_size": 100}
    choose(page, "Pending item", f"#1 · item 26 · v2 · {json.dumps(params)}")
    box = page.get_by_role("textbox", name=PARAMS)
    box.fill('{"batch_size": 50}')
    page.wait_for_timeout(8_000)  # the live view (and its form) refreshed meanwhile ...
    assert box.input_value() == '{"batch_size": 50}'  # ... and kept what was typed
    with Store(ui_store.settings) as store:
        claim = StudyQueue(store, STUDY_NAME).claim("browser-run")  # item 26 starts now
        assert claim is not None and claim.item.item_id == 26
        before = snapshot(store)
        page.get_by_role("button", name="Apply").click()
        wait_text(page, "Refused: item 26 already started; nothing changed")
        wait_text(page, "item 26 already started (running, iteration 26)")  # the picker's note
        assert snapshot(store) == before  # nothing changed: not item 26, not item 27
        # Still the chosen item. A selectbox shows its choice as the value of its
        # combobox input (not as text of the page).
        picker = page.get_by_role("combobox", name="Pending item")
        stale = "item 26 · v2 · no longer pending"
        expect(picker).to_have_value(stale, timeout=LIVE_WAIT)
        browser.save_screenshot(page, folder / "study-refused.png")
        page.wait_for_timeout(8_000)  # the live view refreshed meanwhile ...
        expect(picker).to_have_value(stale)  # ... and the choice did not slide to item 27
        wait_text(page, "item 26 already started (running, iteration 26)")
        assert snapshot(store) == before

        choose(
            page, "Pending item", '#1 · item 27 · v1 · {"learning_rate": 0.05, "batch_size": 100}'
        )
        page.get_by_role("textbox", name=PARAMS).fill('{"batch_size": 50}')
        page.get_by_role("button", name="Apply").click()
        wait_text(page, "edit applied")
        item = StudyQueue(store, STUDY_NAME).item(27)
        assert (item.version, item.params["batch_size"]) == (2, 50)
        assert StudyQueue(store, STUDY_NAME).item(26).status == "running"
        browser.save_screenshot(page, folder / "study-edited.png")
