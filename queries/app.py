"""The app's reads: named, parameterised Cypher built from the ontology, and the
functions that run them and shape their rows.

Labels, relationship types and property names come from `provkb.ontology` (and the
steering property names from `provkb.queries.library.Steer`); values, including data
such as metric keys and hyperparameter names, always travel as parameters. The same
texts run on Neo4j 5 and on the embedded ArcadeDB. The app's pages never hold Cypher:
they call these functions (through `ui.common.load`, which caches them).

Lists that can grow with the knowledge base are filtered, ordered and paged here, in
Cypher (SKIP/LIMIT), and aggregated here (counts, best metrics), so a page with 1,000
runs in the store reads one page of rows. Lookups by run go through the core label and
`runId` (the indexed pair, see `kb.cypher.schema_statements`), then test the domain label.

Every function takes a `Reader` (a `KnowledgeBase` or a `Store`: anything with
`read(query, **params)`) and returns plain Python (lists of dicts, dicts), ready for
`st.cache_data`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ..errors import QueryError
from ..ontology import (
    ACTIVITY,
    ADAPTATION,
    AGENT,
    ENTITY,
    EPOCH,
    HYPERPARAMETER,
    KINDS,
    LAYER,
    LONG_NAME_PREFIX,
    METRICS,
    MODEL,
    NARROWING,
    PROJECT,
    STEERING_ACTION,
    STEERING_REQUEST,
    STUDY,
    STUDY_STATE,
    TRAINING_RUN,
    TRIAL_ITEM,
    USED,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    Prop,
    RunStatus,
    ids,
    metric_prop,
    metric_values,
)
from .library import HP, Metric, Steer, shown_status
from .library_sessions import MAX_SESSIONS
from .library_steps import DEFAULT_MAX_POINTS, STEP_METRICS, STEPS


class Rows(Protocol):
    rows: list[dict[str, Any]]


class Reader(Protocol):
    """What runs the texts: `KnowledgeBase.read` or `Store.read`."""

    def read(self, query: str, /, **params: Any) -> Rows: ...


# Short names for the texts below.
_E, _A, _G = ENTITY.label, ACTIVITY.label, AGENT.label
_RUN, _EPOCH, _METRICS, _HP = TRAINING_RUN.label, EPOCH.label, METRICS.label, HYPERPARAMETER.label
_USED, _GEN, _INF = USED.rel_type, WAS_GENERATED_BY.rel_type, WAS_INFORMED_BY.rel_type
_ID, _RID, _NAME, _STATUS, _STARTED = Prop.ID, Prop.RUN_ID, Prop.NAME, Prop.STATUS, Prop.STARTED

TEST_KIND = "test"  # `kind` of the Metrics an evaluation generated
GAIN = Steer.GAIN  # an iteration run's gain (studies)

# The first page of the Overview shows these initial hyperparameter values.
KEY_HYPERPARAMETERS = (HP.OPTIMIZER, HP.LEARNING_RATE, HP.BATCH_SIZE)
STATUSES = (
    RunStatus.RUNNING,
    RunStatus.COMPLETED,
    RunStatus.STOPPED_EARLY,
    RunStatus.STOPPED,
    RunStatus.FAILED,
    RunStatus.INTERRUPTED,
)
# The status a page shows: a `running` run whose process went silent is `interrupted`.
_SHOWN = shown_status("r")

_RUN_FILTER = f"""($project IS NULL OR r.{Prop.PROJECT} = $project)
  AND ($experiment IS NULL OR r.{Prop.EXPERIMENT} = $experiment)
  AND ($study IS NULL OR r.{Steer.STUDY} = $study)
  AND ($studies IS NULL OR r.{Steer.STUDY} IN $studies)
  AND ($statuses IS NULL OR {_SHOWN} IN $statuses)
  AND ($runIds IS NULL OR r.{_RID} IN $runIds)
  AND ($search IS NULL OR toLower(coalesce(r.{_NAME}, '')) CONTAINS $search
       OR r.{_RID} CONTAINS $search
       OR toLower(coalesce(r.{Prop.EXPERIMENT}, '')) CONTAINS $search)"""

_NEWEST_FIRST = f"coalesce(r.{_STARTED}, '') DESC, r.{_RID}"


def _filters(
    project: str | None = None,
    experiment: str | None = None,
    study: str | None = None,
    statuses: Sequence[str] | None = None,
    search: str | None = None,
    run_ids: Sequence[str] | None = None,
    studies: Sequence[str] | None = None,
) -> dict[str, Any]:
    text = (search or "").strip().lower()
    return {
        "project": project or None,
        "experiment": experiment or None,
        "study": study or None,
        "studies": list(studies) if studies else None,
        "statuses": list(statuses) if statuses else None,
        "search": text or None,
        "runIds": list(run_ids) if run_ids else None,
    }


def _rows(kb: Reader, query: str, /, **params: Any) -> list[dict[str, Any]]:
    return kb.read(query, **params).rows


# -- examples shown to people (the console's starting text, the demo's hint) -------------
EXAMPLE_CONSOLE = (
    f"MATCH (r:{_RUN})\n"
    f"RETURN r.{_NAME} AS run, r.{_STATUS} AS status, r.{Prop.EPOCHS_COMPLETED} AS epochs\n"
    "ORDER BY run LIMIT 25"
)
EXAMPLE_ADAPTATIONS = (
    f"MATCH (a:{ADAPTATION.label}) "
    f"RETURN a.{_RID}, a.{Prop.EPOCH}, a.{Prop.OLD_VALUE}, a.{Prop.NEW_VALUE}"
)


# -- overview --------------------------------------------------------------------------
STATUS_COUNTS = f"MATCH (r:{_RUN}) RETURN {_SHOWN} AS status, count(r) AS runs ORDER BY status"
STUDY_COUNT = f"MATCH (s:{STUDY.label}) RETURN count(s) AS studies"
PROJECT_COUNT = f"MATCH (p:{PROJECT.label}) RETURN count(p) AS projects"


def status_counts(kb: Reader) -> dict[str, int]:
    """Runs per status (an empty dict: no runs at all)."""
    return {row["status"] or "unknown": row["runs"] for row in _rows(kb, STATUS_COUNTS)}


def study_count(kb: Reader) -> int:
    return _rows(kb, STUDY_COUNT)[0]["studies"]


EXPERIMENTS = f"""
MATCH (r:{_RUN})
WITH coalesce(r.{Prop.PROJECT}, '') AS project, coalesce(r.{Prop.EXPERIMENT}, '') AS experiment,
     coalesce({_SHOWN}, 'unknown') AS status, r
