"""Named queries of search sessions and of Keras-Prov's Q5 and Q6 (issue 16).

- `study-lineage`: the chain of sessions that led to a study (kb/study/sessions.py).
- `study-trial-status`: per hyperparameter value, how a study's trials ended (finished,
  early stopping, steering stop, pruned, failed).
- `seed-q5`: the top N hyperparameter combinations by a metric, with a second metric.
- `seed-q6`: the N best epochs of one hyperparameter combination.

Same rules as `queries.library`: names from the ontology, values as parameters, the
portable Cypher subset, full ORDER BY tie-breaking, lists put in order by computed ranks.
q5 and q6 read run summaries (`summary.<stat>.<metric>`) and the runs' own hyperparameter
values (their USED edges), and q5 reads one epoch's metrics per answer row only.
"""

from __future__ import annotations

from ..ontology import (
    ACTIVITY,
    EPOCH,
    HYPERPARAMETER,
    METRICS,
    NARROWING,
    STUDY,
    TRAINING_RUN,
    TRIAL_ITEM,
    USED,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    HyperparameterName,
    Prop,
    RunStatus,
    SummaryStat,
    TrialOutcome,
    metric_prop,
    summary_prop,
)
from .spec import ChartHint, NamedQuery, Param

_RUN, _STUDY, _NARROWING = TRAINING_RUN.label, STUDY.label, NARROWING.label
_HP, _METRICS, _ITEM = HYPERPARAMETER.label, METRICS.label, TRIAL_ITEM.label
_USED, _INFORMED, _GEN = USED.rel_type, WAS_INFORMED_BY.rel_type, WAS_GENERATED_BY.rel_type
_EPOCH = EPOCH.label
P = Prop

MAX_SESSIONS = 20  # the longest chain study-lineage follows (a bounded path: cheaper on ArcadeDB)
_DEFAULT_COMBINATION = ",".join(
    (HyperparameterName.OPTIMIZER, HyperparameterName.LEARNING_RATE, HyperparameterName.BATCH_SIZE)
)

_CONSTANTS = {
    "summaryMax": summary_prop(SummaryStat.MAX, ""),
    "summaryMaxEpoch": summary_prop(SummaryStat.MAX_EPOCH, ""),
    "summaryMin": summary_prop(SummaryStat.MIN, ""),
    "summaryMinEpoch": summary_prop(SummaryStat.MIN_EPOCH, ""),
    "metricPrefix": metric_prop(""),
    "numericTypes": ("int", "float"),
    "listType": "list",
}


def _constants(*names: str) -> dict:
    return {name: _CONSTANTS[name] for name in names}


def _text(cypher: str) -> str:
    lines = cypher.strip("\n").splitlines()
    prefix = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    return "\n".join(line.removeprefix(prefix).rstrip() for line in lines).strip()


def _sorted(var: str) -> str:
    """List `var` (distinct values) in ascending order, by computed ranks."""
    return (
        f"[k IN range(0, size({var}) - 1) | "
        f"head([x IN {var} WHERE size([y IN {var} WHERE y < x]) = k])]"
    )


def _best(values: str, mode: str) -> str:
    """The best of list `values` (mode 'min' or else max); null when empty."""
    return (
        f"reduce(b = null, g IN {values} | CASE WHEN b IS NULL OR ({mode} = 'min' AND g < b) "
        f"OR ({mode} <> 'min' AND g > b) THEN g ELSE b END)"
    )


_STUDY_PARAM = Param("study", str, required=True, help="study name or node id")
_EXPERIMENT_PARAM = Param("experiment", str, help="only runs of this experiment (name)")

_FIND_STUDY = (
    f"MATCH (s:{ACTIVITY.label})\n"
    f"WHERE s:{_STUDY} AND (s.{P.ID} = $study OR s.{P.NAME} = $study)\n"
    f"WITH s ORDER BY CASE WHEN s.{P.ID} = $study THEN 0 ELSE 1 END LIMIT 1"
)

