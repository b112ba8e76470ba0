"""The steering request model: actions, statuses, the stored request and its outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...ontology import (
    AGENT,
    ENTITY,
    PERSON,
    STEERING_REQUEST,
    WAS_ATTRIBUTED_TO,
    Prop,
    SteeringActionKind,
    SteeringStatus,
    ids,
)
from ..identity import now_iso
from ..records import GraphBatch

SET, STOP, NOTE = SteeringActionKind.SET, SteeringActionKind.STOP, SteeringActionKind.NOTE
ACTIONS = (SET, STOP, NOTE)
PENDING, CLAIMED = SteeringStatus.PENDING, SteeringStatus.CLAIMED
APPLIED, REJECTED = SteeringStatus.APPLIED, SteeringStatus.REJECTED
FINAL = (APPLIED, REJECTED)

claim_token_id = ids.steering_claim
request_node_id = ids.steering_request
person_node_id = ids.person

# The request's own properties (the others travel in `extra`).
_KNOWN = frozenset(
    {
        Prop.RUN_ID, Prop.REQUEST_ID, Prop.ACTION, Prop.HYPERPARAMETER, Prop.REQUESTED_VALUE,
        Prop.REASON, Prop.NOTE, Prop.PERSON, Prop.REQUESTED_AT, Prop.STATUS,
        Prop.STATUS_REASON, Prop.SEEN_METRICS, Prop.SEEN_EPOCH, Prop.ID, Prop.OS_USER,
        Prop.HOST, Prop.CLIENT_ADDRESS,
    }
)  # fmt: skip


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
            Prop.REQUEST_ID: self.request_id,
            Prop.ACTION: self.action,
            Prop.HYPERPARAMETER: self.hyperparameter,
            Prop.REQUESTED_VALUE: None if self.value is None else json.dumps(self.value),
            Prop.REASON: self.reason,
            Prop.NOTE: self.note,
            Prop.PERSON: self.person,
            Prop.REQUESTED_AT: self.requested_at,
            Prop.STATUS: self.status,
            Prop.STATUS_REASON: self.status_reason,
            Prop.SEEN_METRICS: self.seen_metrics,
            Prop.SEEN_EPOCH: self.seen_epoch,
            Prop.OS_USER: self.os_user,
            Prop.HOST: self.host,
            Prop.CLIENT_ADDRESS: self.client_address,
            **self.extra,
        }

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> SteeringRequest:
        raw = props.get(Prop.REQUESTED_VALUE)
        return cls(
            request_id=props[Prop.REQUEST_ID],
            run_id=props[Prop.RUN_ID],
            action=props[Prop.ACTION],
            hyperparameter=props.get(Prop.HYPERPARAMETER),
            value=None if raw is None else json.loads(raw),
            reason=props.get(Prop.REASON),
            note=props.get(Prop.NOTE),
            person=props.get(Prop.PERSON, ""),
            requested_at=props.get(Prop.REQUESTED_AT, ""),
            status=props.get(Prop.STATUS, PENDING),
            status_reason=props.get(Prop.STATUS_REASON),
            seen_metrics=props.get(Prop.SEEN_METRICS),
            seen_epoch=props.get(Prop.SEEN_EPOCH),
            os_user=props.get(Prop.OS_USER),
            host=props.get(Prop.HOST),
            client_address=props.get(Prop.CLIENT_ADDRESS),
            extra={k: v for k, v in props.items() if k not in _KNOWN},
        )


def request_batch(request: SteeringRequest) -> GraphBatch:
    """The request node, attributed to its person."""
    batch = GraphBatch()
    person = batch.add_node(person_node_id(request.person), AGENT, PERSON, name=request.person)
    node = batch.add_node(request.node_id, ENTITY, STEERING_REQUEST, **request.props())
    batch.add_edge(WAS_ATTRIBUTED_TO, node, person)
    return batch


def resolution_batch(
    request: SteeringRequest, status: str, reason: str | None = None, **extra: Any
) -> GraphBatch:
    """The request node updated to applied/rejected (merged by id; keeps its labels)."""
    request.status, request.status_reason = status, reason
    request.extra.update({Prop.RESOLVED_AT: now_iso(), **extra})
    batch = GraphBatch()
    batch.add_node(request.node_id, ENTITY, STEERING_REQUEST, **request.props())
    return batch


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


def describe(request: SteeringRequest) -> str:
    """One line on a request and its outcome, for people."""
    if request.action == SET:
        what = f"set {request.hyperparameter}={json.dumps(request.value)}"
    elif request.action == NOTE:
        what = f"note {request.note!r}"
    else:
        what = "stop"
    head = f"request {request.request_id} ({what})"
    epoch = request.extra.get(Prop.APPLIED_EPOCH)
    if request.status == REJECTED:
        return f"{head} rejected: {request.status_reason}"
    if request.status == APPLIED:
        if request.action == SET:  # the reason says more when a schedule was paused
            more = f" ({request.status_reason})" if request.status_reason else ""
            return f"{head} applied: in force from epoch {epoch}{more}"
        if request.action == STOP:
            return f"{head} applied: the run stops after epoch {epoch}"
        if epoch is None:
            return f"{head} applied: recorded before the first epoch ended"
        return f"{head} applied: recorded after epoch {epoch}"
    return f"{head} {request.status}: not applied yet"