RETURN project, experiment, status, count(r) AS runs, max(r.{_STARTED}) AS lastStarted
ORDER BY project, experiment, status
"""


def experiments(kb: Reader) -> list[dict[str, Any]]:
    """One row per (project, experiment) with its runs per status and the latest start."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _rows(kb, EXPERIMENTS):
        key = (row["project"], row["experiment"])
        entry = grouped.setdefault(
            key,
            {"project": key[0], "experiment": key[1], "runs": 0, "lastStarted": None}
            | dict.fromkeys(STATUSES, 0),
        )
        entry["runs"] += row["runs"]
        entry[row["status"]] = entry.get(row["status"], 0) + row["runs"]
        if row["lastStarted"] and (entry["lastStarted"] or "") < row["lastStarted"]:
            entry["lastStarted"] = row["lastStarted"]
    return list(grouped.values())


RUN_COUNT = f"MATCH (r:{_RUN}) WHERE {_RUN_FILTER} RETURN count(r) AS total"

# Overview sorting (over all matching runs, before paging): sort key -> the Cypher that
# gives each run its `sortValue`. A whitelist: the page's choice picks a text, no user
# text is ever part of one. Runs without a value come last in both directions.
_BEST_METRIC = (
    f"OPTIONAL MATCH (r)<-[:{_INF}]-(:{_EPOCH})<-[:{_GEN}]-(sm:{_METRICS})\n"
    "WITH r, {agg}(sm[${param}]) AS sortValue"
)
_INITIAL_HP = (
    f"OPTIONAL MATCH (r)-[:{_USED}]->(sh:{_HP} {{{{{_NAME}: ${{param}}}}}})\n"
    f"WITH r, head(collect(sh.{Prop.VALUE})) AS sortValue"
)
RUN_SORTS: dict[str, str] = {
    "startedAtTime": f"WITH r, r.{_STARTED} AS sortValue",
    "name": f"WITH r, toLower(r.{_NAME}) AS sortValue",
    "status": f"WITH r, {_SHOWN} AS sortValue",
    "experiment": f"WITH r, r.{Prop.EXPERIMENT} AS sortValue",
    "project": f"WITH r, r.{Prop.PROJECT} AS sortValue",
    "study": f"WITH r, r.{Steer.STUDY} AS sortValue",
    "iteration": f"WITH r, r.{Steer.ITERATION} AS sortValue",
    "epochsCompleted": f"WITH r, r.{Prop.EPOCHS_COMPLETED} AS sortValue",
    "gain": f"WITH r, r.{GAIN} AS sortValue",
    "runId": f"WITH r, r.{_RID} AS sortValue",
    "best_val_accuracy": _BEST_METRIC.format(agg="max", param="valAccuracy"),
    "best_val_loss": _BEST_METRIC.format(agg="min", param="valLoss"),
    "best_accuracy": _BEST_METRIC.format(agg="max", param="accuracy"),
    "best_loss": _BEST_METRIC.format(agg="min", param="loss"),
    "optimizer": _INITIAL_HP.format(param="hpOptimizer"),
    "learning_rate": _INITIAL_HP.format(param="hpLearningRate"),
    "batch_size": _INITIAL_HP.format(param="hpBatchSize"),
}
SORT_DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
DEFAULT_SORT = ("startedAtTime", "desc")  # newest first