# The chain: a narrowed study WAS_INFORMED_BY its Narrowing, which WAS_INFORMED_BY the
# parent study; no other WAS_INFORMED_BY leaves a study or a narrowing (the kept trials
# are USED), and the path's nodes are checked to be only studies and narrowings.
_GAINS = (
    f"[(x)<-[:{_INFORMED}]-(r:{_RUN}) WHERE r.{P.GAIN} IS NOT NULL "
    f"AND r.{P.GAIN} = r.{P.GAIN} | r.{P.GAIN}]"
)
_KEPT = (
    f"CASE WHEN n IS NULL THEN [] ELSE [(n)-[u:{_USED}]->(i:{_ITEM}) | "
    f"{{rank: u.{P.RANK}, item: i.{P.ITEM_ID}, run: i.{P.RUN}, gain: i.{P.GAIN}}}] END"
)

STUDY_LINEAGE = NamedQuery(
    name="study-lineage",
    summary="The search sessions that led to a study, from the first to this one.",
    description=(
        "Follows the chain study <- Narrowing <- parent study back to the first session "
        f"(at most {MAX_SESSIONS}). One row per session, first first: its number, the "
        "study and its current space (JSON), the parent it was narrowed from, who "
        "started it (the narrowing's person; for the first session its creator), when, "
        "why, how many of the parent's best trials it kept (`top`) and which (their run "
        "ids, item numbers and gains, best first), what it narrowed, added or was given "
        "by hand, and the session's own trials so far with a gain and its best gain "
        "(by the study's mode)."
    ),
    cypher=_text(
        f"""
        {_FIND_STUDY}
        MATCH p = (s)-[:{_INFORMED}*0..{2 * MAX_SESSIONS}]->(x:{_STUDY})
        WHERE all(node IN nodes(p) WHERE node:{_STUDY} OR node:{_NARROWING})
        WITH DISTINCT x, length(p) / 2 AS back
        WITH collect({{x: x, back: back}}) AS chain
        WITH chain, reduce(m = 0, c IN chain | CASE WHEN c.back > m THEN c.back ELSE m END) AS last
        UNWIND chain AS c
        WITH c.x AS x, last - c.back + 1 AS session
        OPTIONAL MATCH (x)-[:{_INFORMED}]->(n:{_NARROWING})
        WITH x, session, n, {_GAINS} AS gains, {_KEPT} AS kept
        WITH x, session, n, gains,
             [k IN range(1, size(kept)) | head([t IN kept WHERE t.rank = k])] AS kept
        RETURN session, x.{P.NAME} AS study, x.{P.SPACE} AS space,
               n.{P.PARENT_STUDY} AS parent,
               coalesce(n.{P.PERSON}, x.{P.PERSON}) AS person,
               coalesce(n.{P.STARTED}, x.{P.CREATED}) AS at, n.{P.REASON} AS reason,
               n.{P.TOP} AS top, [t IN kept | t.run] AS keptRuns,
               [t IN kept | t.item] AS keptItems, [t IN kept | t.gain] AS keptGains,
               n.{P.NARROWED} AS narrowed, n.{P.ADDED} AS added, n.{P.GIVEN} AS given,
               size(gains) AS trials, {_best("gains", f"x.{P.MODE}")} AS bestGain,
               x.{P.MODE} AS mode
        ORDER BY session, study
        """
    ),
    params=(_STUDY_PARAM,),
    chart=ChartHint("bar", "study", ("bestGain",)),
)

_O = TrialOutcome
_OUTCOME = (
    f"CASE WHEN r.{P.STATUS} = '{RunStatus.FAILED}' THEN '{_O.FAILED}' "
    f"WHEN r.{P.PRUNED_EPOCH} IS NOT NULL THEN '{_O.PRUNED}' "
    f"WHEN r.{P.STATUS} = '{RunStatus.STOPPED_EARLY}' THEN '{_O.EARLY_STOPPING}' "
    f"WHEN r.{P.STATUS} = '{RunStatus.STOPPED}' THEN '{_O.STEERING_STOP}' "
    f"WHEN r.{P.STATUS} = '{RunStatus.COMPLETED}' THEN '{_O.FINISHED}' "
    f"ELSE r.{P.STATUS} END"
)


