"""Series arithmetic for the charts: moving averages and before/after windows.

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
