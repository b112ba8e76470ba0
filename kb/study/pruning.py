"""The median pruning rule of a study (optional): stop a trial whose gain after epoch e is
worse than the median of the study's finished trials at e.

As Optuna's `MedianPruner`: from epoch `after_epoch` on (1-based), once at least
`min_trials` trials of the study have finished (run status completed, not pruned), a
trial is pruned at the first epoch where its best value of the gain metric so far (max or
min by the study's mode) is worse than the median of the finished trials' values at that
same epoch (the trials that reached it). The rule is stored on the study (`pruning`, JSON)
and applied by `provkb.Study.run`; a pruned run is `stopped_early` with `prunedEpoch`,
`prunedValue` and `pruneMedian` (`study-trial-status` counts it as pruned).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ...errors import ProvKBError
from ...ontology import (
    ACTIVITY,
    EPOCH,
    METRICS,
    STUDY,
    TRAINING_RUN,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    Prop,
    RunStatus,
    ids,
    metric_prop,
)
from ..store import Store

# Each finished (completed, not pruned) iteration run of a study: its epochs' values of
# one metric.
_FINISHED_VALUES = (
    f"MATCH (s:{ACTIVITY.label} {{{Prop.ID}: $study}}) WHERE s:{STUDY.label} "
    f"MATCH (r:{TRAINING_RUN.label})-[:{WAS_INFORMED_BY.rel_type}]->(s) "
    f"WHERE r.{Prop.STATUS} = $completed AND r.{Prop.PRUNED_EPOCH} IS NULL "
    f"MATCH (r)<-[:{WAS_INFORMED_BY.rel_type}]-(e:{EPOCH.label})"
    f"<-[:{WAS_GENERATED_BY.rel_type}]-(m:{METRICS.label}) "
    f"WITH r, e, m[$key] AS value WHERE value IS NOT NULL "
    f"RETURN r.{Prop.RUN_ID} AS run, e.{Prop.EPOCH} AS epoch, value "
    f"ORDER BY run, epoch"
)


@dataclass(frozen=True)
class MedianPruning:
    """Prune from epoch `after_epoch` once `min_trials` trials finished; `metric`:
    the metric compared (default: the study's gain metric)."""

    after_epoch: int = 1
    min_trials: int = 1
    metric: str | None = None

    def __post_init__(self) -> None:
        for name in ("after_epoch", "min_trials"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ProvKBError(f"pruning: {name} is an integer >= 1, got {value!r}")
        if self.metric is not None and (not isinstance(self.metric, str) or not self.metric):
            raise ProvKBError(f"pruning: metric is a metric name, got {self.metric!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any] | None) -> MedianPruning | None:
        if not text:
            return None
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(**data)


@dataclass
class Medians:
    """The finished trials' values per epoch, and how many trials finished."""

    trials: int
    by_epoch: dict[int, list[float]]

    def median(self, epoch: int) -> float | None:
        values = self.by_epoch.get(epoch) or []
        return statistics.median(values) if values else None


def finished_values(store: Store, study: str, metric: str) -> Medians:
    """What the rule compares with: the study's finished trials' values of `metric`."""
    rows = store.read(
        _FINISHED_VALUES,
        study=ids.study(study),
        completed=RunStatus.COMPLETED,
        key=metric_prop(metric),
    ).rows
    by_epoch: dict[int, list[float]] = {}
    runs = set()
    for row in rows:
        value = row["value"]
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            by_epoch.setdefault(int(row["epoch"]), []).append(float(value))
            runs.add(row["run"])
    return Medians(len(runs), by_epoch)


def judge(
    rule: MedianPruning, medians: Medians, mode: str, epoch: int, best: float | None
) -> float | None:
    """The median a trial is worse than at `epoch` (1-based) with `best` so far, or
    None when it is not pruned there."""
    if epoch < rule.after_epoch or medians.trials < rule.min_trials or best is None:
        return None
    median = medians.median(epoch)
    if median is None:
        return None
    worse = best > median if mode == "min" else best < median
    return median if worse else None
