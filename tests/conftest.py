"""Shared fixtures: a real embedded store (started once per session) and a real Neo4j 5
server: the one NEO4J_URI names, or else one the session starts from Maven Central with
tools/neo4j/start (when Java and Maven are here). Nothing here fakes a database.

PROVKB_TEST_NEO4J=0 leaves Neo4j out; on CI (CI=true) a Neo4j that cannot start is an
error, not a skip."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provkb.config import resolve_settings
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.store import Store

TOOLS = Path(__file__).resolve().parent.parent / "tools" / "neo4j"


def _neo4j_wanted() -> str | None:
    """Why the Neo4j half cannot run here, or None when it can."""
    if os.environ.get("NEO4J_URI"):
        return None
    if os.environ.get("PROVKB_TEST_NEO4J") == "0":
        return "PROVKB_TEST_NEO4J=0"
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return f"no NEO4J_URI and no {' or '.join(missing)} to start Neo4j from Maven Central"
    return None


NEO4J_UNAVAILABLE = _neo4j_wanted()
ENGINES = ["embedded"] + ([] if NEO4J_UNAVAILABLE else ["neo4j"])
# Strict mode: a crash inside a capture hook fails the test instead of being swallowed
# (child processes inherit it). Tests of the swallowing unset it with monkeypatch.
os.environ.setdefault("PROVKB_STRICT", "1")


def pytest_report_header(config: pytest.Config) -> str:
    if NEO4J_UNAVAILABLE:
        return f"engines: embedded only (Neo4j half skipped: {NEO4J_UNAVAILABLE})"
    return "engines: embedded (ArcadeDB) and neo4j"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by the engine it runs on, so `-m neo4j` / `-m embedded` select a half."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.id.split("-") if callspec is not None else []
        for engine in ("neo4j", "embedded"):
            if engine in params:
                item.add_marker(getattr(pytest.mark, engine))
        if "neo4j_server" in getattr(item, "fixturenames", ()) and "neo4j" not in params:
            item.add_marker(pytest.mark.neo4j)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Counts per engine, so a log shows that both halves ran."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if outcome == "passed" and report.when != "call":
                continue
            keywords = getattr(report, "keywords", {})  # a collection error has none
            engine = next((e for e in ("neo4j", "embedded") if e in keywords), "engine-free")
            by_outcome = counts.setdefault(engine, {})
            by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
    for engine, by_outcome in sorted(counts.items()):
        text = ", ".join(f"{n} {outcome}" for outcome, n in sorted(by_outcome.items()))
        terminalreporter.write_line(f"engine {engine}: {text}")


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD of a real Neo4j 5 for the session."""
    if NEO4J_UNAVAILABLE:
        pytest.skip(NEO4J_UNAVAILABLE)
    if os.environ.get("NEO4J_URI"):
        yield {
            "NEO4J_URI": os.environ["NEO4J_URI"],
            "NEO4J_USER": os.environ.get("NEO4J_USER", "neo4j"),
            "NEO4J_PASSWORD": os.environ.get("NEO4J_PASSWORD", "provkb-test"),
        }
        return
    home = tmp_path_factory.mktemp("neo4j")
    started = subprocess.run(
        ["bash", str(TOOLS / "start"), str(home)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NEO4J_WATCH_PID": str(os.getpid())},  # gone with the session
    )
    if started.returncode != 0:
        reason = f"Neo4j could not start: {started.stderr.strip()[-2000:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    found = dict(line.split("=", 1) for line in started.stdout.split())
    yield {"NEO4J_USER": "neo4j", "NEO4J_HOME": str(home), **found}
    subprocess.run(["bash", str(TOOLS / "stop"), str(home)], capture_output=True, check=False)


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Default store folder (journals, settings) for the session: never the checkout.

    At the end, every embedded server a test started under the session's temporary
    folders is stopped (writers may restart one after its test stopped it)."""
    home = tmp_path_factory.mktemp("provkb-default-home")
    previous = os.environ.get("PROVKB_HOME")
    os.environ["PROVKB_HOME"] = str(home)
    # and a session that is killed (a CI timeout) leaves no embedded server running
    os.environ["PROVKB_WATCH_PID"] = str(os.getpid())
    yield home
    for info in tmp_path_factory.getbasetemp().rglob("server.json"):
        EmbeddedServer(info.parent).stop()
    # Writers of the tests' unreachable stores say at exit what they kept in their
    # journals; that is tested, and after the summary it is only noise.
    logging.getLogger("provkb").setLevel(logging.ERROR)
    if previous is None:
        os.environ.pop("PROVKB_HOME", None)
    else:
        os.environ["PROVKB_HOME"] = previous


@pytest.fixture(scope="session")
def embedded_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store folder whose embedded server runs for the whole session."""
    home = tmp_path_factory.mktemp("provkb-store")
    EmbeddedServer(home).ensure_running()
    yield home
    EmbeddedServer(home).stop()


def neo4j_control(server: dict[str, str], action: str) -> None:
    """Stop or start the session's own Neo4j (tools/neo4j/stop|start; its data stays)."""
    if "NEO4J_HOME" not in server:
        pytest.skip("the Neo4j server was given by NEO4J_URI; this test stops its server")
    done = subprocess.run(
        ["bash", str(TOOLS / action), server["NEO4J_HOME"]],
        capture_output=True,
        text=True,
        env={**os.environ, "NEO4J_WATCH_PID": str(os.getpid())},
    )
    assert done.returncode == 0, done.stderr
    if action == "start":  # clients keep their address: the same port again
        found = dict(line.split("=", 1) for line in done.stdout.split())
        assert found["NEO4J_URI"] == server["NEO4J_URI"], (found, server)


def engine_env(engine: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that points a child process (CLI, training, the app) at an engine."""
    if engine == "embedded":
        home = request.getfixturevalue("embedded_home")
        return {"PROVKB_HOME": str(home), "PROVKB_URI": ""}
    server = request.getfixturevalue("neo4j_server")
    env = {
        "PROVKB_URI": server["NEO4J_URI"],
        "PROVKB_USER": server["NEO4J_USER"],
        "PROVKB_PASSWORD": server["NEO4J_PASSWORD"],
    }
    if os.environ.get("NEO4J_DATABASE"):
        env["PROVKB_DATABASE"] = os.environ["NEO4J_DATABASE"]
    return env


def _store_for(engine: str, request: pytest.FixtureRequest) -> Store:
    if engine == "embedded":
        return Store(resolve_settings(store=request.getfixturevalue("embedded_home")))
    server = request.getfixturevalue("neo4j_server")
    return Store(
        resolve_settings(
            uri=server["NEO4J_URI"],
            user=server["NEO4J_USER"],
            password=server["NEO4J_PASSWORD"],
            database=os.environ.get("NEO4J_DATABASE"),
        )
    )


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each available engine: `embedded` (ArcadeDB) and `neo4j`."""
    return request.param


@pytest.fixture(scope="session")
def store(engine: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A connected store on each available engine (shared; tests use unique ids)."""
    s = _store_for(engine, request).connect()
    yield s
    s.close()


@pytest.fixture(scope="session")
def store_env(engine: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment variables that point a child process at `store`'s engine."""
    return engine_env(engine, request)


@pytest.fixture
def clean_store(store: Store) -> Store:
    """The store, emptied first: for tests that need to know the whole graph."""
    store.clear()
    return store