def _runs_page_text(sort: str, direction: str) -> str:
    """The page of runs ordered by `sort` (a key of RUN_SORTS) in `direction`."""
    order = (
        f"CASE WHEN sortValue IS NULL THEN 1 ELSE 0 END, sortValue {SORT_DIRECTIONS[direction]}, "
        f"runId"
    )
    return f"""
MATCH (r:{_RUN}) WHERE {_RUN_FILTER}
{RUN_SORTS[sort]}
WITH r, sortValue, r.{_RID} AS runId
ORDER BY {order} SKIP $skip LIMIT $limit
OPTIONAL MATCH (r)<-[:{_INF}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
WITH r, sortValue, runId, max(m[$valAccuracy]) AS bestValAccuracy,
     min(m[$valLoss]) AS bestValLoss, max(m[$accuracy]) AS bestAccuracy, min(m[$loss]) AS bestLoss
OPTIONAL MATCH (r)-[:{_USED}]->(opt:{_HP} {{{_NAME}: $hpOptimizer}})
OPTIONAL MATCH (r)-[:{_USED}]->(lr:{_HP} {{{_NAME}: $hpLearningRate}})
OPTIONAL MATCH (r)-[:{_USED}]->(bs:{_HP} {{{_NAME}: $hpBatchSize}})
RETURN runId, r.{_NAME} AS name, {_SHOWN} AS status,
       r.{Prop.PROJECT} AS project, r.{Prop.EXPERIMENT} AS experiment,
       r.{Steer.STUDY} AS study, r.{Steer.ITERATION} AS iteration,
       r.{_STARTED} AS startedAtTime, r.{Prop.EPOCHS_COMPLETED} AS epochsCompleted,
       r.{Prop.EPOCHS_PLANNED} AS epochsPlanned,
       opt.{Prop.VALUE} AS optimizer, lr.{Prop.VALUE} AS learning_rate,
       bs.{Prop.VALUE} AS batch_size, bestValAccuracy AS best_val_accuracy,
       bestValLoss AS best_val_loss, bestAccuracy AS best_accuracy, bestLoss AS best_loss,
       r.{GAIN} AS gain
ORDER BY {order}
"""


_RUNS_PAGES = {(s, d): _runs_page_text(s, d) for s in RUN_SORTS for d in SORT_DIRECTIONS}
RUNS_PAGE = _RUNS_PAGES[DEFAULT_SORT]


_METRIC_NAMES = {  # the Metrics properties of these keys (ontology.metric_prop)
    "valAccuracy": metric_prop(Metric.VAL_ACCURACY),
    "valLoss": metric_prop(Metric.VAL_LOSS),
    "accuracy": metric_prop(Metric.ACCURACY),
    "loss": metric_prop(Metric.LOSS),
}
_HP_NAMES = {
    "hpOptimizer": HP.OPTIMIZER,
    "hpLearningRate": HP.LEARNING_RATE,
    "hpBatchSize": HP.BATCH_SIZE,
}


def run_count(kb: Reader, **filters: Any) -> int:
    """How many runs match the filters (see `_filters`)."""
    return _rows(kb, RUN_COUNT, **_filters(**filters))[0]["total"]


def runs_page(
    kb: Reader,
    skip: int = 0,
    limit: int = 25,
    sort: str = DEFAULT_SORT[0],
    direction: str = DEFAULT_SORT[1],
    **filters: Any,
) -> list[dict[str, Any]]:
    """One page of runs (status, key hyperparameters, best metrics), sorted over all
    matching runs by `sort` (a key of RUN_SORTS) in `direction` (`asc`/`desc`), runs
    without a value last; newest first by default."""
    text = _RUNS_PAGES.get((sort, direction))
    if text is None:
        raise QueryError(
            f"cannot sort runs by {sort!r} {direction!r}: sort by one of "
            f"{', '.join(RUN_SORTS)}, direction asc or desc"
        )
    params = {**_filters(**filters), **_METRIC_NAMES, **_HP_NAMES}
    return _rows(kb, text, skip=int(skip), limit=int(limit), **params)


RUN_CHOICES = f"""
MATCH (r:{_RUN}) WHERE {_RUN_FILTER}
RETURN r.{_RID} AS runId, r.{_NAME} AS name, r.{Prop.EXPERIMENT} AS experiment,
       {_SHOWN} AS status, r.{_STARTED} AS startedAtTime
ORDER BY CASE WHEN status = $running THEN 0 ELSE 1 END, coalesce(startedAtTime, '') DESC, runId
LIMIT $limit
"""


