"""Issue 15 in a real browser: `provkb ui` against the store of test_ui_browser (the
demo's captured runs and test_ui_app's known graph, on each engine), driven in
Debian's Chromium. While the page stays open, this test writes to the store as a
training would (a new epoch, a request claimed and applied, a new running run) and
waits for the page to show it by itself.

Scenarios: every page's own URL (`/overview`, `/monitor?run=ID`), the Run monitor's
header moving with its curves, the steering form (default, current value, emptied
after sending, one message that follows the request), sorting across pages, a row
click opening the run, the Overview refreshing its counts, and the Overview at 1,024 px.
Screenshots in tests/artifacts/ui/monitor-*.png and overview-*.png.
"""

from __future__ import annotations

import re

import pytest
import test_ui_browser as browser
from test_ui_app import LIVE, SGD, add_epoch, add_new_value, add_run, iso

from provkb.kb.embedded import EmbeddedServer
from provkb.kb.records import GraphBatch
from provkb.kb.steering import Steering
from provkb.kb.store import Store
from provkb.ontology import (
    ACTIVITY,
    STEERING_ACTION,
    TRAINING_RUN,
    WAS_INFORMED_BY,
    SteeringStatus,
)
from provkb.queries import app as reads

pytestmark = browser.pytestmark
ui_store = browser.ui_store  # the fixtures: the store, `provkb ui` on it, the browser tab
ui_url = browser.ui_url
page = browser.page

LIVE_WAIT = 90_000  # ms: what a page shows by itself (fragments refresh every 3-10 s)
PERSON = "playwright-monitor"


@pytest.fixture(autouse=True)
def patient(page) -> None:
    """Waits long enough for a machine shared with trainings and other test sessions."""
    page.set_default_timeout(LIVE_WAIT)
    page.set_default_navigation_timeout(LIVE_WAIT)


def wait_text(tab, text: str, timeout: int = LIVE_WAIT) -> None:
    tab.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout)


def shot(tab, ui_store, name: str) -> None:
    folder = browser.ARTIFACTS if ui_store.engine == "embedded" else browser.ARTIFACTS / "neo4j"
    browser.save_screenshot(tab, folder / f"{name}.png")


