"""Helpers shared by the test modules (imported as `helpers`; not collected)."""

from __future__ import annotations

import os
import subprocess
import sys

from provkb.kb.store import Store


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
