"""End to end: `provkb ui` on a free port against a store holding runs captured from real
Keras training (the demo, 4 epochs) plus the known graph of test_ui_app (a run kept
`running`, a study), driven in Debian's Chromium through Playwright.

It opens every page and checks what is visible, sends one steering request and runs
one named query and one Cypher query through the browser, and saves a screenshot of
each page in tests/artifacts/ui/<page>.png.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from provkb.config import Settings, resolve_settings
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.store import Store

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "ui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH = 1400
STARTUP_SECONDS = 90
PAGE_SECONDS = 30_000  # ms, Playwright's unit

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (/usr/bin/chromium): "
        "apt-get install -y chromium",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class UiStore:
    """Where the app under test reads: the environment and `--store` arguments of
    `provkb ui`, the store's settings and the demo's runs."""

    env: dict[str, str]
    args: list[str]
    settings: Settings
    runs: dict
    engine: str


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def provkb_variables(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PROVKB_")}


def store_target(
    engine: str, request: pytest.FixtureRequest, home: Path, **extra: str
) -> tuple[dict[str, str], list[str], Settings]:
    """`provkb ui`'s environment and arguments, and the store's settings: a store folder
    of its own in `home` (embedded) or the session's Neo4j (its journals in `home`).
    The environment is this process's without its `PROVKB_*` variables, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")} | extra
    if engine == "embedded":
        return base, ["--store", str(home)], resolve_settings(store=home)
    env = {**base, **request.getfixturevalue("store_env"), "PROVKB_HOME": str(home)}
    with _environment(provkb_variables(env)):
        return env, [], resolve_settings()


@pytest.fixture(scope="module")
def ui_store(
    engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiStore]:
    """A store with the demo's captured runs and the known graph, on each engine: a
    store folder of its own (embedded) or the session's Neo4j, emptied first."""
    from rich.console import Console
    from test_ui_app import build_known_graph

    from provkb.demo import run_demo

    home = tmp_path_factory.mktemp("provkb-ui-browser")
    env, args, settings = store_target(engine, request, home)
    try:
        with _environment(provkb_variables(env)):
            with Store(settings) as store:
                store.clear()
            result = run_demo(
                store=home if engine == "embedded" else None,
                epochs=4,
                console=Console(file=io.StringIO()),
            )
        with Store(settings) as store:
            build_known_graph(store)
        yield UiStore(env, args, settings, result.runs, engine)
    finally:
        EmbeddedServer(home).stop()