def choose(tab, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` (typed, as its search box takes it)."""
    box = tab.get_by_role("combobox", name=label)
    box.focus()
    tab.keyboard.type(option)
    tab.get_by_role("option", name=option, exact=True).first.wait_for()
    tab.keyboard.press("Enter")
    browser.settle(tab)
    assert box.input_value() == option


def write_epoch(store: Store, n: int) -> None:
    """Epoch n of the running run rms-live, as its training records it."""
    b = GraphBatch()
    b.add_node(f"provkb:run/{LIVE}", ACTIVITY, TRAINING_RUN, runId=LIVE, epochsCompleted=n)
    values = {"val_accuracy": 0.6, "accuracy": 0.65, "loss": 0.3, "val_loss": 0.35}
    add_epoch(b, LIVE, n, values, epoch_props={"endedAtTime": iso(40 + n)})
    store.write(b)


def apply_as_training(store: Store, value: float, epoch: int) -> str:
    """Claim rms-live's pending requests as its training would and apply this test's
    `set learning_rate` from `epoch` (a steering action and the value's next version)."""
    steering = Steering(store)
    claimed = steering.claim(LIVE, "browser-test-training")
    mine = next(r for r in claimed if r.person == PERSON)
    for other in claimed:
        if other is not mine:
            steering.resolve(other, SteeringStatus.APPLIED, appliedEpoch=epoch)
    b = GraphBatch()
    node = f"provkb:run/{LIVE}"
    action = b.add_node(
        f"{node}/steering/{mine.request_id}",
        ACTIVITY,
        STEERING_ACTION,
        runId=LIVE,
        requestId=mine.request_id,
        action="set",
        hyperparameter="learning_rate",
        oldValue=0.001,
        newValue=value,
        epoch=epoch,
        person=PERSON,
        startedAtTime=iso(40 + epoch - 0.5),
    )
    b.add_edge(WAS_INFORMED_BY, action, node)
    add_new_value(b, LIVE, "learning_rate", 2, value, epoch, action, "steering")
    store.write(b)
    assert steering.resolve(mine, SteeringStatus.APPLIED, appliedEpoch=epoch)
    return mine.request_id


def test_every_page_has_its_own_url(page, ui_url: str, ui_store) -> None:
    page.goto(f"{ui_url}/overview")
    page.get_by_role("heading", name="Overview").first.wait_for()
    browser.settle(page)
    browser.assert_no_error(page)
    assert page.get_by_text("Page not found").count() == 0
    page.goto(ui_url)  # the root opens the Overview at its URL
    page.get_by_role("heading", name="Overview").first.wait_for()
    page.wait_for_url(re.compile(r".*/overview$"))
    page.goto(f"{ui_url}/monitor?run={SGD}")  # not the running run it shows first
    page.get_by_role("heading", name="Run monitor").first.wait_for()
    browser.settle(page)
    page.get_by_role("heading", name=re.compile("sgd-baseline")).first.wait_for()
    browser.visible(page, SGD)
    shot(page, ui_store, "monitor-by-url")
    assert page.get_by_text("Page not found").count() == 0


def test_monitor_header_moves_with_the_curves_and_steering_follows_the_request(
    page, ui_url: str, ui_store
) -> None:
    browser.open_page(page, ui_url, f"monitor?run={LIVE}", "Run monitor")
    browser.visible(page, "rms-live")
    with Store(ui_store.settings) as store:
        done = reads.run(store, LIVE)["epochsCompleted"]
        browser.visible(page, f"epochs {done}/20")
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        write_epoch(store, done + 1)  # the training finishes an epoch; nobody clicks
        wait_text(page, f"epochs {done + 1}/20")
    shot(page, ui_store, "monitor-live-header")

    # The steering form: learning_rate first, the chosen value, emptied after sending.
    assert "learning_rate" in page.get_by_role("combobox", name="Hyperparameter").input_value()
    choose(page, "Hyperparameter", "momentum")
    browser.visible(page, "current value: 0")
    choose(page, "Hyperparameter", "learning_rate")
    browser.visible(page, "current value: 0.001")
    page.get_by_role("textbox", name="New value").fill("0.0005")
    page.get_by_role("textbox", name="Reason").fill("browser: loss flat")
    page.get_by_role("textbox", name="Requested by (person)").fill(PERSON)
    page.get_by_role("button", name="Send request").click()
    wait_text(page, "is pending")
    browser.settle(page)
    assert page.get_by_role("textbox", name="New value").input_value() == ""
    assert page.get_by_role("textbox", name="Reason").input_value() == ""
    assert page.get_by_text("is pending").count() == 1
    shot(page, ui_store, "monitor-steer-pending")

    with Store(ui_store.settings) as store:
        request_id = apply_as_training(store, 0.0005, done + 2)
    wait_text(page, f"applied: in force from epoch {done + 2}")
    wait_text(page, "current value: 0.0005")
    browser.settle(page)
    assert page.get_by_text("is pending").count() == 0  # no stale "pending" beside it
    assert page.get_by_text("claimed", exact=False).count() == 0
    # the requests table scrolled to its right end, as a person would to see the id
    requests = page.locator("[data-testid='stDataFrame']").filter(
        has=page.locator("[role='columnheader']", has_text="requestedValue")
    )
    requests.locator(".dvn-scroller").first.evaluate("s => { s.scrollLeft = s.scrollWidth; }")
    browser.in_table(page, request_id)
    shot(page, ui_store, "monitor-steer-applied")


def test_overview_sorts_every_run_and_a_row_click_opens_it(page, ui_url: str, ui_store) -> None:
    with Store(ui_store.settings) as store:
        first_page = {r["name"] for r in reads.runs_page(store, limit=25)}
        worst = reads.runs_page(store, limit=1, sort="best_val_accuracy", direction="asc")[0]
    assert worst["name"] not in first_page  # on page 2 when newest first
    browser.open_page(page, ui_url, "overview", "Overview")
    choose(page, "Sort by", "best val_accuracy")
    page.get_by_text("ascending", exact=True).click()  # the Order segmented control
    browser.settle(page)
    browser.visible(page, "sorted by best val_accuracy (ascending) over all matching runs")
    browser.in_table(page, worst["name"])
    shot(page, ui_store, "overview-sorted")

    runs = page.locator("[data-testid='stDataFrame']").nth(1)
    box = runs.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first row's selector
    page.get_by_role("heading", name="Run monitor").first.wait_for()
    page.wait_for_url(re.compile(rf".*/monitor\?run={worst['runId']}$"))
    browser.settle(page)
    browser.visible(page, worst["runId"])
    page.get_by_role("heading", name=re.compile(re.escape(worst["name"]))).first.wait_for()
    shot(page, ui_store, "monitor-row-click")
    browser.assert_no_error(page)


def test_overview_refreshes_its_counts_and_fits_1024_pixels(page, ui_url: str, ui_store) -> None:
    browser.open_page(page, ui_url, "overview", "Overview")
    with Store(ui_store.settings) as store:
        running = reads.status_counts(store).get("running", 0)
        metric = page.locator("[data-testid='stMetric']").filter(has_text="Running")
        assert metric.locator("[data-testid='stMetricValue']").inner_text() == str(running)
        b = GraphBatch()
        add_run(b, "b7045e000001", "browser-new", "opt-sweep", "running", 1, 5, {}, started=200)
        store.write(b)
        page.wait_for_function(
            "n => [...document.querySelectorAll('[data-testid=\"stMetric\"]')].some(m => "
            "m.innerText.includes('Running') && m.querySelector("
            "'[data-testid=\"stMetricValue\"]').innerText.trim() === String(n))",
            arg=running + 1,
            timeout=LIVE_WAIT,
        )

    page.set_viewport_size({"width": 1024, "height": 900})
    browser.settle(page)
    width = page.evaluate("() => document.documentElement.clientWidth")
    button = page.get_by_role("button", name="Open in Run monitor").bounding_box()
    assert button["x"] + button["width"] <= width
    table = page.locator("[data-testid='stDataFrame']").nth(1).bounding_box()
    assert table["x"] + table["width"] <= width
    # Every column of the table is drawn inside it: no horizontal scrolling needed.
    overflow = page.evaluate(
        "() => { const s = document.querySelectorAll('[data-testid=\"stDataFrame\"]')[1]"
        ".querySelector('.dvn-scroller'); return s.scrollWidth - s.clientWidth; }"
    )
    assert overflow <= 1, f"the runs table needs {overflow} px more"
    path = (
        browser.ARTIFACTS if ui_store.engine == "embedded" else browser.ARTIFACTS / "neo4j"
    ) / "overview-1024.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1024, "height": max(900, min(int(height) + 40, 7000))})
    page.wait_for_timeout(700)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": browser.WIDTH, "height": 1000})


def test_a_restarting_store_shows_a_spinner_then_the_page(page, ui_url: str, ui_store) -> None:
    """The embedded server stops under an open page; Refresh waits for ProvKB to start it
    again, saying so, and the page comes back (it used to show only its title)."""
    if ui_store.engine != "embedded":
        pytest.skip("ProvKB starts and restarts only its embedded server; Neo4j is the admin's")
    browser.open_page(page, ui_url, "overview", "Overview")
    EmbeddedServer(ui_store.settings.home).stop()
    page.get_by_role("button", name="Refresh").click()
    wait_text(page, "Reading the knowledge base")
    shot(page, ui_store, "overview-store-restarting")
    # the spinner goes once the server is back and the read answered (the stale page
    # stays greyed out under it meanwhile)
    page.get_by_text("Reading the knowledge base").first.wait_for(state="detached")
    browser.settle(page)
    page.locator("[data-testid='stMetric']").filter(has_text="Running").wait_for()
    browser.assert_no_error(page)
    assert EmbeddedServer(ui_store.settings.home).status() is not None  # started again
