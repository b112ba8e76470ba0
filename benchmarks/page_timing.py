"""How long a person waits for the app's pages and for `provkb query`.

A page is rendered by Streamlit's own script runner (`streamlit.testing.v1.AppTest`:
the app's real code and reads, no browser) with the app's read caches emptied first,
so every render reads the store, as a refresh does once the cache has expired. The
CLI is timed as a person runs it: a new `provkb query runs` process, from its start to
its exit. Both are used by `responsiveness` beside a training.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import environment, stats

APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"
PAGES = {  # what a trainer opens while a training runs
    "Overview": "page_overview.py",
    "Run monitor": "page_monitor.py",
    "Compare": "page_compare.py",
}
CLI = "provkb query runs"
RENDER_TIMEOUT = 120  # s, per page render


def store_environment(target: Any) -> dict[str, str | None]:
    """What `provkb ui` gives the app, and a person's shell the CLI, to reach `target`
    (a `benchmarks.engines.Target`): the embedded folder, or the server's URI and account.
    None: the variable is unset."""
    from provkb.ui.common import ENV_EMBEDDED

    if target.uri is None:
        return {"PROVKB_HOME": str(target.home), ENV_EMBEDDED: "1", "PROVKB_URI": None}
    settings = target.settings()
    return {
        "PROVKB_HOME": str(target.home),
        ENV_EMBEDDED: None,
        "PROVKB_URI": settings.uri,
        "PROVKB_USER": settings.user,
        "PROVKB_PASSWORD": settings.password,
    }


def render_ms(page: str, run_id: str) -> float:
    """Milliseconds of one render of `page` (a file of ui/) with `run_id` selected."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from provkb.ui.common import SELECTED_RUN

    at = AppTest.from_file(str(APP), default_timeout=RENDER_TIMEOUT)
    at.session_state[SELECTED_RUN] = run_id
    at.run()  # the app's first page and its session, untimed
    st.cache_data.clear()
    started = time.perf_counter()
    at.switch_page(page).run()
    elapsed = (time.perf_counter() - started) * 1000
    if at.exception:
        raise RuntimeError(f"{page} failed: {[e.value for e in at.exception]}")
    return elapsed


def cli_ms(target: Any) -> float:
    """Milliseconds of `provkb query runs` in a new process: `--store HOME` for an embedded
    store, a server's settings from the environment (`store_environment`)."""
    where = ["--store", str(target.home)] if target.uri is None else []
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "provkb", "query", "runs", *where],
        capture_output=True,
        text=True,
        check=False,
        timeout=RENDER_TIMEOUT,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{CLI} failed: {done.stderr.strip()[-500:]}")
    lines = done.stdout.strip().splitlines()
    if not lines or lines[-1].strip() == "0 row(s)":
        raise RuntimeError(f"{CLI} found no runs: it did not read the benchmark's store")
    return elapsed


def time_pages(
    target: Any,
    run_of: Callable[[], str],
    keep_going: Callable[[], bool],
    pause: float,
    deadline: float = 900.0,
) -> dict:
    """Each page and the CLI in turn on `target`'s store (a `benchmarks.engines.Target`),
    while `keep_going()` (and for at most `deadline` seconds), at least once each; the
    Run monitor shows `run_of()` (the training's run once it exists). Their latencies
    (ms) as `stats`, by name."""
    import streamlit as st

    names = [*PAGES, CLI]
    times: dict[str, list[float]] = {name: [] for name in names}
    turn, ends = 0, time.monotonic() + deadline
    try:
        with environment(store_environment(target)):
            while turn < len(names) or (keep_going() and time.monotonic() < ends):
                name = names[turn % len(names)]
                turn += 1
                ms = cli_ms(target) if name == CLI else render_ms(PAGES[name], run_of())
                times[name].append(ms)
                time.sleep(pause)
    finally:
        st.cache_resource.clear()  # the app's driver to this store
    return {name: {**stats(values), "n": len(values)} for name, values in times.items()}


def summary(result: dict[str, Any]) -> str:
    """`Overview 120 ms, ...`: the p50 of each, for the log."""
    return ", ".join(f"{name} {entry.get('median', 0):.0f} ms" for name, entry in result.items())
