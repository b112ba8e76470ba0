"""A run's summary: per-metric best values, sums and counts over its epochs.

Capture writes it on the run node at every epoch end (as `SummaryStat` properties named
by `summary_prop`: `summary.<stat>.<metric>`, plus the summed epoch seconds; a metric
name longer than `MAX_NAME_IN_KEY` is shortened there and kept whole in its
`long_name_prop`), so run-level questions such as "the run with the best val_accuracy"
or "mean loss per optimizer" read one node per run instead of every epoch of every
run. Only finite numbers count.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..ontology import Prop, SummaryStat, long_names, summary_prop


@dataclass
class _MetricSummary:
    max: float
    max_epoch: int
    min: float
    min_epoch: int
    sum: float = 0.0
    count: int = 0

    def add(self, epoch: int, value: float) -> None:
        if value > self.max:
            self.max, self.max_epoch = value, epoch
        if value < self.min:
            self.min, self.min_epoch = value, epoch
        self.sum += value
        self.count += 1


def _finite(value: Any) -> float | None:
    """A finite real number (NumPy scalars included) as float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class RunSummary:
    """Accumulates a run's epochs; `props()` is what its run node carries."""

    def __init__(self) -> None:
        self._metrics: dict[str, _MetricSummary] = {}
        self._epochs: set[int] = set()
        self.epoch_seconds = 0.0

    def add(self, epoch: int, elapsed: float | None, metrics: Mapping[str, Any]) -> None:
        """Count epoch `epoch` once (a repeated epoch number changes nothing)."""
        if epoch in self._epochs:
            return
        self._epochs.add(epoch)
        seconds = _finite(elapsed)
        if seconds is not None:
            self.epoch_seconds += seconds
        for key, raw in metrics.items():
            value = _finite(raw)
            if value is None:
                continue
            key = str(key)
            summary = self._metrics.get(key)
            if summary is None:
                self._metrics[key] = summary = _MetricSummary(value, epoch, value, epoch)
            summary.add(epoch, value)

    def props(self) -> dict[str, Any]:
        """The run properties: `epochSeconds` and every metric's statistics."""
        out: dict[str, Any] = {Prop.EPOCH_SECONDS: self.epoch_seconds}
        for key, s in self._metrics.items():
            out[summary_prop(SummaryStat.MAX, key)] = s.max
            out[summary_prop(SummaryStat.MAX_EPOCH, key)] = s.max_epoch
            out[summary_prop(SummaryStat.MIN, key)] = s.min
            out[summary_prop(SummaryStat.MIN_EPOCH, key)] = s.min_epoch
            out[summary_prop(SummaryStat.SUM, key)] = s.sum
            out[summary_prop(SummaryStat.COUNT, key)] = s.count
        out.update(long_names(*self._metrics))
        return out
