"""Steering: a person asks a running training to change; the run applies it.

`model` holds the request and its statuses, `rules` what a request may ask (one value
rule set, shared with capture), `requests` the store side (`Steering`: submit, claim,
resolve, wait), `api` the public `steer()`. The training side (poller, applier) lives
in `provkb.capture.steering`.
"""

from ..identity import default_person, host_name, now_iso, os_user
from .api import steer
from .model import (
    ACTIONS,
    APPLIED,
    CLAIMED,
    FINAL,
    NOTE,
    PENDING,
    REJECTED,
    SET,
    STOP,
    SteeringRequest,
    claim_token_id,
    describe,
    parse_value,
    person_node_id,
    request_batch,
    request_node_id,
    resolution_batch,
)
from .requests import Steering
from .rules import (
    NULLABLE,
    STEERABLE_OPTIMIZER,
    VALUE_RULES,
    ValueRule,
    check_value,
    not_live,
    optimizer_value_problem,
)

__all__ = [
    "ACTIONS", "APPLIED", "CLAIMED", "FINAL", "NOTE", "NULLABLE", "PENDING", "REJECTED",
    "SET", "STEERABLE_OPTIMIZER", "STOP", "VALUE_RULES", "Steering", "SteeringRequest",
    "ValueRule", "check_value", "claim_token_id", "default_person", "describe", "host_name",
    "not_live", "now_iso", "optimizer_value_problem", "os_user", "parse_value",
    "person_node_id", "request_batch", "request_node_id", "resolution_batch", "steer",
]  # fmt: skip
