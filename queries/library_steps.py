"""`steps`: a run's per-step series of one metric, downsampled in Cypher.

The points are the `MetricSeries` parts capture wrote (`capture.step_series`: arrays
`steps` and `values` per epoch and metric). Up to `max_points` points come back as
they are; a longer series is cut into `max_points - 2` buckets of equal step ranges
between its first and its last point, which stay points of their own, so the answer
keeps the first and last point exactly and every bucket's bounds (the series' min and
max are among them). Bucket statistics are over finite values (NaN and infinities are
counted in `points` only). Same text on Neo4j 5 and ArcadeDB.
"""

from __future__ import annotations

from ..ontology import ENTITY, METRIC_SERIES, Prop
from .library import _RUN_PARAM, _find_run, _text
from .spec import ChartHint, NamedQuery, Param

DEFAULT_MAX_POINTS = 1000
MIN_MAX_POINTS = 3  # the first point, the last point and one bucket between
_FINITE = "1.0E308"  # |v| below it: a finite double (NaN fails every comparison)

_S = METRIC_SERIES.label
_FIRST, _LAST, _STEPS, _VALUES = Prop.FIRST_STEP, Prop.LAST_STEP, Prop.STEPS, Prop.VALUES


def _finite(value: str) -> str:
    return f"CASE WHEN {value} > -{_FINITE} AND {value} < {_FINITE} THEN {value} END"


STEPS = NamedQuery(
    name="steps",
    summary="A run's per-step values of one metric (log_every_n_steps), downsampled.",
    description=(
        "One row per logged training step (step = the run's 1-based batch number) of the "
        "metric, in step order, with the epoch it belongs to: `value`, and `min`, `max` "
        "equal to it. A series longer than max_points is downsampled: its first and last "
        "points stay as they are, the steps between are cut into max_points - 2 buckets "
        "of equal step ranges, one row each: `step` and `lastStep` (its first and last "
        "step), `value` (the mean), `min`, `max` and `points` (how many steps it holds). "
        "Statistics skip NaN and infinite values. Optionally one epoch only."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        MATCH (s:{ENTITY.label} {{{Prop.RUN_ID}: r.{Prop.RUN_ID}}})
        WHERE s:{_S} AND s.{Prop.METRIC} = $metric AND ($epoch IS NULL OR s.{Prop.EPOCH} = $epoch)
        WITH collect(s) AS parts, min(s.{_FIRST}) AS firstStep, max(s.{_LAST}) AS lastStep,
             sum(s.{Prop.POINTS}) AS total
        UNWIND parts AS s
        UNWIND range(0, size(s.{_STEPS}) - 1) AS i
        WITH firstStep, lastStep, total, s.{Prop.EPOCH} AS epoch, s.{_STEPS}[i] AS step,
             s.{_VALUES}[i] AS value
        WITH epoch, step, value,
             CASE WHEN total <= $max_points OR step = firstStep THEN step
                  WHEN step = lastStep THEN lastStep + 1
                  ELSE firstStep + 1
                       + toInteger((step - firstStep - 1) * ($max_points - 2)
                                   / (lastStep - firstStep - 1))
             END AS bucket
        WITH bucket, min(epoch) AS epoch, min(step) AS step, max(step) AS lastStep,
             count(*) AS points, collect(value) AS raw, avg({_finite("value")}) AS mean,
             min({_finite("value")}) AS low, max({_finite("value")}) AS high
        RETURN epoch, step, lastStep, CASE WHEN points = 1 THEN raw[0] ELSE mean END AS value,
               low AS min, high AS max, points
        ORDER BY step
        """
    ),
    params=(
        _RUN_PARAM,
        Param("metric", str, required=True, help="the metric's name, as Keras logged it"),
        Param(
            "max_points",
            int,
            default=DEFAULT_MAX_POINTS,
            minimum=MIN_MAX_POINTS,
            help="at most this many rows (longer series are downsampled)",
        ),
        Param("epoch", int, minimum=1, help="only this epoch (1-based)"),
    ),
    chart=ChartHint("line", "step", ("value", "min", "max")),
)

# The app's reads (queries/app.py): which metrics a run has step series of, and one's
# points (the `steps` text above, every epoch).
STEP_METRICS = _text(
    f"""
    MATCH (s:{ENTITY.label} {{{Prop.RUN_ID}: $run}}) WHERE s:{_S}
    RETURN DISTINCT s.{Prop.METRIC} AS metric
    ORDER BY metric
    """
)
