"""What `provkb reproduce` reads about a run, and the named query `reproductions`.

`read(reader, run)` gathers everything a runnable script needs (the run, its Plan with
the model, optimizer and compile configurations, the first value of every
hyperparameter, the datasets, the callbacks' Plans, the callbacks that adapted the run,
the script) as plain Python: `RunFacts`. The texts run unchanged on both engines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ReproduceError
from ..ontology import (
    ACTIVITY,
    ADAPTATION,
    DATASET,
    ENTITY,
    EPOCH,
    HYPERPARAMETER,
    METRICS,
    MODEL,
    PERSON,
    PLAN,
    REPRODUCTION_TYPE,
    SCRIPT,
    SCRIPT_PLAN,
    TRAINING_RUN,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_DERIVED_FROM,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    Prop,
    metric_prop,
    truncated_size_prop,
)
from .library import Metric, _find_run, _text, shown_status
from .spec import NamedQuery, Param


class Reader(Protocol):
    def read(self, query: str, /, **params: Any) -> Any: ...


_RUN, _E, _A = TRAINING_RUN.label, ENTITY.label, ACTIVITY.label
_RID, _ID, _NAME = Prop.RUN_ID, Prop.ID, Prop.NAME
_USED, _GEN, _INFORMED = USED.rel_type, WAS_GENERATED_BY.rel_type, WAS_INFORMED_BY.rel_type


def _props(var: str) -> str:
    return f"CASE WHEN {var} IS NULL THEN null ELSE properties({var}) END"


# Engine difference: ArcadeDB matches nothing for a node pattern whose property map reads a
# relationship variable (`(p {id: a.plan})`, Neo4j finds the node): the plan id is taken
# into a WITH first (docs/engines.md #17).
RUN_FACTS = _text(
    f"""
    {_find_run()}
    OPTIONAL MATCH (r)-[a:{WAS_ASSOCIATED_WITH.rel_type}]->(:{PERSON.label})
    WITH r, a.{Prop.PLAN} AS planId
    OPTIONAL MATCH (p:{_E} {{{_ID}: planId}})
    OPTIONAL MATCH (m:{_E} {{{_RID}: r.{_RID}}}) WHERE m:{MODEL.label}
    OPTIONAL MATCH (r)-[:{_USED}]->(s:{SCRIPT.label})
    RETURN properties(r) AS run, {_props("p")} AS plan, {_props("m")} AS model,
           {_props("s")} AS script
    LIMIT 1
    """
)
FIRST_HYPERPARAMETERS = (
    f"MATCH (h:{_E} {{{_RID}: $runId}}) WHERE h:{HYPERPARAMETER.label} AND h.{Prop.VERSION} = 1 "
    f"RETURN h.{_NAME} AS name, h.{Prop.VALUE} AS value, h.{Prop.SOURCE} AS source "
    f"ORDER BY name"
)
DATASETS = (
    f"MATCH (r:{_A} {{{_RID}: $runId}})-[u:{_USED}]->(d:{_E}) "
    f"WHERE r:{_RUN} AND d:{DATASET.label} "
    f"RETURN u.{Prop.ROLE} AS role, properties(d) AS props ORDER BY role, d.{_ID}"
)
CALLBACK_PLANS = (
    f"MATCH (p:{_E} {{{_RID}: $runId}}) WHERE p:{PLAN.label} AND p.{Prop.SETTINGS} IS NOT NULL "
    f"RETURN p.{_NAME} AS name, p.{Prop.SETTINGS} AS settings, "
    f"p.{Prop.SCHEDULE_SOURCE} AS scheduleSource ORDER BY name"
)
SCRIPT_SCAN = (
    f"MATCH (r:{_A} {{{_RID}: $runId}})-[:{_USED}]->(s:{_E})<-[:{WAS_DERIVED_FROM.rel_type}]-"
    f"(p:{_E}) WHERE r:{_RUN} AND s:{SCRIPT.label} AND p:{SCRIPT_PLAN.label} "
    f"RETURN p.{Prop.SCAN} AS scan ORDER BY p.{_ID} LIMIT 1"
)
ADAPTING_CALLBACKS = (
    f"MATCH (a:{_A} {{{_RID}: $runId}}) WHERE a:{ADAPTATION.label} "
    f"RETURN DISTINCT a.{Prop.CALLBACK} AS callback ORDER BY callback"
)


@dataclass(frozen=True)
class RunFacts:
    """What the store knows about a run that a script to train it again needs."""

    run: dict[str, Any]
    plan: dict[str, Any]
    model: dict[str, Any]
    script: dict[str, Any]
    hyperparameters: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)  # props + `role`
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # class -> settings
    schedule_sources: dict[str, str] = field(default_factory=dict)  # class -> its code
    adapting_callbacks: list[str] = field(default_factory=list)
    scan: dict[str, Any] = field(default_factory=dict)  # the script's scan (its ScriptPlan)

    @property
    def run_id(self) -> str:
        return str(self.run[_RID])

    def config(self, prop: str) -> dict[str, Any] | None:
        """A Plan configuration (modelConfig, ...) as JSON data; None when it is not
        stored or was stored cut to the size limit (`truncated.size.<prop>`)."""
        text = self.plan.get(prop)
        if not isinstance(text, str) or self.plan.get(truncated_size_prop(prop)) is not None:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def values(self, *sources: str) -> dict[str, Any]:
        """name -> first value of the hyperparameters of these sources (all: none given)."""
        return {
            h["name"]: h["value"]
            for h in self.hyperparameters
            if not sources or h.get("source") in sources
        }


def _settings(text: Any) -> dict[str, Any]:
    """JSON text of an object as a dict ({} for anything else)."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read(reader: Reader, run: str) -> RunFacts:
    """Everything `provkb reproduce` needs about `run` (its id, node id or name: the
    newest run of that name); ReproduceError when no run is called so."""
    found = reader.read(RUN_FACTS, run=run).rows
    if not found:
        raise ReproduceError(
            f"no run {run!r} in the knowledge base (give a run id, a run node id or a run "
            f"name; `provkb query runs` lists them)"
        )
    row = found[0]
    run_id = row["run"][_RID]
    plans = reader.read(CALLBACK_PLANS, runId=run_id).rows
    return RunFacts(
        run=dict(row["run"]),
        plan=dict(row["plan"] or {}),
        model=dict(row["model"] or {}),
        script=dict(row["script"] or {}),
        hyperparameters=reader.read(FIRST_HYPERPARAMETERS, runId=run_id).rows,
        datasets=[
            {**r["props"], Prop.ROLE: r["role"]} for r in reader.read(DATASETS, runId=run_id).rows
        ],
        callbacks={p["name"]: _settings(p["settings"]) for p in plans},
        schedule_sources={p["name"]: p["scheduleSource"] for p in plans if p["scheduleSource"]},
        adapting_callbacks=[
            r["callback"]
            for r in reader.read(ADAPTING_CALLBACKS, runId=run_id).rows
            if r["callback"]
        ],
        scan=_settings(
            next((r["scan"] for r in reader.read(SCRIPT_SCAN, runId=run_id).rows), None)
        ),
    )


