"""Steering requests in the store: submit, claim, resolve and wait (the rules: `rules`).

A request is stored as a pending `:Entity:SteeringRequest` attributed to the person,
linked to the latest metrics they could see. The training process claims pending
requests atomically (each is applied exactly once, whatever the number of pollers),
applies them at the next epoch boundary and records a `:SteeringAction`; the claimer
alone resolves a request (applied or rejected, once).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from ...errors import ClaimConflict, ProvKBError, SteeringRejected
from ...ontology import Prop
from ..cypher import STEERING
from ..identity import default_person, host_name, now_iso, os_user
from ..store import Store
from .model import (
    ACTIONS,
    CLAIMED,
    FINAL,
    PENDING,
    REJECTED,
    SET,
    SteeringRequest,
    claim_token_id,
    request_batch,
)
from .rules import action_problem, not_live, not_steerable, set_problem


class Steering:
    """Submit, claim and follow steering requests in a store."""

    _request_batch = staticmethod(request_batch)  # what submit writes (tests, benchmarks)

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
        self.store.write(request_batch(request))
        if request.status == PENDING:
            return self._settle_if_not_live(request)
        return request

    def run_state(self, run_id: str) -> dict[str, Any] | None:
        """The run with this id: runId, name, its shown status (`interrupted` when its
        process went silent), heartbeat, started; None when unknown."""
        rows = self.store.read(STEERING["find_run"], run=run_id).rows
        return next((r for r in rows if r["runId"] == run_id), None)

    def _settle_if_not_live(self, request: SteeringRequest) -> SteeringRequest:
        """Reject a pending request whose run is no longer live (taking its claim token,
        as a training would, so that of a late training claim and this, one wins)."""
        run = self.run_state(request.run_id)
        reason = not_live(request.run_id, run or {})
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
        """Why the request cannot apply (the rules of `rules`, on what the store holds)."""
        problem = not_live(request.run_id, run)
        if problem:
            return problem
        steerable = self.store.read(STEERING["run_steerable"], run=request.run_id).rows
        if steerable and steerable[0]["steerable"] is False:
            return not_steerable(request.run_id)
        problem = action_problem(request)
        if problem or request.action != SET:
            return problem
        rows = self.store.read(STEERING["current_hyperparameters"], run=request.run_id).rows
        return set_problem(request, {row["name"]: row for row in rows})

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
            if request.status in FINAL or time.monotonic() >= deadline:
                return request
            if request.status == PENDING:
                request = self._settle_if_not_live(request)
                if request.status in FINAL:
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
            claimer=request.extra.get(Prop.CLAIMED_BY), reason=reason, props=props, now=at,
        )  # fmt: skip
        request.status, request.status_reason = status, reason
        request.extra.update({Prop.RESOLVED_AT: at, **props})
        return bool(rows and rows[0]["resolved"])

    def pending_count(self, run_id: str) -> int:
        return self.store.read(STEERING["pending_count"], run=run_id).rows[0]["pending"]

    def reject_unapplied(self, run_id: str, reason: str) -> int:
        """Reject what is still pending or claimed (e.g. the run ended first)."""
        rows = self.store.execute_write(
            STEERING["reject_pending"], run=run_id, reason=reason, now=now_iso()
        )
        return rows[0]["rejected"] if rows else 0
