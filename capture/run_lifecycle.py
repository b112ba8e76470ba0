"""A run's life as its training process sees it: id and times, the heartbeat, the wait
for the store at the end, and the registry that records the runs still training when
the interpreter exits as failed."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import uuid
import weakref
from typing import Any, Protocol

from ..errors import ConfigError
from ..kb import lifecycle
from ..kb.identity import now_iso
from ..kb.writer import BackgroundWriter
from . import sink
from .safety import WarnOnce

DEFAULT_FINAL_WAIT = 2.0  # seconds on_train_end waits for the store at most
FINAL_WAIT_ENV = "PROVKB_FINAL_WAIT"


class Failable(Protocol):
    """What the exit registry calls on a run still training at interpreter exit."""

    def record_failure(self, error: BaseException | str, flush: bool = True) -> None: ...


_training: weakref.WeakSet[Any] = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


def now() -> str:
    """The current time as ISO 8601 UTC text (`kb.identity.now_iso`, the one clock text)."""
    return now_iso()


def new_run_id() -> str:
    """12 hex characters of a uuid4."""
    return uuid.uuid4().hex[:12]


def _at_exit() -> None:
    for owner in list(_training):
        owner.record_failure("the process exited before training ended", flush=False)
    sink.close_all()


def training(owner: Failable) -> None:
    """`owner` trains now: at interpreter exit its run is recorded as failed."""
    global _atexit_registered
    _training.add(owner)
    with _atexit_lock:
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True


def done(owner: Failable) -> None:
    """`owner`'s run ended (its final status is submitted)."""
    _training.discard(owner)


def heartbeat_settings(warn: WarnOnce) -> lifecycle.HeartbeatSettings:
    """The heartbeat settings of the environment (the defaults, warned, when wrong)."""
    try:
        return lifecycle.HeartbeatSettings.from_env()
    except ConfigError as exc:
        warn("provkb: %s; using the default heartbeat", exc)
        return lifecycle.HeartbeatSettings()


def final_wait_limit(final_wait: float | None, warn: WarnOnce) -> float:
    """Seconds the end of a run waits for the store: `final_wait`, else
    `PROVKB_FINAL_WAIT`, else 2."""
    if final_wait is not None:
        return max(0.0, float(final_wait))
    text = os.environ.get(FINAL_WAIT_ENV)
    try:
        return max(0.0, float(text)) if text else DEFAULT_FINAL_WAIT
    except ValueError:
        warn("provkb: %s must be a number of seconds, got %r", FINAL_WAIT_ENV, text)
        return DEFAULT_FINAL_WAIT


class RunLifecycle:
    """The store side of one run's life: heartbeat while it trains, flushes, the end wait."""

    def __init__(self, writer: BackgroundWriter, run_id: str, warn: WarnOnce) -> None:
        self.writer = writer
        self.run_id = run_id
        self._warn = warn

    @property
    def _heartbeat_key(self) -> str:
        return f"heartbeat:{self.run_id}"

    def start_heartbeat(self, run_node: str, interval: float) -> None:
        """The writer's thread says every `interval` seconds that this run lives."""
        self.writer.every(self._heartbeat_key, interval, lambda s: lifecycle.beat(s, run_node))

    def stop_heartbeat(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.every(self._heartbeat_key, 0, None)

    def flush(self, timeout: float, warn: bool = True) -> bool:
        """Wait for the writer; False (warned once, if `warn`) when the store has not
        taken it all."""
        if self.writer.flush(timeout):
            return True
        if warn:
            self._warn(
                "provkb: provenance of run %s is not written yet (%s); it is kept in "
                "the journal and sent in the background",
                self.run_id,
                self.writer.stats.last_error or f"not stored within {timeout:.1f} s",
            )
        return False

    def wait_at_end(self, started: float, limit: float) -> tuple[bool, float]:
        """Wait for the writer until `limit` seconds after `started` at most; returns
        whether it got everything, and how long the end waited in all. A `limit` of 0
        (`final_wait=0`) asked not to wait: no warning that the store is behind."""
        remaining = max(0.0, started + limit - time.monotonic())
        complete = self.flush(remaining, warn=limit > 0)
        return complete, time.monotonic() - started