# -- the named query -------------------------------------------------------------------
_L, _VL = Metric.LOSS, Metric.VAL_LOSS
_EP = Prop.EPOCH


def _last_metrics(run: str, last: str, var: str) -> str:
    return (
        f"OPTIONAL MATCH ({run})<-[:{_INFORMED}]-(:{EPOCH.label} {{{_EP}: {last}}})"
        f"<-[:{_GEN}]-({var}:{METRICS.label})"
    )


def _metric(var: str, key: str) -> str:
    return f"{var}.`{metric_prop(key)}`"


_CARRY = "o, n, oLast, nLast, om, nm"
_DERIVED = WAS_DERIVED_FROM.rel_type
_V = Prop.VALUE  # a value None is stored as no property: two of them are equal

# `given`: the run it reproduces, else the run itself (coalesce): ArcadeDB answers a
# lookup of a null runId by scanning every activity (100 ms at 1,000 runs, 4 ms so).
REPRODUCTIONS = NamedQuery(
    name="reproductions",
    summary="A run and every run reproducing it (`provkb reproduce`), side by side.",
    description=(
        "The original run (the run given, or the run it reproduces when it is itself a "
        "reproduction) against each run that reproduces it (`reproduces`), one row each, "
        "oldest reproduction first: both run ids and statuses, `linked` (the "
        "reproduction's Plan WAS_DERIVED_FROM the original's, prov:type "
        "provkb:Reproduction), `sameData` (both models derive from the same training "
        "Dataset: equal content fingerprints), epochs completed, loss and val_loss of "
        "the last epoch, "
        "layer counts, `differences`: the names of the original's hyperparameters "
        "whose first value the reproduction does not have (ordered by name), and when "
        "the reproduction started."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        OPTIONAL MATCH (given:{_A} {{{_RID}: coalesce(r.{Prop.REPRODUCES}, r.{_RID})}})
        WHERE given:{_RUN}
        WITH coalesce(given, r) AS o
        MATCH (n:{_RUN}) WHERE n.{Prop.REPRODUCES} = o.{_RID}
        OPTIONAL MATCH (o)<-[:{_INFORMED}]-(oe:{EPOCH.label})
        WITH o, n, max(oe.{_EP}) AS oLast
        OPTIONAL MATCH (n)<-[:{_INFORMED}]-(ne:{EPOCH.label})
        WITH o, n, oLast, max(ne.{_EP}) AS nLast
        {_last_metrics("o", "oLast", "om")}
        {_last_metrics("n", "nLast", "nm")}
        OPTIONAL MATCH (oh:{_E} {{{_RID}: o.{_RID}, {Prop.VERSION}: 1}})
        WHERE oh:{HYPERPARAMETER.label}
        OPTIONAL MATCH (nh:{_E} {{{_RID}: n.{_RID}, {Prop.VERSION}: 1, {_NAME}: oh.{_NAME}}})
        WHERE nh:{HYPERPARAMETER.label}
        WITH {_CARRY}, collect(CASE WHEN nh IS NULL THEN oh.{_NAME}
                                    WHEN nh.{_V} IS NULL AND oh.{_V} IS NULL THEN null
                                    WHEN NOT coalesce(nh.{_V} = oh.{_V}, false) THEN oh.{_NAME}
                               END) AS differing
        OPTIONAL MATCH (omodel:{_E} {{{_RID}: o.{_RID}}}) WHERE omodel:{MODEL.label}
        OPTIONAL MATCH (nmodel:{_E} {{{_RID}: n.{_RID}}}) WHERE nmodel:{MODEL.label}
        OPTIONAL MATCH (np:{_E} {{{_RID}: n.{_RID}}})-[d:{_DERIVED}]->(op:{_E} {{{_RID}: o.{_RID}}})
        WHERE np:{PLAN.label} AND op:{PLAN.label} AND $reproductionType IN d.{Prop.PROV_TYPE}
        WITH {_CARRY}, differing, omodel, nmodel, count(d) > 0 AS linked
        OPTIONAL MATCH (omodel)-[:{_DERIVED}]->(od:{DATASET.label})<-[:{_DERIVED}]-(nmodel)
        WITH {_CARRY}, differing, omodel, nmodel, linked, count(od) > 0 AS sameData
        WITH {_CARRY}, omodel, nmodel, linked, sameData,
             [x IN differing | {{x: x, rank: size([y IN differing WHERE y < x])}}] AS ranked
        WITH {_CARRY}, omodel, nmodel, linked, sameData,
             [i IN range(0, size(ranked) - 1) | [p IN ranked WHERE p.rank = i][0].x] AS differences
        RETURN o.{_RID} AS original, n.{_RID} AS reproduction, linked, sameData,
               {shown_status("o")} AS originalStatus, {shown_status("n")} AS reproductionStatus,
               o.{Prop.EPOCHS_COMPLETED} AS originalEpochs,
               n.{Prop.EPOCHS_COMPLETED} AS reproductionEpochs,
               {_metric("om", _L)} AS originalLoss, {_metric("nm", _L)} AS reproductionLoss,
               {_metric("om", _VL)} AS originalValLoss, {_metric("nm", _VL)} AS reproductionValLoss,
               omodel.{Prop.LAYER_COUNT} AS originalLayers,
               nmodel.{Prop.LAYER_COUNT} AS reproductionLayers, differences,
               n.{Prop.STARTED} AS reproductionStartedAtTime
        ORDER BY coalesce(reproductionStartedAtTime, ''), reproduction
        """
    ),
    params=(
        Param(
            "run",
            str,
            required=True,
            help="the original run or one of its reproductions (id, node id or name)",
        ),
    ),
    constants={"reproductionType": REPRODUCTION_TYPE},
)