def run_choices(kb: Reader, limit: int = 200, **filters: Any) -> list[dict[str, Any]]:
    """Runs to pick from: running ones first, then the newest."""
    return _rows(
        kb, RUN_CHOICES, limit=int(limit), running=RunStatus.RUNNING, **_filters(**filters)
    )


NAMES = f"""
MATCH (r:{_RUN})
RETURN collect(DISTINCT r.{Prop.PROJECT}) AS projects,
       collect(DISTINCT r.{Prop.EXPERIMENT}) AS experiments,
       collect(DISTINCT r.{Steer.STUDY}) AS studies
"""


def filter_choices(kb: Reader) -> dict[str, list[str]]:
    """Distinct projects, experiments and studies of the runs (sorted)."""
    rows = _rows(kb, NAMES)
    row = rows[0] if rows else {}
    return {
        k: sorted(v for v in (row.get(k) or []) if v)
        for k in ("projects", "experiments", "studies")
    }


# -- one run ---------------------------------------------------------------------------
def _by_run(var: str, label: str, where: str = "") -> str:
    extra = f" AND {where}" if where else ""
    core = KINDS_BY_DOMAIN[label]
    return f"MATCH ({var}:{core} {{{_RID}: $run}}) WHERE {var}:{label}{extra}"


KINDS_BY_DOMAIN = {
    TRAINING_RUN.label: _A,
    EPOCH.label: _A,
    ADAPTATION.label: _A,
    STEERING_ACTION.label: _A,
    METRICS.label: _E,
    HYPERPARAMETER.label: _E,
    LAYER.label: _E,
    MODEL.label: _E,
    STEERING_REQUEST.label: _E,
}

RUN = f"{_by_run('r', _RUN)} RETURN properties(r) AS props"
RUN_METRICS = (
    f"{_by_run('m', _METRICS, f'm.{Prop.EPOCH} IS NOT NULL')} "
    f"RETURN properties(m) AS props ORDER BY m.{Prop.EPOCH}"
)
RUN_TEST_METRICS = (
    f"{_by_run('m', _METRICS, f'm.{Prop.KIND} = $testKind')} "
    f"RETURN properties(m) AS props ORDER BY m.{_ID}"
)
RUN_EVENTS = (
    f"MATCH (a:{_A} {{{_RID}: $run}}) WHERE a:{ADAPTATION.label} OR a:{STEERING_ACTION.label} "
    f"RETURN CASE WHEN a:{STEERING_ACTION.label} THEN 'steering' ELSE 'adaptation' END AS source, "
    f"properties(a) AS props "
    f"ORDER BY coalesce(a.{Prop.EPOCH}, 0), coalesce(a.{_STARTED}, ''), a.{_ID}"
)
RUN_HYPERPARAMETERS = (
    f"{_by_run('h', _HP)} "
    f"RETURN h.{_ID} AS id, h.{_NAME} AS name, h.{Prop.VALUE} AS value, "
    f"h.{Prop.VALUE_TYPE} AS valueType, h.{Prop.SOURCE} AS source, "
    f"h.{Prop.FROM_EPOCH} AS fromEpoch, h.{Prop.VERSION} AS version, "
    f"h.{Prop.STEERABLE} AS steerable "
    f"ORDER BY name, version"
)
RUN_REQUESTS = (
    f"{_by_run('q', STEERING_REQUEST.label)} RETURN properties(q) AS props "
    f"ORDER BY coalesce(q.{Steer.REQUESTED_AT}, '') DESC, q.{_ID} LIMIT $limit"
)
RUN_LAYERS = f"{_by_run('l', LAYER.label)} RETURN properties(l) AS props ORDER BY l.{Prop.INDEX}"
RUN_MODEL = f"{_by_run('m', MODEL.label)} RETURN properties(m) AS props ORDER BY m.{_ID} LIMIT 1"


# What a named query's `run` parameter may name (run id, node id, run name, model id)
# and its `study` parameter (study name or node id): asked only when a query found no
# rows, to tell "nothing matched" from "no such run".
RUN_EXISTS = (
    f"MATCH (r:{_RUN}) WHERE r.{_RID} = $run OR r.{_ID} = $run OR r.{_NAME} = $run "
    f"RETURN count(r) AS found\nUNION ALL\n"
    f"MATCH (m:{_E} {{{_ID}: $run}}) WHERE m:{MODEL.label} RETURN count(m) AS found"
)
STUDY_EXISTS = (
    f"MATCH (s:{STUDY.label}) WHERE s.{_NAME} = $study OR s.{_ID} = $study RETURN count(s) AS found"
)


def run_exists(kb: Reader, run: str) -> bool:
    """Whether `run` names a training run (id, node id or name) or a model."""
    return sum(row["found"] for row in _rows(kb, RUN_EXISTS, run=run)) > 0


