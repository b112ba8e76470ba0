"""`provkb.steer()`: ask a running training to change, from any process."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ...config import resolve_settings
from ...errors import ProvKBError, SteeringRejected
from ..store import Store
from .model import FINAL, NOTE, REJECTED, SET, STOP, SteeringRequest, describe
from .requests import Steering


def _open(store: Store | Any) -> tuple[Store, bool]:
    """A connected store and whether it is ours to close (a Store, a folder or None)."""
    if isinstance(store, Store):
        return store, False
    settings = resolve_settings(store=store) if store is not None else resolve_settings()
    return Store(settings).connect(), True


def steer(
    run: str,
    set: Mapping[str, Any] | None = None,  # noqa: A002 - the API's word
    stop: bool = False,
    note: str | None = None,
    reason: str | None = None,
    person: str | None = None,
    store: Store | Any = None,
    wait: bool = False,
    timeout: float = 60.0,
) -> list[SteeringRequest]:
    """Ask a running training to change; returns the requests (one per change).

        provkb.steer("3f2a9c1b7d4e", set={"learning_rate": 0.001}, reason="plateau")
        provkb.steer("my-run", stop=True, wait=True)

    `set` maps hyperparameter names to new values (one request each), `stop` stops
    the run after its current epoch, `note` annotates it. `run` is a run id or name
    (the newest run of that name). With `wait`, waits up to `timeout` seconds until
    every request is applied or rejected (a request still pending then keeps its
    `pending`/`claimed` status). Raises `SteeringRejected` (its `requests` attribute
    holds every request) when any request was rejected, before or at application;
    the others stay submitted. `ProvKBError` when the run is unknown.
    """
    changes = dict(set or {})
    if not changes and not stop and note is None:
        raise ProvKBError("nothing to ask: give set={name: value}, stop=True or note='...'")
    connected, ours = _open(store)
    try:
        steering = Steering(connected)
        requests = [
            steering.submit_request(run, SET, name, value, reason=reason, person=person)
            for name, value in changes.items()
        ]
        if note is not None:
            requests.append(
                steering.submit_request(run, NOTE, note=note, reason=reason, person=person)
            )
        if stop:
            requests.append(steering.submit_request(run, STOP, reason=reason, person=person))
        if wait:
            deadline = time.monotonic() + timeout
            for i, request in enumerate(requests):
                if request.status not in FINAL:
                    left = max(0.0, deadline - time.monotonic())
                    requests[i] = steering.wait(request.request_id, timeout=left, poll=0.25)
    finally:
        if ours:
            connected.close()
    rejected = [r for r in requests if r.status == REJECTED]
    if rejected:
        raise SteeringRejected("; ".join(describe(r) for r in rejected), requests)
    return requests
