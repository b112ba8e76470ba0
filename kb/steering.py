"""Steering requests: a person asks a running training to change; the run applies it.

A request is stored in the knowledge base as a pending `:Entity:SteeringRequest`
attributed to the person, linked to the latest metrics they could see. The training
process claims pending requests atomically (each is applied exactly once, whatever
the number of pollers), applies them at the next epoch boundary and records a
`:SteeringAction`. What cannot be applied is recorded as rejected with its reason.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import resolve_settings
from ..errors import ClaimConflict, ProvKBError, SteeringRejected
from ..ontology import (
    AGENT,
    ENTITY,
    PERSON,
    STEERING_REQUEST,
    WAS_ATTRIBUTED_TO,
    Prop,
    RunStatus,
    ids,
)
from .cypher import STEERING
from .identity import default_person, host_name, now_iso, os_user
from .records import GraphBatch
from .store import Store

SET, STOP, NOTE = "set", "stop", "note"
ACTIONS = (SET, STOP, NOTE)
PENDING, CLAIMED, APPLIED, REJECTED = "pending", "claimed", "applied", "rejected"

# Value rules for well-known optimizer hyperparameters: (lower, lower inclusive, upper,
# upper inclusive). Anything numeric must be finite.
_RANGES: dict[str, tuple[float, bool, float, bool]] = {
    "learning_rate": (0.0, False, math.inf, False),
    "momentum": (0.0, True, 1.0, False),
    "beta_1": (0.0, True, 1.0, False),
    "beta_2": (0.0, True, 1.0, False),
    "rho": (0.0, True, 1.0, False),
    "epsilon": (0.0, False, math.inf, False),
    "weight_decay": (0.0, True, math.inf, False),
    "clipnorm": (0.0, False, math.inf, False),
    "clipvalue": (0.0, False, math.inf, False),
    "global_clipnorm": (0.0, False, math.inf, False),
}


claim_token_id = ids.steering_claim
request_node_id = ids.steering_request
person_node_id = ids.person


@dataclass
class SteeringRequest:
    """One request, as stored."""

    request_id: str
    run_id: str
    action: str
    hyperparameter: str | None = None
    value: Any = None
    reason: str | None = None
    note: str | None = None
    person: str = ""
    requested_at: str = ""
    status: str = PENDING
    status_reason: str | None = None
    seen_metrics: str | None = None
    seen_epoch: int | None = None
    os_user: str | None = None  # who really asked: the requesting process's OS account,
    host: str | None = None  # its machine,
    client_address: str | None = None  # and, from the app, the browser's address
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def node_id(self) -> str:
        return request_node_id(self.run_id, self.request_id)

    def props(self) -> dict[str, Any]:
        """The node's properties (the value travels as JSON text, its type preserved)."""
        return {
            Prop.RUN_ID: self.run_id,
            "requestId": self.request_id,
            "action": self.action,
            "hyperparameter": self.hyperparameter,
            "requestedValue": None if self.value is None else json.dumps(self.value),
            "reason": self.reason,
            "note": self.note,
            "person": self.person,
            "requestedAtTime": self.requested_at,
            Prop.STATUS: self.status,
            "statusReason": self.status_reason,
            "seenMetrics": self.seen_metrics,
            "seenEpoch": self.seen_epoch,
            Prop.OS_USER: self.os_user,
            Prop.HOST: self.host,
            Prop.CLIENT_ADDRESS: self.client_address,
            **self.extra,
        }

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> SteeringRequest:
        raw = props.get("requestedValue")
        known = {
            Prop.RUN_ID, "requestId", "action", "hyperparameter", "requestedValue", "reason",
            "note", "person", "requestedAtTime", Prop.STATUS, "statusReason", "seenMetrics",
            "seenEpoch", Prop.ID, Prop.OS_USER, Prop.HOST, Prop.CLIENT_ADDRESS,
        }  # fmt: skip
        return cls(
            request_id=props["requestId"],
            run_id=props[Prop.RUN_ID],
            action=props["action"],
            hyperparameter=props.get("hyperparameter"),
            value=None if raw is None else json.loads(raw),
            reason=props.get("reason"),
            note=props.get("note"),
            person=props.get("person", ""),
            requested_at=props.get("requestedAtTime", ""),
            status=props.get(Prop.STATUS, PENDING),
            status_reason=props.get("statusReason"),
            seen_metrics=props.get("seenMetrics"),
            seen_epoch=props.get("seenEpoch"),
            os_user=props.get(Prop.OS_USER),
            host=props.get(Prop.HOST),
            client_address=props.get(Prop.CLIENT_ADDRESS),
            extra={k: v for k, v in props.items() if k not in known},
        )