def study_exists(kb: Reader, study: str) -> bool:
    """Whether `study` names a study (name or node id)."""
    return _rows(kb, STUDY_EXISTS, study=study)[0]["found"] > 0


def run(kb: Reader, run_id: str) -> dict[str, Any] | None:
    """The run node's properties (None when there is no such run)."""
    rows = _rows(kb, RUN, run=run_id)
    return rows[0]["props"] if rows else None


METRICS_KEY = "metrics"  # of a point: its metrics by name (names are data: kept apart)


def _point(props: dict[str, Any]) -> dict[str, Any]:
    """A Metrics node as {epoch, metrics: {key as Keras logged it: value}}."""
    return {Prop.EPOCH: props.get(Prop.EPOCH), METRICS_KEY: metric_values(props)}


def run_metrics(kb: Reader, run_id: str) -> list[dict[str, Any]]:
    """The run's epoch Metrics, by epoch: {epoch, metrics: {every key Keras logged}}."""
    return [_point(row["props"]) for row in _rows(kb, RUN_METRICS, run=run_id)]


def run_test_metrics(kb: Reader, run_id: str) -> list[dict[str, Any]]:
    """The run's test Metrics (one per evaluation), as `run_metrics` gives points."""
    rows = _rows(kb, RUN_TEST_METRICS, run=run_id, testKind=TEST_KIND)
    return [_point(row["props"]) for row in rows]


def run_step_metrics(kb: Reader, run_id: str) -> list[str]:
    """The metrics the run has step series of (`log_every_n_steps`), by name."""
    return [row["metric"] for row in _rows(kb, STEP_METRICS, run=run_id)]


def run_steps(
    kb: Reader, run_id: str, metric: str, max_points: int = DEFAULT_MAX_POINTS
) -> list[dict[str, Any]]:
    """One metric's step series of the run, downsampled (the named query `steps`)."""
    return _rows(kb, STEPS.cypher, run=run_id, metric=metric, max_points=max_points, epoch=None)


def metric_of(point: dict[str, Any], key: str) -> Any:
    """A point's value of metric `key` (None when it did not log it)."""
    return point.get(METRICS_KEY, {}).get(key)


def run_events(kb: Reader, run_id: str) -> list[dict[str, Any]]:
    """Adaptations and steering actions of the run, by epoch: props plus `source`."""
    return [{**row["props"], "source": row["source"]} for row in _rows(kb, RUN_EVENTS, run=run_id)]


def run_hyperparameters(kb: Reader, run_id: str) -> list[dict[str, Any]]:
    """Every hyperparameter value node of the run (all versions), by name and version."""
    return _rows(kb, RUN_HYPERPARAMETERS, run=run_id)


