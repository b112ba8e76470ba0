"""Series arithmetic for the charts: moving averages, TensorBoard's smoothing, metric
families and before/after windows.

The windows follow the `steering-impact` named query: for an event at `at` (an epoch,
or an iteration), `avgBefore` is the mean of the last k points before `at` and
`avgAfter` the mean of the first k points from `at` on; missing and NaN points are
skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def _ok(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def points(xs: Sequence[Any], ys: Sequence[Any]) -> list[tuple[float, float]]:
    """(x, y) pairs with a finite numeric y, ordered by x."""
    return sorted((x, float(y)) for x, y in zip(xs, ys, strict=False) if x is not None and _ok(y))


def moving_average(ys: Sequence[float], k: int) -> list[float | None]:
    """Mean of the last k values at each index (fewer at the start: None until k exist)."""
    out: list[float | None] = []
    for i in range(len(ys)):
        window = ys[max(0, i - k + 1) : i + 1]
        out.append(sum(window) / len(window) if len(window) == k else None)
    return out


def ema(ys: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: the debiased exponential moving average of `ys`.

    As TensorBoard's line chart (and W&B, which copies it) computes it: the average
    starts at 0 and each value is divided by `1 - weight**n` (n: points so far), so the
    first points are not pulled towards 0; a constant series, and every non-finite
    value, is kept as it is. `weight` 0 is no smoothing, close to 1 the most.
    """
    if not 0 <= weight < 1:
        raise ValueError(f"the smoothing weight must be in [0, 1), got {weight}")
    constant = all(y == ys[0] for y in ys)
    last, n, out = 0.0, 0, []
    for y in ys:
        if constant or not _ok(y):
            out.append(y)
            continue
        last = last * weight + (1 - weight) * y
        n += 1
        out.append(last / (1 - weight**n))
    return out


VALIDATION_PREFIX = "val_"
LOG_FAMILIES = ("learning_rate", "lr")  # drawn on a log axis by default


def family(key: str) -> str:
    """The panel of a metric key, as Keras' TensorBoard callback groups them: a
    validation metric (`val_loss`) joins its training metric (`loss`)."""
    return key[len(VALIDATION_PREFIX) :] if key.startswith(VALIDATION_PREFIX) else key


def families(keys: Sequence[str]) -> dict[str, list[str]]:
    """Metric keys by family, training key first: loss and accuracy lead, then the rest
    in the keys' order."""
    out: dict[str, list[str]] = {}
    for key in sorted(keys, key=lambda k: (k.startswith(VALIDATION_PREFIX), k)):
        out.setdefault(family(key), []).append(key)
    lead = [f for f in ("loss", "accuracy") if f in out]
    return {f: out[f] for f in [*lead, *sorted(f for f in out if f not in lead)]}


def default_log(name: str) -> bool:
    """Whether a family is drawn on a log axis unless asked otherwise (learning rates)."""
    return name in LOG_FAMILIES or name.endswith("learning_rate")


def axis_title(name: str) -> str:
    """The y-axis title of a family, with its unit."""
    if name.endswith(("seconds", "_time")):
        return f"{name.replace('_', ' ')} (s)"
    if "accuracy" in name or name in ("auc", "precision", "recall"):
        return f"{name.replace('_', ' ')} (fraction, 0-1)"
    if default_log(name):
        return "learning rate (per step)"
    if name.endswith("loss"):
        return f"{name.replace('_', ' ')} (loss function value)"
    return name.replace("_", " ")


def trailing_mean(ys: Sequence[float], k: int) -> list[float]:
    """Mean of up to the last k values at each index (defined from the first point)."""
    out = []
    for i in range(len(ys)):
        window = ys[max(0, i - k + 1) : i + 1]
        out.append(sum(window) / len(window))
    return out


@dataclass(frozen=True)
class Window:
    """Means of up to k points before an event and from it on."""

    before: float | None
    after: float | None
    points_before: int
    points_after: int

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


def around(pts: Sequence[tuple[float, float]], at: float, k: int) -> Window:
    """The moving averages before and after `at` (see the module doc)."""
    before = [y for x, y in pts if x < at][-k:] if k > 0 else []
    after = [y for x, y in pts if x >= at][:k] if k > 0 else []
    return Window(
        sum(before) / len(before) if before else None,
        sum(after) / len(after) if after else None,
        len(before),
        len(after),
    )


def step_series(
    versions: Sequence[dict[str, Any]], last_epoch: int
) -> tuple[list[float], list[Any]]:
    """A hyperparameter's value over epochs as a step line: one point per version's
    fromEpoch, plus the last epoch (holding the last value)."""
    ordered = sorted(versions, key=lambda v: (v.get("fromEpoch") or 1, v.get("version") or 0))
    xs: list[float] = []
    ys: list[Any] = []
    for v in ordered:
        x = v.get("fromEpoch") or 1
        if xs and xs[-1] == x:
            ys[-1] = v.get("value")
            continue
        xs.append(x)
        ys.append(v.get("value"))
    if xs and last_epoch > xs[-1]:
        xs.append(last_epoch)
        ys.append(ys[-1])
    return xs, ys