# Python's spellings of the JSON constants (`--set nesterov=True`, `clipnorm=None`).
_PYTHON_CONSTANTS = {"True": True, "False": False, "None": None}


def parse_value(text: str) -> Any:
    """A CLI value: JSON when it parses (numbers, true/false/null, lists), Python's
    True/False/None, else the text."""
    if text.strip() in _PYTHON_CONSTANTS:
        return _PYTHON_CONSTANTS[text.strip()]
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_value(name: str, value: Any, current: Any = None) -> str | None:
    """Why `value` is not acceptable for hyperparameter `name` (None when it is)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    if isinstance(current, bool) != isinstance(value, bool):
        return f"{name} is {type(current).__name__}, got {type(value).__name__} {value!r}"
    if isinstance(current, int | float) and not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    if isinstance(current, str) and not isinstance(value, str):
        return f"{name} must be text, got {value!r}"
    bounds = _RANGES.get(name)
    if bounds and (not isinstance(value, int | float) or isinstance(value, bool)):
        return f"{name} must be a number, got {value!r}"
    if bounds and isinstance(value, int | float):
        low, low_in, high, high_in = bounds
        too_low = value < low or (value == low and not low_in)
        too_high = value > high or (value == high and not high_in)
        if too_low or too_high:
            left, right = "[" if low_in else "(", "]" if high_in else ")"
            return f"{name} must be in {left}{low:g}, {high:g}{right}, got {value!r}"
    return None


class Steering:
    """Submit, claim and follow steering requests in a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- requester side -------------------------------------------------------------
    def resolve_run(self, run: str) -> dict[str, Any]:
        """The run with this id (or name; the newest when several share it)."""
        rows = self.store.read(STEERING["find_run"], run=run).rows
        if not rows:
            raise ProvKBError(f"no run with id or name {run!r}")
        return rows[0]

    def submit(
        self,
        run: str,
        action: str,
        hyperparameter: str | None = None,
        value: Any = None,
        reason: str | None = None,
        note: str | None = None,
        person: str | None = None,
        client: str | None = None,
    ) -> SteeringRequest:
        """Store a request as pending; a request that cannot apply is stored as rejected
        and raises `SteeringRejected` with the reason. `client` is the address of the
        app's browser that asked (when known)."""
        request = self.submit_request(
            run, action, hyperparameter, value, reason, note, person, client
        )
        if request.status == REJECTED:
            raise SteeringRejected(
                f"request {request.request_id} rejected: {request.status_reason}", [request]
            )
        return request

    def submit_request(
        self,
        run: str,
        action: str,
        hyperparameter: str | None = None,
        value: Any = None,
        reason: str | None = None,
        note: str | None = None,
        person: str | None = None,
        client: str | None = None,
    ) -> SteeringRequest:
        """Like `submit`, but a rejected request is returned (status `rejected`).

        Besides the claimed `person`, the request records who really asked: the OS
        account and host of this process (and `client`). A run that is not live
        (ended, or `interrupted`: its process went silent) refuses at once. A request
        written while its run ends is checked again once written: if the run ended
        meanwhile (its training's last sweep may have missed it), it is rejected here,
        so none stays pending.
        """
        if action not in ACTIONS:
            raise ProvKBError(f"unknown steering action {action!r}; use one of {ACTIONS}")
        found = self.resolve_run(run)
        run_id = found["runId"]
        latest = self.store.read(STEERING["latest_metrics"], run=run_id).rows
        request = SteeringRequest(
            request_id=uuid.uuid4().hex[:12],
            run_id=run_id,
            action=action,
            hyperparameter=hyperparameter,
            value=value,
            reason=reason,
            note=note,
            person=default_person(person),
            requested_at=now_iso(),
            seen_metrics=latest[0]["id"] if latest else None,
            seen_epoch=latest[0]["epoch"] if latest else None,
            os_user=os_user(),
            host=host_name(),
            client_address=client,
        )
        problem = self._problem(request, found)
        if problem:
            request.status, request.status_reason = REJECTED, problem
        self.store.write(self._request_batch(request))
        if request.status == PENDING:
            return self._settle_if_not_live(request)
        return request

    def run_state(self, run_id: str) -> dict[str, Any] | None:
        """The run with this id: runId, name, its shown status (`interrupted` when its
        process went silent), heartbeat, started; None when unknown."""
        rows = self.store.read(STEERING["find_run"], run=run_id).rows
        return next((r for r in rows if r["runId"] == run_id), None)

    @staticmethod
    def _not_live(run_id: str, run: dict[str, Any]) -> str | None:
        """Why nothing will apply a request to this run (None: it is live)."""
        status = run.get("status")
        if status == RunStatus.RUNNING:
            return None
        if status == RunStatus.INTERRUPTED:
            seen = run.get("heartbeat") or run.get("started") or "its start"
            return (
                f"run {run_id} is interrupted: its training process has not been heard "
                f"from since {seen} (it was killed or lost the store), so nothing would "
                f"apply the request"
            )
        return f"run {run_id} is {status or 'unknown'}, not running"

    def _settle_if_not_live(self, request: SteeringRequest) -> SteeringRequest:
        """Reject a pending request whose run is no longer live (taking its claim token,
        as a training would, so that of a late training claim and this, one wins)."""
        run = self.run_state(request.run_id)
        reason = self._not_live(request.run_id, run or {})
        if reason is None:
            return request
        try:
            taken = self.store.execute_write(
                STEERING["claim_one"], id=request.node_id, token=claim_token_id(request.node_id),
                claimer=f"requester:{host_name()}:{os.getpid()}", now=now_iso(),
            )  # fmt: skip
        except ClaimConflict:
            return self.get(request.request_id)  # a training took it: it resolves it
        if not taken:  # no longer pending: resolved (or claimed) by the training
            return self.get(request.request_id)
        claimed = SteeringRequest.from_props(taken[0]["request"])
        self.resolve(claimed, REJECTED, reason)
        return claimed

    def _problem(self, request: SteeringRequest, run: dict[str, Any]) -> str | None:
        not_live = self._not_live(request.run_id, run)
        if not_live:
            return not_live
        steerable = self.store.read(STEERING["run_steerable"], run=request.run_id).rows
        if steerable and steerable[0]["steerable"] is False:
            return (
                f"run {request.run_id} is not steerable (it was started with steering "
                f"switched off, so nothing reads requests)"
            )
        if request.action == NOTE and not (request.note or "").strip():
            return "a note needs text"
        if request.action != SET:
            return None
        if not request.hyperparameter:
            return "no hyperparameter named"
        current = {
            row["name"]: row
            for row in self.store.read(STEERING["current_hyperparameters"], run=request.run_id).rows
        }
        row = current.get(request.hyperparameter)
        if row is None or not row.get("steerable"):
            steerable = sorted(n for n, r in current.items() if r.get("steerable"))
            return (
                f"{request.hyperparameter!r} is not a steerable hyperparameter of this run "
                f"(steerable: {', '.join(steerable) or 'none'})"
            )
        return check_value(request.hyperparameter, request.value, row.get("value"))

    @staticmethod
    def _request_batch(request: SteeringRequest) -> GraphBatch:
        batch = GraphBatch()
        person = batch.add_node(person_node_id(request.person), AGENT, PERSON, name=request.person)
        node = batch.add_node(request.node_id, ENTITY, STEERING_REQUEST, **request.props())
        batch.add_edge(WAS_ATTRIBUTED_TO, node, person)
        return batch

    def get(self, request_id: str) -> SteeringRequest:
        rows = self.store.read(STEERING["request_status"], request=request_id).rows
        if not rows:
            raise ProvKBError(f"no steering request {request_id!r}")
        return SteeringRequest.from_props(rows[0]["request"])

    def wait(self, request_id: str, timeout: float = 60.0, poll: float = 0.5) -> SteeringRequest:
        """Wait until a request is applied or rejected (or the timeout passes). When its
        run stops being live meanwhile (ended, or interrupted), a request still pending
        is rejected at once instead of waiting for nothing."""
        deadline = time.monotonic() + timeout
        while True:
            request = self.get(request_id)
            if request.status in (APPLIED, REJECTED) or time.monotonic() >= deadline:
                return request
            if request.status == PENDING:
                request = self._settle_if_not_live(request)
                if request.status in (APPLIED, REJECTED):
                    return request
            time.sleep(poll)

    # -- training side --------------------------------------------------------------
    def claim(self, run_id: str, claimer: str, limit: int = 50) -> list[SteeringRequest]:
        """Take the pending requests of a run; each goes to exactly one claimer.

        One indexed read when nothing is pending (the common case). Each pending request is
        then claimed in its own transaction that also creates the request's claim
        token, whose id is unique: of two pollers racing for a request, the loser's
        transaction is refused by the uniqueness constraint, on both engines.
        (Engine difference, see `cypher.STEERING["claim_one"]`.)
        """
        pending = self.store.read(STEERING["pending"], run=run_id, limit=limit).rows
        out = []
        for row in pending:
            try:
                rows = self.store.execute_write(
                    STEERING["claim_one"], id=row["id"], token=claim_token_id(row["id"]),
                    claimer=claimer, now=now_iso(),
                )  # fmt: skip
            except ClaimConflict:
                continue  # another poller took it
            out += [SteeringRequest.from_props(r["request"]) for r in rows]
        return out

    def resolve(
        self, request: SteeringRequest, status: str, reason: str | None = None, **props: Any
    ) -> bool:
        """Record the outcome (applied or rejected) of a request its claimer holds: the
        one write of a request's outcome, refused (False) unless the request is still
        claimed by `request.extra["claimedBy"]`, so an outcome is never overwritten.
        `props` are stored too (appliedEpoch, actionId); `request` is updated."""
        at = now_iso()
        rows = self.store.execute_write(
            STEERING["resolve"], id=request.node_id, claimed=CLAIMED, status=status,
            claimer=request.extra.get("claimedBy"), reason=reason, props=props, now=at,
        )  # fmt: skip
        request.status, request.status_reason = status, reason
        request.extra.update({"resolvedAtTime": at, **props})
        return bool(rows and rows[0]["resolved"])

    def pending_count(self, run_id: str) -> int:
        return self.store.read(STEERING["pending_count"], run=run_id).rows[0]["pending"]

    def reject_unapplied(self, run_id: str, reason: str) -> int:
        """Reject what is still pending or claimed (e.g. the run ended first)."""
        rows = self.store.execute_write(
            STEERING["reject_pending"], run=run_id, reason=reason, now=now_iso()
        )
        return rows[0]["rejected"] if rows else 0