def _count(outcome: str) -> str:
    return f"sum(CASE WHEN outcome = '{outcome}' THEN 1 ELSE 0 END)"


STUDY_TRIAL_STATUS = NamedQuery(
    name="study-trial-status",
    summary="Per hyperparameter value: how many of a study's trials finished and how "
    "many were stopped early (early stopping, steering stop, pruning).",
    description=(
        "Over the study's iteration runs, grouped by each hyperparameter value a run "
        "used (its initial values): the trials, how many finished (completed), stopped "
        "early (`stoppedEarly` = earlyStopping + steeringStop + pruned: a callback such "
        "as EarlyStopping, a person's stop, the study's pruning rule), failed, or are "
        "still running. Without `hyperparameter`, only the hyperparameters whose value "
        "varies over the study's trials (the searched ones). Ordered by hyperparameter, "
        "then value."
    ),
    cypher=_text(
        f"""
        {_FIND_STUDY}
        MATCH (r:{_RUN})-[:{_INFORMED}]->(s)
        WITH r, {_OUTCOME} AS outcome
        MATCH (r)-[:{_USED}]->(h:{_HP})
        WHERE $hyperparameter IS NULL OR h.{P.NAME} = $hyperparameter
        WITH h.{P.NAME} AS hyperparameter, h.{P.VALUE} AS value, outcome
        WITH hyperparameter, value, count(*) AS trials,
             {_count(_O.FINISHED)} AS finished,
             {_count(_O.EARLY_STOPPING)} AS earlyStopping,
             {_count(_O.STEERING_STOP)} AS steeringStop,
             {_count(_O.PRUNED)} AS pruned, {_count(_O.FAILED)} AS failed
        WITH hyperparameter, collect({{value: value, trials: trials, finished: finished,
             earlyStopping: earlyStopping, steeringStop: steeringStop, pruned: pruned,
             failed: failed}}) AS byValue
        WHERE $hyperparameter IS NOT NULL OR size(byValue) > 1
        UNWIND byValue AS v
        RETURN hyperparameter, v.value AS value, v.trials AS trials,
               v.finished AS finished,
               v.earlyStopping + v.steeringStop + v.pruned AS stoppedEarly,
               v.earlyStopping AS earlyStopping, v.steeringStop AS steeringStop,
               v.pruned AS pruned, v.failed AS failed,
               v.trials - v.finished - v.earlyStopping - v.steeringStop - v.pruned
               - v.failed AS other
        ORDER BY hyperparameter, value
        """
    ),
    params=(
        _STUDY_PARAM,
        Param("hyperparameter", str, help="only this hyperparameter (default: the varying ones)"),
    ),
    chart=ChartHint("bar", "value", ("finished", "stoppedEarly"), series="hyperparameter"),
)

# -- Keras-Prov Q5 / Q6 ---------------------------------------------------------------
_NAMES = "[n IN split($hyperparameters, ',') WHERE trim(n) <> '' | trim(n)]"
# a run's initial values of the names (read once per run: one comprehension), then in
# the names' order (null where it has none)
_PAIRS_OF_RUN = (
    f"[(r)-[:{_USED}]->(h:{_HP}) WHERE h.{P.NAME} IN names | "
    f"[h.{P.NAME}, CASE WHEN h.{P.VALUE_TYPE} = $listType THEN null ELSE h.{P.VALUE} END]]"
)
_COMBO = "[n IN names | head([pair IN pairs WHERE pair[0] = n | pair[1]])]"
_COMBO_TEXT = (
    "reduce(t = '', i IN range(0, size(names) - 1) | t + CASE WHEN i > 0 THEN ',' ELSE '' END "
    "+ names[i] + '=' + coalesce(toString(combo[i]), ''))"
)
_DIRECTION = Param(
    "direction", str, default="asc", choices=("asc", "desc"), help="asc: lowest is best"
)