def run_requests(kb: Reader, run_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The run's steering requests, newest first."""
    return [row["props"] for row in _rows(kb, RUN_REQUESTS, run=run_id, limit=int(limit))]


def run_layers(kb: Reader, run_id: str) -> list[dict[str, Any]]:
    return [row["props"] for row in _rows(kb, RUN_LAYERS, run=run_id)]


def run_model(kb: Reader, run_id: str) -> dict[str, Any] | None:
    rows = _rows(kb, RUN_MODEL, run=run_id)
    return rows[0]["props"] if rows else None


def metric_keys(points: Iterable[dict[str, Any]]) -> list[str]:
    """The keys with numeric values in `run_metrics` points, sorted."""
    keys: set[str] = set()
    for point in points:
        keys.update(
            k
            for k, v in point.get(METRICS_KEY, {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        )
    return sorted(keys)


def current_values(hyperparameters: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest version of every hyperparameter (rows of `run_hyperparameters`)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in hyperparameters:
        held = latest.get(row["name"])
        if held is None or (row.get("version") or 0) >= (held.get("version") or 0):
            latest[row["name"]] = row
    return latest


# -- compare ---------------------------------------------------------------------------
HYPERPARAMETER_NAMES = f"""
MATCH (r:{_RUN}) WHERE {_RUN_FILTER}
WITH r ORDER BY {_NEWEST_FIRST} LIMIT $limit
MATCH (r)-[:{_USED}]->(h:{_HP})
RETURN h.{_NAME} AS name, count(DISTINCT r) AS runs, collect(DISTINCT h.{Prop.VALUE_TYPE}) AS types,
       count(DISTINCT h.{Prop.VALUE}) AS distinctValues
ORDER BY runs DESC, name
"""

METRIC_KEYS = f"""
MATCH (r:{_RUN}) WHERE {_RUN_FILTER}
WITH r ORDER BY {_NEWEST_FIRST} LIMIT $sampleRuns
MATCH (r)<-[:{_INF}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
WHERE e.{Prop.EPOCH} = 1
UNWIND keys(m) AS prop
WITH m, prop, substring(prop, size($metricPrefix)) AS key WHERE prop STARTS WITH $metricPrefix
RETURN DISTINCT coalesce(m[$longNamePrefix + key], key) AS key ORDER BY key
"""

COMPARE_ROWS = f"""
MATCH (r:{_RUN}) WHERE {_RUN_FILTER}
WITH r ORDER BY {_NEWEST_FIRST} LIMIT $limit
OPTIONAL MATCH (r)-[:{_USED}]->(h:{_HP}) WHERE h.{_NAME} IN $names
WITH r, collect([h.{_NAME}, h.{Prop.VALUE}]) AS hps
OPTIONAL MATCH (r)<-[:{_INF}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
WITH r, hps, max(m[$metric]) AS maxMetric, min(m[$metric]) AS minMetric,
     max(e.{Prop.EPOCH}) AS epochs
RETURN r.{_RID} AS runId, r.{_NAME} AS name, r.{Prop.EXPERIMENT} AS experiment,
       r.{Steer.STUDY} AS study, r.{Steer.ITERATION} AS iteration, r.{_STATUS} AS status,
       r.{GAIN} AS gain, hps, maxMetric, minMetric, epochs, r.{_STARTED} AS startedAtTime
ORDER BY coalesce(startedAtTime, '') DESC, runId
"""


def hyperparameter_names(kb: Reader, limit: int = 500, **filters: Any) -> list[dict[str, Any]]:
    """Initial hyperparameters of (up to `limit` newest of) the filtered runs, commonest first."""
    return _rows(kb, HYPERPARAMETER_NAMES, limit=int(limit), **_filters(**filters))


def compare_metric_keys(kb: Reader, sample_runs: int = 50, **filters: Any) -> list[str]:
    """Metric keys logged at epoch 1 by (a sample of) the filtered runs."""
    rows = _rows(
        kb,
        METRIC_KEYS,
        sampleRuns=int(sample_runs),
        metricPrefix=metric_prop(""),
        longNamePrefix=LONG_NAME_PREFIX,
        **_filters(**filters),
    )
    return [r["key"] for r in rows]


def compare_rows(
    kb: Reader, names: Sequence[str], metric: str, limit: int = 300, **filters: Any
) -> list[dict[str, Any]]:
    """Per run: its initial values of `names`, the best (max and min) of `metric`, its gain."""
    rows = _rows(
        kb,
        COMPARE_ROWS,
        names=list(names),
        metric=metric_prop(metric),
        limit=int(limit),
        **_filters(**filters),
    )
    for row in rows:
        row["hyperparameters"] = {n: v for n, v in row.pop("hps") or [] if n is not None}
    return rows


# -- studies ---------------------------------------------------------------------------
STUDIES = f"""
MATCH (s:{STUDY.label})
OPTIONAL MATCH (it:{_RUN})-[:{_INF}]->(s)
RETURN properties(s) AS props, count(it) AS iterations, max(it.{GAIN}) AS maxGain,
       min(it.{GAIN}) AS minGain
ORDER BY coalesce(props.{_STARTED}, '') DESC, props.{_NAME}
"""
STUDY_ITEMS = (
    f"MATCH (i:{TRIAL_ITEM.label}) WHERE i.{Steer.STUDY} = $study "
    f"RETURN properties(i) AS props ORDER BY i.{Steer.ITEM_ID}, i.{Prop.VERSION}"
)
STUDY_ITERATIONS = f"""
MATCH (it:{_RUN})-[:{_INF}]->(s:{STUDY.label} {{{_NAME}: $study}})
RETURN it.{_RID} AS runId, it.{_NAME} AS name, it.{Steer.ITERATION} AS iteration,
       it.{Steer.ITEM_ID} AS itemId, it.{GAIN} AS gain, it.{_STATUS} AS status,
       it.{_STARTED} AS startedAtTime
ORDER BY iteration, runId
"""
STUDY_EDITS = f"""
MATCH (a:{STEERING_ACTION.label})-[:{_INF}]->(s:{STUDY.label} {{{_NAME}: $study}})
OPTIONAL MATCH (a)-[:{_USED}]->(state:{STUDY_STATE.label})
RETURN properties(a) AS props, state.{Steer.ITERATION} AS stateIteration,
       state.{Prop.MOVING_AVERAGE} AS movingAverage, state.{Prop.LAST_GAIN} AS lastGain
ORDER BY coalesce(props.{Steer.ITERATION}, 0), coalesce(props.{_STARTED}, ''), props.{_ID}
"""


def studies(kb: Reader) -> list[dict[str, Any]]:
    """Every study with its number of iterations and gain range, newest first."""
    return [
        {
            **row["props"],
            "iterations": row["iterations"],
            "maxGain": row["maxGain"],
            "minGain": row["minGain"],
        }
        for row in _rows(kb, STUDIES)
    ]


def study_items(kb: Reader, study: str) -> list[dict[str, Any]]:
    """Every version of every queue item of the study (params decoded), by item, version."""
    items = []
    for row in _rows(kb, STUDY_ITEMS, study=study):
        props = dict(row["props"])
        props["params"] = _json(props.get("params"))
        items.append(props)
    return items


def study_iterations(kb: Reader, study: str) -> list[dict[str, Any]]:
    return _rows(kb, STUDY_ITERATIONS, study=study)


def study_edits(kb: Reader, study: str) -> list[dict[str, Any]]:
    """The queue edits of the study with the study state they used, by iteration."""
    edits = []
    for row in _rows(kb, STUDY_EDITS, study=study):
        edit = dict(row["props"])
        for key in (Steer.BEFORE, Steer.AFTER):
            edit[key] = _json(edit.get(key))
        edit.update(
            stateIteration=row["stateIteration"],
            movingAverage=row["movingAverage"],
            lastGain=row["lastGain"],
        )
        edits.append(edit)
    return edits


# The Study page in one round trip: the study, its current items, its iterations and its
# queue edits (with the state each used). Rows of absent matches are dropped in Python.
STUDY_PAGE = f"""
MATCH (s:{_A} {{{_ID}: $id}}) WHERE s:{STUDY.label}
OPTIONAL MATCH (i:{TRIAL_ITEM.label}) WHERE i.{Steer.STUDY} = $study AND i.{Prop.CURRENT} = true
WITH s, collect(properties(i)) AS items
OPTIONAL MATCH (it:{_RUN})-[:{_INF}]->(s)
WITH s, items, collect({{runId: it.{_RID}, name: it.{_NAME}, iteration: it.{Steer.ITERATION},
     itemId: it.{Steer.ITEM_ID}, gain: it.{GAIN}, status: it.{_STATUS},
     startedAtTime: it.{_STARTED}}}) AS iterations
OPTIONAL MATCH (a:{STEERING_ACTION.label})-[:{_INF}]->(s)
OPTIONAL MATCH (a)-[:{_USED}]->(state:{STUDY_STATE.label})
WITH s, items, iterations, collect({{props: properties(a), stateIteration: state.{Steer.ITERATION},
     movingAverage: state.{Prop.MOVING_AVERAGE}, lastGain: state.{Prop.LAST_GAIN}}}) AS edits
RETURN properties(s) AS study, items, iterations, edits
"""


def study_page(kb: Reader, study: str) -> dict[str, Any] | None:
    """Everything the Study page shows of one study, in one read: `study` (its
    properties, space decoded), `items` (current versions, params decoded, by item),
    `iterations` (by iteration) and `edits` (as `study_edits`); None when no such study."""
    rows = _rows(kb, STUDY_PAGE, id=ids.study(study), study=study)
    if not rows:
        return None
    row = rows[0]
    props = dict(row["study"])
    props[Prop.SPACE] = _json(props.get(Prop.SPACE))
    items = []
    for item in row["items"] or []:
        item = dict(item)
        item["params"] = _json(item.get("params"))
        items.append(item)
    items.sort(key=lambda i: (i.get(Steer.ITEM_ID) or 0, i.get(Prop.VERSION) or 0))
    iterations = [dict(r) for r in row["iterations"] or [] if r.get("runId") is not None]
    iterations.sort(key=lambda r: (r.get("iteration") is None, r.get("iteration") or 0, r["runId"]))
    edits = []
    for e in row["edits"] or []:
        if e.get("props") is None:
            continue
        edit = dict(e["props"])
        for key in (Steer.BEFORE, Steer.AFTER):
            edit[key] = _json(edit.get(key))
        edit.update(
            stateIteration=e["stateIteration"],
            movingAverage=e["movingAverage"],
            lastGain=e["lastGain"],
        )
        edits.append(edit)
    edits.sort(key=lambda e: (e.get(Steer.ITERATION) or 0, e.get(_STARTED) or "", e.get(_ID) or ""))
    return {"study": props, "items": items, "iterations": iterations, "edits": edits}


# The search sessions that led to a study (first to this one): a narrowed study
# WAS_INFORMED_BY its Narrowing, which WAS_INFORMED_BY the parent study (as
# `study-lineage`, without its gains and kept trials).
STUDY_CHAIN = f"""
MATCH (s:{_A} {{{_ID}: $id}}) WHERE s:{STUDY.label}
MATCH p = (s)-[:{_INF}*0..{2 * MAX_SESSIONS}]->(x:{STUDY.label})
WHERE all(node IN nodes(p) WHERE node:{STUDY.label} OR node:{NARROWING.label})
WITH DISTINCT x, length(p) / 2 AS back
RETURN x.{_NAME} AS study, coalesce(x.{Prop.SESSION}, 1) AS session, back,
       x.{Prop.PARENT_STUDY} AS parent, x.{Prop.SPACE} AS space, x.{Prop.MODE} AS mode,
       x.{Prop.GAIN_METRIC} AS gainMetric
ORDER BY back DESC, study
"""


def study_chain(kb: Reader, study: str) -> list[dict[str, Any]]:
    """The studies of `study`'s session chain, first session first, each with its
    session number, parent, space (decoded), mode and gain metric; [] when no such study."""
    chain = []
    for row in _rows(kb, STUDY_CHAIN, id=ids.study(study)):
        row = dict(row)
        row.pop("back", None)
        row["space"] = _json(row.get("space")) or {}
        chain.append(row)
    return chain


STUDY_SESSIONS = (
    f"MATCH (s:{STUDY.label}) RETURN s.{_NAME} AS study, coalesce(s.{Prop.SESSION}, 1) AS session "
    "ORDER BY study"
)


def study_sessions(kb: Reader) -> dict[str, int]:
    """Study name -> its session number (1 for a first study)."""
    rows = _rows(kb, STUDY_SESSIONS)
    return {r["study"]: r["session"] for r in rows if r.get("study")}


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# -- lineage ---------------------------------------------------------------------------
def _per_kind(template: str) -> str:
    """`template` (with `{kind}`) once per PROV kind (the id index is per kind label),
    joined with UNION ALL."""
    return "\nUNION ALL\n".join(template.replace("{kind}", k.label) for k in KINDS)


NODE = _per_kind(
    f"MATCH (n:{{kind}} {{{_ID}: $id}}) RETURN labels(n) AS labels, properties(n) AS props"
)

FIND_NODES = _per_kind(
    f"MATCH (n:{{kind}}) WHERE n.{_ID} CONTAINS $text "
    f"OR toLower(coalesce(n.{_NAME}, '')) CONTAINS $lower "
    f"RETURN n.{_ID} AS id, labels(n) AS labels, properties(n) AS props "
    f"ORDER BY CASE WHEN n.{_ID} = $text OR toLower(coalesce(n.{_NAME}, '')) = $lower "
    f"THEN 0 ELSE 1 END, size(n.{_ID}), n.{_ID} LIMIT $limit"
)

_NEIGHBOUR_RETURN = (
    "RETURN 'out' AS dir, n.%s AS src, type(e) AS rel, m.%s AS dst, labels(m) AS labels, "
    "properties(m) AS props"
)
NEIGHBOURS = "\nUNION ALL\n".join(
    [
        f"MATCH (n:{k.label}) WHERE n.{_ID} IN $ids MATCH (n)-[e]->(m) "
        + (_NEIGHBOUR_RETURN % (_ID, _ID))
        + " LIMIT $limit"
        for k in KINDS
    ]
    + [
        f"MATCH (n:{k.label}) WHERE n.{_ID} IN $ids MATCH (n)<-[e]-(m) "
        f"RETURN 'in' AS dir, m.{_ID} AS src, type(e) AS rel, n.{_ID} AS dst, labels(m) AS labels, "
        f"properties(m) AS props LIMIT $limit"
        for k in KINDS
    ]
)
RELATIONS_AMONG = "\nUNION ALL\n".join(
    f"MATCH (n:{k.label}) WHERE n.{_ID} IN $ids MATCH (n)-[e]->(m) WHERE m.{_ID} IN $ids "
    f"RETURN n.{_ID} AS src, type(e) AS rel, m.{_ID} AS dst"
    for k in KINDS
)


def node(kb: Reader, node_id: str) -> dict[str, Any] | None:
    """A node's labels and properties (None when there is no such node)."""
    rows = _rows(kb, NODE, id=node_id)
    return rows[0] if rows else None


def find_nodes(kb: Reader, text: str, limit: int = 30) -> list[dict[str, Any]]:
    """Nodes whose id contains `text` or whose name contains it (any case)."""
    text = text.strip()
    if not text:
        return []
    rows = _rows(kb, FIND_NODES, text=text, lower=text.lower(), limit=int(limit))
    lower = text.lower()

    def rank(row: dict[str, Any]) -> tuple:
        name = str(row["props"].get(_NAME) or "").lower()
        exact = row["id"] == text or name == lower or row["id"].endswith("/" + text)
        return (not exact, not name.startswith(lower), len(row["id"]), row["id"])

    return sorted(rows, key=rank)[:limit]


def neighbours(kb: Reader, ids: Sequence[str], limit: int = 150) -> list[dict[str, Any]]:
    """Relations touching `ids` (both directions) with the node at the other end.

    Each row: dir (`out` when the relation leaves one of `ids`), src, rel (relationship
    type), dst, and the labels and props of the other node. At most `limit` rows per
    (kind, direction).
    """
    if not ids:
        return []
    return _rows(kb, NEIGHBOURS, ids=list(ids), limit=int(limit))


def relations_among(kb: Reader, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every relation between two of `ids`."""
    if not ids:
        return []
    return _rows(kb, RELATIONS_AMONG, ids=list(ids))
