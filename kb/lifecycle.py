"""Whether a run is live: heartbeats, interrupted runs and the requests they left behind.

A training process beats on its run (`heartbeat`, ISO time) every `interval` seconds
from the capture's background writer; the run says after how many seconds of silence
it counts as interrupted (`heartbeatTimeout`). Queries show such a run as
`interrupted` (`queries.library.shown_status`); `provkb sync` records it so
(`record_interrupted`) and rejects the steering requests no training will apply
(`reject_orphaned`).

Settings (environment, read when asked): `PROVKB_HEARTBEAT_INTERVAL` (seconds,
default 10) and `PROVKB_HEARTBEAT_TIMEOUT` (seconds, default 3 x the interval).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .cypher import RUN_LIFECYCLE
from .identity import now_iso as now_iso
from .store import Store

DEFAULT_INTERVAL = 10.0
TIMEOUT_FACTOR = 3
RUN_ENDED = "the run ended before it could apply"


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(frozen=True)
class HeartbeatSettings:
    """How often a training beats, and after how long a silent run is interrupted."""

    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_INTERVAL * TIMEOUT_FACTOR

    @classmethod
    def from_env(cls) -> HeartbeatSettings:
        interval = _seconds("PROVKB_HEARTBEAT_INTERVAL", DEFAULT_INTERVAL)
        timeout = _seconds("PROVKB_HEARTBEAT_TIMEOUT", interval * TIMEOUT_FACTOR)
        if timeout <= interval:
            raise ConfigError(
                f"PROVKB_HEARTBEAT_TIMEOUT ({timeout:g} s) must be longer than the heartbeat "
                f"interval ({interval:g} s), or every run would look interrupted"
            )
        return cls(interval, timeout)


def beat(store: Store, run_node: str) -> bool:
    """Say that the run's training process lives; False when the run is not (yet)
    in the store or has ended."""
    rows = store.execute_write(RUN_LIFECYCLE["heartbeat"], id=run_node, now=now_iso())
    return bool(rows and rows[0]["beats"])


def record_interrupted(store: Store) -> list[dict[str, Any]]:
    """Record every silent `running` run as `interrupted` (with its last finished epoch
    as `stoppedEpoch`); returns them (runId, name, lastEpoch, lastSeen)."""
    return store.execute_write(RUN_LIFECYCLE["record_interrupted"])


def reject_orphaned(store: Store, reason: str = RUN_ENDED) -> int:
    """Reject the pending or claimed steering requests of runs that are not live (a
    claimed one whose action is recorded is applied first: its training ended before
    the store took the outcome)."""
    store.execute_write(RUN_LIFECYCLE["settle_applied"], now=now_iso())
    rows = store.execute_write(RUN_LIFECYCLE["reject_orphaned"], reason=reason, now=now_iso())
    return rows[0]["rejected"] if rows else 0
