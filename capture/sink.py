"""One background writer per store, shared by every callback of the process."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid

from ..config import resolve_settings
from ..kb.journal import Journal, journal_folder
from ..kb.store import Store
from ..kb.writer import BackgroundWriter

StoreLike = Store | str | os.PathLike | None

_lock = threading.Lock()
_writers: dict[tuple, BackgroundWriter] = {}


def writer_for(store: StoreLike) -> BackgroundWriter:
    """The writer of `store`: a Store, an embedded store folder, or None (default settings)."""
    if isinstance(store, Store):
        key: tuple = ("store", id(store))
        target = store
    else:
        settings = resolve_settings(store=store) if store is not None else resolve_settings()
        key = ("settings", str(settings.home), settings.uri, settings.database, settings.user)
        target = Store(settings)
    with _lock:
        writer = _writers.get(key)
        if writer is None:
            writer = _writers[key] = BackgroundWriter(target, journal=_journal(target))
        return writer


def _journal(store: Store) -> Journal:
    """This process's journal in the store folder (`provkb sync` replays what is left)."""
    name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return Journal(journal_folder(store.settings.home), name)


def close_all(timeout: float = 5.0) -> None:
    """Flush and stop every writer (at interpreter exit)."""
    with _lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        with contextlib.suppress(Exception):
            writer.close(timeout)
