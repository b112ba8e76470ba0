"""Helpers shared by the test modules (imported as `helpers`; not collected)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

from provkb.kb.store import Store
from provkb.queries import run as run_query


def store_child_env(store: Store) -> tuple[dict[str, str], list[str]]:
    """The environment and `--store` arguments that point a child process at `store`."""
    env = dict(os.environ)
    settings = store.settings
    if settings.embedded:
        return env, ["--store", str(settings.home)]
    env.update(
        PROVKB_URI=settings.uri or "",
        PROVKB_USER=settings.user,
        PROVKB_PASSWORD=settings.password or "",
        PROVKB_DATABASE=settings.database or "",
    )
    return env, []


def cli(store: Store, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`provkb ARGS` in a new process, on the same store (200 columns: no wrapping)."""
    env, store_args = store_child_env(store)
    return subprocess.run(
        [sys.executable, "-m", "provkb", *args, *store_args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=timeout,
    )


def unique(prefix: str) -> str:
    """`prefix` and 8 random hex digits: a name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rows(store: Store, query: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of a read-only Cypher query."""
    return store.read(query, **params).rows


def one(store: Store, query: str, **params: Any) -> Any:
    """The single value of a query that must return exactly one row."""
    found = rows(store, query, **params)
    assert len(found) == 1, found
    return next(iter(found[0].values()))


def query_rows(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of named query `name`, each with exactly the query's columns, in order."""
    result = run_query(store, name, **params)
    assert all(list(row) == result.columns for row in result.rows), result.columns
    return result.rows