SEED_Q5 = NamedQuery(
    name="seed-q5",
    summary="The top N hyperparameter combinations by a metric, each with a second "
    "metric and its runs (Keras-Prov Q5).",
    description=(
        "Runs are grouped by their initial values of `hyperparameters` (comma-separated "
        "names; a missing value is empty). A run's score is the best value of `metric` "
        "over its epochs (its run summary: the min for direction asc, the max for desc); "
        "a combination's is the best over its runs. The `limit` best combinations, best "
        "first (ties by the best run's id): the combination as `name=value,...` text "
        "(what seed-q6 takes), its values, its runs (ids, sorted), the metric's best "
        "value with the run and epoch that reached it, and `second` (a metric key) at "
        "that same epoch of that run."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})
        WHERE $experiment IS NULL OR r.{P.EXPERIMENT} = $experiment
        WITH r, {_NAMES} AS names,
             CASE WHEN $direction = 'desc' THEN $summaryMax ELSE $summaryMin END
             + $metric AS key,
             CASE WHEN $direction = 'desc' THEN $summaryMaxEpoch ELSE $summaryMinEpoch END
             + $metric AS epochKey
        WITH r, names, r[key] AS value, r[epochKey] AS epoch
        WHERE value IS NOT NULL AND value = value
        WITH names, {_PAIRS_OF_RUN} AS pairs, r, value, epoch
        WITH names, {_COMBO} AS combo, r, value, epoch
        WITH names, combo,
             collect({{run: r.{P.RUN_ID}, node: r, value: value, epoch: epoch}}) AS rs,
             min(value) AS lo, max(value) AS hi, collect(r.{P.RUN_ID}) AS ids
        WITH names, combo, rs, ids, CASE WHEN $direction = 'desc' THEN hi ELSE lo END AS best
        WITH names, combo, ids, best,
             reduce(w = null, x IN [x IN rs WHERE x.value = best] |
                    CASE WHEN w IS NULL OR x.run < w.run THEN x ELSE w END) AS top
        ORDER BY CASE WHEN $direction = 'desc' THEN -best ELSE best END, top.run
        LIMIT $limit
        WITH names, combo, ids, best, top, top.node AS br
        OPTIONAL MATCH (br)<-[:{_INFORMED}]-(e:{_EPOCH} {{{P.EPOCH}: top.epoch}})
                       <-[:{_GEN}]-(m:{_METRICS})
        RETURN {_COMBO_TEXT} AS combination, names AS hyperparameters, combo AS `values`,
               size(ids) AS runs, {_sorted("ids")} AS runIds, $metric AS metric,
               best AS value, top.run AS bestRun, top.epoch AS epoch,
               $second AS second, m[$metricPrefix + $second] AS secondValue
        ORDER BY CASE WHEN $direction = 'desc' THEN -value ELSE value END, bestRun
        """
    ),
    params=(
        Param(
            "hyperparameters",
            str,
            default=_DEFAULT_COMBINATION,
            help="comma-separated hyperparameter names forming a combination",
        ),
        Param("metric", str, default="val_loss", help="metric key as Keras logs it"),
        _DIRECTION,
        Param("second", str, default="val_accuracy", help="second metric key, at the best epoch"),
        Param("limit", int, default=3, minimum=1, help="how many combinations"),
        _EXPERIMENT_PARAM,
    ),
    chart=ChartHint("bar", "combination", ("value", "secondValue")),
    constants=_constants(
        "summaryMax",
        "summaryMaxEpoch",
        "summaryMin",
        "summaryMinEpoch",
        "metricPrefix",
        "listType",
    ),
)

# One `name=value` pair of $combination matches a run's initial value of that name:
# numbers within the relative tolerance, anything else by its text.
_PAIRS = (
    "[pair IN [p IN split($combination, ',') WHERE trim(p) <> '' | split(p, '=')] "
    "| [trim(pair[0]), trim(reduce(t = '', i IN range(1, size(pair) - 1) | "
    "t + CASE WHEN i > 1 THEN '=' ELSE '' END + pair[i]))]]"
)
_MATCHES = (
    f"h.{P.NAME} = pair[0] AND "
    f"CASE WHEN h.{P.VALUE_TYPE} IN $numericTypes THEN toFloat(pair[1]) IS NOT NULL "
    f"AND abs(h.{P.VALUE} - toFloat(pair[1])) <= $tolerance * abs(toFloat(pair[1])) "
    f"WHEN h.{P.VALUE_TYPE} = $listType THEN false "
    f"ELSE toString(h.{P.VALUE}) = pair[1] END"
)

SEED_Q6 = NamedQuery(
    name="seed-q6",
    summary="The N best epochs by a metric of one hyperparameter combination, with "
    "epoch number and elapsed time (Keras-Prov Q6).",
    description=(
        "`combination` is `name=value,...` (as seed-q5 gives it): the runs whose initial "
        "value of every name matches (numbers within the relative `tolerance`, other "
        "values by their text). Over those runs' epochs, the `limit` best values of "
        "`metric` (lowest first for direction asc): run, epoch (1-based), the value, "
        "the epoch's elapsed seconds and its end time. Ties by run id, then epoch."
    ),
    cypher=_text(
        f"""
        WITH {_PAIRS} AS pairs
        WITH pairs, [pair IN pairs | pair[0]] AS names
        MATCH (r:{_RUN})
        WHERE size(pairs) > 0 AND ($experiment IS NULL OR r.{P.EXPERIMENT} = $experiment)
        WITH r, pairs, [(r)-[:{_USED}]->(h:{_HP}) WHERE h.{P.NAME} IN names | h] AS hs
        WHERE all(pair IN pairs WHERE any(h IN hs WHERE {_MATCHES}))
        MATCH (r)<-[:{_INFORMED}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
        WITH r, e, m, m[$metricPrefix + $metric] AS value
        WHERE value = value
        RETURN r.{P.NAME} AS run, r.{P.RUN_ID} AS runId, e.{P.EPOCH} AS epoch,
               $metric AS metric, value, coalesce(m.{P.ELAPSED}, e.{P.ELAPSED}) AS elapsedSeconds,
               e.{P.ENDED} AS endedAt
        ORDER BY CASE WHEN $direction = 'desc' THEN -value ELSE value END, runId, epoch
        LIMIT $limit
        """
    ),
    params=(
        Param(
            "combination",
            str,
            required=True,
            help="name=value,... e.g. learning_rate=0.01,batch_size=32 (seed-q5's combination)",
        ),
        Param("metric", str, default="loss", help="metric key as Keras logs it"),
        _DIRECTION,
        Param("limit", int, default=5, minimum=1, help="how many epochs"),
        Param("tolerance", float, default=1e-6, minimum=0, help="relative tolerance"),
        _EXPERIMENT_PARAM,
    ),
    chart=ChartHint("bar", "epoch", ("value",), series="runId"),
    constants=_constants("metricPrefix", "numericTypes", "listType"),
)

SESSION_QUERIES: tuple[NamedQuery, ...] = (
    STUDY_LINEAGE,
    STUDY_TRIAL_STATUS,
    SEED_Q5,
    SEED_Q6,
)

__all__ = ["SESSION_QUERIES", "SEED_Q5", "SEED_Q6", "STUDY_LINEAGE", "STUDY_TRIAL_STATUS"]


def check_params(name: str, params: dict) -> None:
    """Refuse what a text parameter of these queries cannot mean (QueryError naming it):
    seed-q6's `combination` must be `name=value` pairs."""
    from ..errors import QueryError

    if name != SEED_Q6.name or params.get("combination") is None:
        return
    pairs = [p.strip() for p in str(params["combination"]).split(",") if p.strip()]
    bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0].strip()]
    if not pairs or bad:
        raise QueryError(
            f"parameter 'combination' of query {name!r} is name=value pairs separated by "
            f"commas (e.g. learning_rate=0.01,batch_size=32), got {params['combination']!r}"
        )
