"""`plan-vs-run`: what a script's Plan said (provkb scan --record) against what its run did.

The plan is the ScriptPlan of the script version the run USED (kb/plans.py); each
planned fact (`ontology.PlanFact`) is compared with the run's value: the hyperparameter
of that name as the run started (its v1, which the run USED), the model's layer count
and its layers' classes in index order.
"""

from __future__ import annotations

from ..ontology import (
    ENTITY,
    HAD_MEMBER,
    HYPERPARAMETER,
    LAYER,
    MODEL,
    SCRIPT,
    SCRIPT_PLAN,
    USED,
    WAS_DERIVED_FROM,
    WAS_GENERATED_BY,
    PlanFact,
    Prop,
    planned_prop,
)
from .library import _find_run, _text
from .spec import NamedQuery, Param

NO_PLAN = "no plan: this script version was not scanned with `provkb scan SCRIPT --record`"
# Facts a run also records (the seed is not one of them).
COMPARED = tuple(f for f in PlanFact.ALL if f != PlanFact.SEED)

P, E = Prop, ENTITY.label
PLAN_VS_RUN = NamedQuery(
    name="plan-vs-run",
    summary="What the script's Plan said against what the run did, and what differs.",
    description=(
        "The Plan of the script version the run used (recorded by `provkb scan SCRIPT "
        "--record`) against the run: one row per fact (epochs, batch_size, "
        "validation_split, initial_epoch, optimizer, optimizer_class, learning_rate, "
        "loss, metrics, layers = the layer count, layer_classes) that either side has, "
        "with the planned and the actual value (the hyperparameter as the run started), "
        "`differs` (null when one side is unknown) and how the planned value was found "
        "or why the scan could not tell it (`note`)."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        OPTIONAL MATCH (r)-[:{USED.rel_type}]->(s:{E}) WHERE s:{SCRIPT.label}
        OPTIONAL MATCH (p:{E})-[:{WAS_DERIVED_FROM.rel_type}]->(s) WHERE p:{SCRIPT_PLAN.label}
        OPTIONAL MATCH (m:{E})-[:{WAS_GENERATED_BY.rel_type}]->(r) WHERE m:{MODEL.label}
        WITH r, p, m, [(r)-[:{USED.rel_type}]->(h:{E}) WHERE h:{HYPERPARAMETER.label} | h] AS hps
        WITH r, p, m, hps, CASE WHEN m IS NULL THEN [] ELSE
             [(m)-[:{HAD_MEMBER.rel_type}]->(l:{E}) WHERE l:{LAYER.label} | l] END AS layers
        WITH r, p, m, hps,
             [i IN range(0, size(layers) - 1) |
              head([l IN layers WHERE l.{P.INDEX} = i | l.{P.CLASS}])] AS classes
        UNWIND range(0, size($planFacts) - 1) AS k
        WITH p, k, $planFacts[k] AS fact,
             CASE WHEN $planFacts[k] = $factLayers THEN m.{P.LAYER_COUNT}
                  WHEN $planFacts[k] = $factLayerClasses THEN
                       CASE WHEN m IS NULL OR size(classes) = 0 THEN null ELSE classes END
                  ELSE head([h IN hps WHERE h.{P.NAME} = $planFacts[k] | h.{P.VALUE}]) END AS actual
        WITH p, k, fact, actual,
             CASE WHEN p IS NULL THEN null ELSE p[$plannedPrefix + fact] END AS planned
        WHERE planned IS NOT NULL OR actual IS NOT NULL
        RETURN fact, planned, actual,
               CASE WHEN planned IS NULL OR actual IS NULL THEN null
                    ELSE NOT (planned = actual) END AS differs,
               CASE WHEN p IS NULL THEN $noPlan ELSE
                    head([n IN coalesce(p.{P.PLAN_NOTES}, []) WHERE n STARTS WITH fact + ': '
                          | substring(n, size(fact) + 2)]) END AS note,
               p.{P.ID} AS plan
        ORDER BY k
        """
    ),
    params=(Param("run", str, required=True, help="run id, node id or name"),),
    constants={
        "planFacts": COMPARED,
        "factLayers": PlanFact.LAYERS,
        "factLayerClasses": PlanFact.LAYER_CLASSES,
        "plannedPrefix": planned_prop(""),
        "noPlan": NO_PLAN,
    },
)
