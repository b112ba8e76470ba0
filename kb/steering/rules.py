"""The rules of steering: which values a hyperparameter may take, which runs can apply.

One table (`VALUE_RULES`) holds the optimizer hyperparameters a person may change while
training and what each accepts. The requester checks a request with `check_value`
before storing it; the training checks it again when applying, together with what only
the live optimizer knows (`capture.model_info.steering_refusal`, which takes its value
rules from here too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...ontology import HyperparameterName, RunStatus
from .model import NOTE, SET, SteeringRequest


@dataclass(frozen=True)
class ValueRule:
    """What an optimizer hyperparameter accepts mid-run: a number within bounds (`low`,
    `high`, each inclusive or not) or a bool (`boolean`); `nullable`: also None (off)."""

    low: float = -math.inf
    low_inclusive: bool = False
    high: float = math.inf
    high_inclusive: bool = False
    nullable: bool = False
    boolean: bool = False

    def bounds_problem(self, name: str, value: float) -> str | None:
        """Why a number is out of bounds (None when it is within)."""
        too_low = value < self.low or (value == self.low and not self.low_inclusive)
        too_high = value > self.high or (value == self.high and not self.high_inclusive)
        if not (too_low or too_high):
            return None
        left, right = "[" if self.low_inclusive else "(", "]" if self.high_inclusive else ")"
        return f"{name} must be in {left}{self.low:g}, {self.high:g}{right}, got {value!r}"


_POSITIVE = ValueRule(0.0)
_UNIT = ValueRule(0.0, True, 1.0, False)  # [0, 1)
_OFF_OR_POSITIVE = ValueRule(0.0, nullable=True)

# Optimizer hyperparameters a person may set while training runs. Anything else (e.g.
# `amsgrad`, `centered`, `use_ema`) decides which slot variables the optimizer builds,
# so changing it mid-run cannot work.
VALUE_RULES: Mapping[str, ValueRule] = {
    HyperparameterName.LEARNING_RATE: _POSITIVE,
    "momentum": _UNIT,
    "nesterov": ValueRule(boolean=True),
    "beta_1": _UNIT,
    "beta_2": _UNIT,
    "rho": _UNIT,
    "epsilon": _POSITIVE,
    "weight_decay": ValueRule(0.0, True, nullable=True),
    "clipnorm": _OFF_OR_POSITIVE,
    "clipvalue": _OFF_OR_POSITIVE,
    "global_clipnorm": _OFF_OR_POSITIVE,
}
STEERABLE_OPTIMIZER = frozenset(VALUE_RULES)
NULLABLE = frozenset(name for name, rule in VALUE_RULES.items() if rule.nullable)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_value(name: str, value: Any, current: Any = None) -> str | None:
    """Why `value` is not acceptable for hyperparameter `name`, whose value is now
    `current` (None when it is): the same kind as now, finite, and within its rule's
    bounds (a number, for a bounded one)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    if isinstance(current, bool) != isinstance(value, bool):
        return f"{name} is {type(current).__name__}, got {type(value).__name__} {value!r}"
    if isinstance(current, int | float) and not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    if isinstance(current, str) and not isinstance(value, str):
        return f"{name} must be text, got {value!r}"
    rule = VALUE_RULES.get(name)
    if rule is None or rule.boolean:
        return None
    if not _is_number(value):
        return f"{name} must be a number, got {value!r}"
    return rule.bounds_problem(name, value)


def optimizer_value_problem(name: str, value: Any) -> str | None:
    """Why an optimizer can never hold `value` as `name` (None when it can): not one
    of `VALUE_RULES`, None where it cannot be switched off, the wrong kind."""
    rule = VALUE_RULES.get(name)
    if rule is None:
        return f"{name!r} cannot be changed while training"
    if value is None:
        return None if rule.nullable else f"{name} cannot be None"
    if rule.boolean:
        return None if isinstance(value, bool) else f"{name} must be true or false, got {value!r}"
    if not _is_number(value):
        return f"{name} must be a number, got {value!r}"
    return None


def not_live(run_id: str, run: Mapping[str, Any]) -> str | None:
    """Why nothing will apply a request to this run (None: it is live). `run` is what
    the steering reads give: its shown status, heartbeat, started."""
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


def not_steerable(run_id: str) -> str:
    """The refusal of a run started with steering switched off."""
    return (
        f"run {run_id} is not steerable (it was started with steering switched off, so "
        f"nothing reads requests)"
    )


def action_problem(request: SteeringRequest) -> str | None:
    """What is wrong with the request itself, whatever the run (None: nothing)."""
    if request.action == NOTE and not (request.note or "").strip():
        return "a note needs text"
    if request.action == SET and not request.hyperparameter:
        return "no hyperparameter named"
    return None


def set_problem(request: SteeringRequest, current: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why a `set` request cannot apply, given the run's current hyperparameters
    (name -> {value, steerable, ...}); None when it can."""
    if request.action != SET:
        return None
    row = current.get(request.hyperparameter or "")
    if row is None or not row.get("steerable"):
        steerable = sorted(n for n, r in current.items() if r.get("steerable"))
        return (
            f"{request.hyperparameter!r} is not a steerable hyperparameter of this run "
            f"(steerable: {', '.join(steerable) or 'none'})"
        )
    return check_value(request.hyperparameter or "", request.value, row.get("value"))
