"""Shared fixtures: a real embedded store (started once per session) and, when
NEO4J_URI is set, a real Neo4j server. Nothing here fakes a database."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from provkb.config import resolve_settings
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.store import Store

ENGINES = ["embedded"] + (["neo4j"] if os.environ.get("NEO4J_URI") else [])


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Default store folder (journals, settings) for the session: never the checkout.

    At the end, every embedded server a test started under the session's temporary
    folders is stopped (writers may restart one after its test stopped it)."""
    home = tmp_path_factory.mktemp("provkb-default-home")
    previous = os.environ.get("PROVKB_HOME")
    os.environ["PROVKB_HOME"] = str(home)
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


def _store_for(engine: str, embedded_home: Path) -> Store:
    if engine == "embedded":
        return Store(resolve_settings(store=embedded_home))
    return Store(
        resolve_settings(
            uri=os.environ["NEO4J_URI"],
            user=os.environ.get("NEO4J_USER", "neo4j"),
            password=os.environ.get("NEO4J_PASSWORD", "provkb-test"),
            database=os.environ.get("NEO4J_DATABASE"),
        )
    )


@pytest.fixture(scope="session", params=ENGINES)
def store(request: pytest.FixtureRequest, embedded_home: Path) -> Iterator[Store]:
    """A connected store on each available engine (shared; tests use unique ids)."""
    s = _store_for(request.param, embedded_home).connect()
    yield s
    s.close()


@pytest.fixture
def clean_store(store: Store) -> Store:
    """The store, emptied first: for tests that need to know the whole graph."""
    store.clear()
    return store