def resolution_batch(
    request: SteeringRequest, status: str, reason: str | None = None, **extra: Any
) -> GraphBatch:
    """The request node updated to applied/rejected (merged by id; keeps its labels)."""
    request.status, request.status_reason = status, reason
    request.extra.update({"resolvedAtTime": now_iso(), **extra})
    batch = GraphBatch()
    batch.add_node(request.node_id, ENTITY, STEERING_REQUEST, **request.props())
    return batch


FINAL = (APPLIED, REJECTED)


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


def describe(request: SteeringRequest) -> str:
    """One line on a request and its outcome, for people."""
    if request.action == SET:
        what = f"set {request.hyperparameter}={json.dumps(request.value)}"
    elif request.action == NOTE:
        what = f"note {request.note!r}"
    else:
        what = "stop"
    head = f"request {request.request_id} ({what})"
    epoch = request.extra.get("appliedEpoch")
    if request.status == REJECTED:
        return f"{head} rejected: {request.status_reason}"
    if request.status == APPLIED:
        if request.action == SET:
            return f"{head} applied: in force from epoch {epoch}"
        if request.action == STOP:
            return f"{head} applied: the run stops after epoch {epoch}"
        if epoch is None:
            return f"{head} applied: recorded before the first epoch ended"
        return f"{head} applied: recorded after epoch {epoch}"
    return f"{head} {request.status}: not applied yet"