@pytest.fixture(scope="module")
def ui_url(ui_store: UiStore) -> Iterator[str]:
    """`provkb ui [--store <home>] --port <free>`, running until the module is done."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "provkb", "ui", *ui_store.args, "--port", str(port)],
        # a server the app (re)starts ends with this session, whatever happens to it
        env={**ui_store.env, "PROVKB_WATCH_PID": str(os.getpid())},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.poll() is not None else ""
                pytest.fail(f"provkb ui did not start (exit {process.poll()}): {output}")
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def page(ui_url: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        tab = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        tab.set_default_timeout(PAGE_SECONDS)
        yield tab
        browser.close()


def settle(tab) -> None:
    """Wait until the app has finished running its script."""
    tab.wait_for_selector("[data-testid='stApp']")
    tab.wait_for_timeout(600)
    tab.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PAGE_SECONDS
    )
    tab.wait_for_timeout(800)


def open_page(tab, url: str, path: str, heading: str) -> None:
    tab.set_viewport_size({"width": WIDTH, "height": 1000})
    tab.goto(f"{url}/{path}")
    tab.get_by_role("heading", name=heading).first.wait_for()
    settle(tab)
    assert_no_error(tab)


def assert_no_error(tab) -> None:
    errors = tab.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    assert errors.count() == 0, errors.all_inner_texts()


def save_screenshot(tab, path: Path) -> Path:
    """The whole page (the app scrolls inside its main block: grow the viewport to fit)."""
    height = tab.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    tab.set_viewport_size({"width": WIDTH, "height": max(1000, min(int(height) + 40, 7000))})
    tab.wait_for_timeout(700)
    path.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    return path


def visible(tab, text: str) -> None:
    tab.get_by_text(text, exact=False).first.wait_for(state="visible")


def in_table(tab, text: str) -> None:
    """A table cell holding `text` (tables draw on a canvas; their cells are in the DOM
    for accessibility, not visible)."""
    tab.locator("[role='gridcell']", has_text=text).first.wait_for(state="attached")


def table_rows(tab, header: str) -> list[dict[str, str]]:
    """The rows of the dataframe with a column `header`, as {column: cell text} (the
    grid draws on a canvas; its cells are in the DOM for accessibility)."""
    grid = tab.locator("[data-testid='stDataFrame']").filter(
        has=tab.locator("[role='columnheader']", has_text=header)
    )
    grid.locator("[role='gridcell']").first.wait_for(state="attached")
    rows = grid.evaluate(
        """(el) => Array.from(el.querySelectorAll("[role='row']")).map(r =>
            Array.from(r.querySelectorAll("[role='columnheader'], [role='gridcell']"))
                 .map(c => c.textContent.trim()))"""
    )
    head, *body = [r for r in rows if r]
    return [dict(zip(head, r, strict=True)) for r in body]


def test_every_page_in_a_real_browser(page, ui_url: str, ui_store: UiStore) -> None:
    demo_runs = ui_store.runs
    shot = ARTIFACTS if ui_store.engine == "embedded" else ARTIFACTS / ui_store.engine

    def screenshot(tab, name: str) -> Path:
        return save_screenshot(tab, shot / f"{name}.png")

    # 1 Overview: counts, the demo's experiment and runs.
    open_page(page, ui_url, "", "Overview")
    visible(page, "Projects and experiments")
    in_table(page, "digits-optimizers")
    for name in ("sgd-step-decay", "adam-plateau", "rmsprop-early-stop"):
        page.get_by_role("textbox", name="Search").fill(name)
        page.keyboard.press("Enter")
        settle(page)
        visible(page, "1 matching run(s)")
    page.get_by_role("textbox", name="Search").fill("")
    page.keyboard.press("Enter")
    settle(page)
    screenshot(page, "overview")

    # 2 Run monitor: the running run comes first; steer it.
    open_page(page, ui_url, "monitor", "Run monitor")
    visible(page, "rms-live")
    visible(page, "live: refreshing every")
    visible(page, "Steer this run")
    page.get_by_role("textbox", name="New value").fill("0.0005")
    page.get_by_role("textbox", name="Reason").fill("browser test")
    page.get_by_role("textbox", name="Requested by (person)").fill("playwright")
    page.get_by_role("button", name="Send request").click()
    visible(page, "is pending")
    settle(page)
    with Store(ui_store.settings) as store:
        rows = store.read(
            "MATCH (q:SteeringRequest {person: 'playwright'}) "
            "RETURN q.status AS status, q.requestedValue AS value, q.reason AS reason"
        ).rows
    assert rows == [{"status": "pending", "value": "0.0005", "reason": "browser test"}]
    screenshot(page, "monitor")

    # The monitor of a captured run: curves and its learning-rate adaptation.
    page.get_by_role("textbox", name="Find a run").fill("sgd-step-decay")
    page.keyboard.press("Enter")
    settle(page)
    visible(page, "sgd-step-decay")
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    in_table(page, "adaptation: learning_rate")  # the step decay, from epoch 4
    screenshot(page, "monitor-captured")

    # 3 Study
    open_page(page, ui_url, "study", "Study")
    visible(page, "Gain per iteration")
    visible(page, "Queue edits")
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    screenshot(page, "study")

    # 4 Compare
    open_page(page, ui_url, "compare", "Compare runs")
    visible(page, "Side by side")
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    screenshot(page, "compare")

    # 5 Lineage: the graph around a captured run, and its PROV diagram.
    open_page(page, ui_url, "lineage", "Lineage")
    page.get_by_role("textbox", name="Find a node").fill(demo_runs["adam-plateau"])
    page.keyboard.press("Enter")
    settle(page)
    page.get_by_role("button", name="Go to node").click()
    settle(page)
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.wait_for()
    visible(page, "run adam-plateau")
    screenshot(page, "lineage")
    # A click on a node (a Plotly point carrying its id) selects it and expands it.
    expanded_before = page.get_by_text(re.compile(r"\d+ expanded")).first.inner_text()
    point = chart.locator(".scatterlayer .trace").nth(2).locator(".point").first  # entities
    point.click(force=True)
    settle(page)
    expanded_after = page.get_by_text(re.compile(r"\d+ expanded")).first.inner_text()
    assert expanded_before != expanded_after, (expanded_before, expanded_after)
    screenshot(page, "lineage-clicked")
    page.get_by_text("Draw", exact=True).click()  # the standard PROV diagram of the run
    settle(page)
    page.get_by_role("button", name="Download SVG").wait_for()
    drawn = page.frame_locator(".st-key-lin_diagram iframe").locator("svg").first
    drawn.wait_for()
    box = drawn.bounding_box()  # at its natural size: wider than the page, scrolled
    assert box is not None and box["width"] > 1400, box
    screenshot(page, "lineage-prov-diagram")

    # 6 Queries: a named query and a read-only Cypher query.
    open_page(page, ui_url, "queries", "Queries")
    page.get_by_role("button", name="Run query").click()
    settle(page)
    in_table(page, "adam-plateau")
    visible(page, "row(s)")
    screenshot(page, "queries-named")
    page.get_by_role("tab", name="Cypher editor").click()
    page.get_by_role("textbox", name="Cypher").fill(
        "MATCH (r:TrainingRun {experiment: 'digits-optimizers'})<-[:WAS_INFORMED_BY]-(e:Epoch) "
        "RETURN r.runId AS run, r.name AS name, count(e) AS epochs ORDER BY name"
    )
    page.get_by_role("button", name="Run", exact=True).click()
    settle(page)
    in_table(page, demo_runs["sgd-step-decay"])
    assert_no_error(page)
    screenshot(page, "queries")

    # 7 Export: a captured run as PROV-JSON, downloaded.
    open_page(page, ui_url, "export", "Export")
    page.get_by_role("textbox", name="Find a run").fill("adam-plateau")
    page.keyboard.press("Enter")
    settle(page)
    page.get_by_role("button", name="Prepare PROV-JSON").click()
    visible(page, "PROV-JSON ready")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    saved = ARTIFACTS / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"run-{demo_runs['adam-plateau']}.json"
    assert f"provkb:run/{demo_runs['adam-plateau']}" in saved.read_text()
    screenshot(page, "export")
