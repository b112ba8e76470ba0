"""The Cypher texts of ProvKB's named lineage queries.

Labels, relationship types and property names come from `provkb.ontology` (Keras
metric keys, which are data used as property names, from `Metric` below) and are put
into the texts with f-strings, so nothing is spelled twice. Values, including data such as
hyperparameter names, always travel as parameters.

Every text sticks to the Cypher subset that runs unchanged, with the same rows, on
Neo4j 5 and on ArcadeDB's openCypher: parameters everywhere, OPTIONAL MATCH, `EXISTS {}`,
bounded variable-length paths, dynamic property access `n[$key]`, aggregation in WITH,
and an explicit ORDER BY with full tie-breaking on every query. No `id(n)`, APOC,
`elementId` parsing or inline `collect(x)[a..b]`.
"""

from __future__ import annotations

from ..ontology import (
    DATASET,
    ENTITY,
    EPOCH,
    HAD_MEMBER,
    HYPERPARAMETER,
    KINDS,
    LAYER,
    METRICS,
    MODEL,
    RELATIONS,
    SCRIPT,
    TRAINING_RUN,
    USED,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    WAS_INVALIDATED_BY,
    Prop,
)
from .spec import ChartHint, NamedQuery, Param


class Metric:
    """Keras metric keys, stored verbatim as properties of `Metrics` nodes."""

    LOSS = "loss"
    ACCURACY = "accuracy"
    VAL_LOSS = "val_loss"
    VAL_ACCURACY = "val_accuracy"


class HP:
    """Hyperparameter names (data: the `name` of `Hyperparameter` nodes) the queries use."""

    OPTIMIZER = "optimizer"  # value: the optimizer's name, e.g. "adam"
    LEARNING_RATE = "learning_rate"
    BATCH_SIZE = "batch_size"
    EPOCHS = "epochs"


# Layer properties reported by `layers`, one row each (when the layer has it).
LAYER_ATTRIBUTES = (Prop.ACTIVATION, Prop.UNITS, Prop.FILTERS, Prop.KERNEL_SIZE, Prop.RATE)

# Relations followed (outward) by `lineage`: every PROV relation except invalidation,
# which points at what ended an entity, not at what it came from.
LINEAGE_RELATIONS = tuple(r for r in RELATIONS if r is not WAS_INVALIDATED_BY)
LINEAGE_MAX_DEPTH = 10

# Fixed parameters of the texts (names prefixed to keep them apart from user ones).
_CONSTANTS = {
    "hpOptimizer": HP.OPTIMIZER,
    "hpLearningRate": HP.LEARNING_RATE,
    "hpBatchSize": HP.BATCH_SIZE,
    "hpEpochs": HP.EPOCHS,
    "kindLabels": tuple(k.label for k in KINDS),
    "layerAttributes": LAYER_ATTRIBUTES,
}


def _constants(*names: str) -> dict:
    return {name: _CONSTANTS[name] for name in names}


# Short names for the texts below.
_RUN, _EPOCH, _METRICS, _HP = TRAINING_RUN.label, EPOCH.label, METRICS.label, HYPERPARAMETER.label
_MODEL, _LAYER, _DATASET, _SCRIPT = MODEL.label, LAYER.label, DATASET.label, SCRIPT.label
_USED, _GEN, _INFORMED, _MEMBER = (
    USED.rel_type,
    WAS_GENERATED_BY.rel_type,
    WAS_INFORMED_BY.rel_type,
    HAD_MEMBER.rel_type,
)
_ID, _RUN_ID, _NAME, _STARTED = Prop.ID, Prop.RUN_ID, Prop.NAME, Prop.STARTED
_EPOCH_NO, _VALUE, _FROM, _VERSION = Prop.EPOCH, Prop.VALUE, Prop.FROM_EPOCH, Prop.VERSION


def _text(cypher: str) -> str:
    """Strip the template's indentation (that of its first line) but keep the rest."""
    lines = cypher.strip("\n").splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    prefix = lines[0][:indent]
    # Lines of interpolated fragments start at column 0 and keep their own indentation.
    out = [line.removeprefix(prefix).rstrip() for line in lines]
    return "\n".join(out).strip()


def _find_run(param: str = "run") -> str:
    """Resolve `$param` (run id, node id or run name) to one run `r`.

    A name may be shared: an exact id wins, otherwise the newest run of that name.
    """
    exact = f"r.{_RUN_ID} = ${param} OR r.{_ID} = ${param}"
    return (
        f"MATCH (r:{_RUN})\n"
        f"WHERE {exact} OR r.{_NAME} = ${param}\n"
        f"WITH r ORDER BY CASE WHEN {exact} THEN 0 ELSE 1 END, "
        f"coalesce(r.{_STARTED}, '') DESC, r.{_RUN_ID} LIMIT 1"
    )


def _find_model(param: str = "run") -> str:
    """Resolve `$param` (model id, or a run as in `_find_run`) to one `model`."""
    exact = f"model.{_ID} = ${param} OR r.{_RUN_ID} = ${param} OR r.{_ID} = ${param}"
    return (
        f"MATCH (model:{_MODEL})\n"
        f"OPTIONAL MATCH (model)-[:{_GEN}]->(r:{_RUN})\n"
        f"WITH model, r WHERE {exact} OR r.{_NAME} = ${param}\n"
        f"WITH model, r ORDER BY CASE WHEN {exact} THEN 0 ELSE 1 END, "
        f"coalesce(r.{_STARTED}, '') DESC, model.{_ID} LIMIT 1"
    )


def _initial(var: str, constant: str, optional: bool = True) -> str:
    """Match the first value (`v1`, the one the run USED) of a hyperparameter of run `r`."""
    match = "OPTIONAL MATCH" if optional else "MATCH"
    return f"{match} (r)-[:{_USED}]->({var}:{_HP} {{{_NAME}: ${constant}}})"


def _hp_values(var: str, run_id: str, name: str | None = None) -> tuple[str, str]:
    """Pattern and label test for hyperparameter values of a run (and name).

    Looked up by core label + runId, filtered by the domain label: the runId index is
    on the core label (kb.cypher), and ArcadeDB only uses it that way (a domain-label
    pattern scanned all values: 5-10x slower on 200 runs).
    """
    props = f"{_RUN_ID}: {run_id}" + (f", {_NAME}: {name}" if name else "")
    return f"({var}:{ENTITY.label} {{{props}}})", f"{var}:{_HP}"


def _in_force(h: str, epoch: str) -> str:
    """Condition: hyperparameter value `h` is the one in force at `epoch`.

    That is the value of its run and name with the largest fromEpoch <= epoch (the
    largest version among equals). Written with NOT EXISTS rather than ordering and
    collecting, which both engines answer identically.
    """
    pattern, is_hp = _hp_values("later", f"{h}.{_RUN_ID}", f"{h}.{_NAME}")
    later = f"later.{_FROM} <= {epoch} AND (later.{_FROM} > {h}.{_FROM} OR "
    later += f"(later.{_FROM} = {h}.{_FROM} AND later.{_VERSION} > {h}.{_VERSION}))"
    return (
        f"{h}.{_FROM} <= {epoch} AND NOT EXISTS {{\n"
        f"  MATCH {pattern}\n"
        f"  WHERE {is_hp} AND {later}\n"
        f"}}"
    )


def _domain_label(var: str) -> str:
    return f"[l IN labels({var}) WHERE NOT l IN $kindLabels][0]"


def _kind_label(var: str) -> str:
    return f"[l IN labels({var}) WHERE l IN $kindLabels][0]"


_LR_PATTERN, _LR_IS_HP = _hp_values("h", f"r.{_RUN_ID}", "$hpLearningRate")
_HP_PATTERN, _HP_IS_HP = _hp_values("h", f"r.{_RUN_ID}")

_RUN_PARAM = Param("run", str, required=True, help="run id, run node id or run name (newest)")
_MODEL_PARAM = Param(
    "run", str, required=True, help="run id, run node id, run name (newest) or model id"
)

_L, _VL, _A, _VA = Metric.LOSS, Metric.VAL_LOSS, Metric.ACCURACY, Metric.VAL_ACCURACY

RUNS = NamedQuery(
    name="runs",
    summary="Every training run with its main hyperparameters and final metrics.",
    description=(
        "One row per run, newest first (runs without a start time last): identity, "
        "status, epochs completed, the initial optimizer, learning_rate, batch_size and "
        "epochs (hyperparameter values the run USED; epochs falls back to epochsPlanned), "
        "the metrics of the last epoch that has metrics, and the best val_accuracy over "
        "all epochs. Optionally only the runs of one experiment."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})
        WHERE $experiment IS NULL OR r.{Prop.EXPERIMENT} = $experiment
        OPTIONAL MATCH (r)<-[:{_INFORMED}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
        WITH r, max(e.{_EPOCH_NO}) AS lastEpoch, max(m.{_VA}) AS bestValAccuracy
        OPTIONAL MATCH (r)<-[:{_INFORMED}]-(:{_EPOCH} {{{_EPOCH_NO}: lastEpoch}})
                       <-[:{_GEN}]-(fm:{_METRICS})
        {_initial("opt", "hpOptimizer")}
        {_initial("lr", "hpLearningRate")}
        {_initial("bs", "hpBatchSize")}
        {_initial("ep", "hpEpochs")}
        RETURN r.{_RUN_ID} AS runId, r.{_NAME} AS name, r.{Prop.EXPERIMENT} AS experiment,
               r.{Prop.STATUS} AS status, r.{_STARTED} AS startedAtTime,
               r.{Prop.EPOCHS_COMPLETED} AS epochsCompleted,
               opt.{_VALUE} AS optimizer, lr.{_VALUE} AS learning_rate,
               bs.{_VALUE} AS batch_size, coalesce(ep.{_VALUE}, r.{Prop.EPOCHS_PLANNED}) AS epochs,
               fm.{_L} AS {_L}, fm.{_VL} AS {_VL}, fm.{_A} AS {_A}, fm.{_VA} AS {_VA},
               bestValAccuracy AS best_{_VA}
        ORDER BY coalesce(startedAtTime, '') DESC, runId
        LIMIT $limit
        """
    ),
    params=(
        Param("experiment", str, help="only runs of this experiment (name)"),
        Param("limit", int, default=100, minimum=0, help="at most this many runs"),
    ),
    constants=_constants("hpOptimizer", "hpLearningRate", "hpBatchSize", "hpEpochs"),
)

EPOCHS = NamedQuery(
    name="epochs",
    summary="A run's metric series, one row per epoch.",
    description=(
        "For each epoch of the run (1-based, in order): loss, accuracy, val_loss, "
        "val_accuracy, the learning_rate in force at that epoch (the learning_rate "
        "hyperparameter value with the largest fromEpoch <= epoch, else the value Keras "
        "logged) and the epoch's elapsed seconds. Epochs without metrics yet show nulls."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        MATCH (e:{_EPOCH})-[:{_INFORMED}]->(r)
        OPTIONAL MATCH (m:{_METRICS})-[:{_GEN}]->(e)
        OPTIONAL MATCH {_LR_PATTERN}
        WHERE {_LR_IS_HP} AND {_in_force("h", f"e.{_EPOCH_NO}")}
        RETURN e.{_EPOCH_NO} AS epoch, m.{_L} AS {_L}, m.{_A} AS {_A},
               m.{_VL} AS {_VL}, m.{_VA} AS {_VA},
               coalesce(h.{_VALUE}, m[$hpLearningRate]) AS learning_rate,
               coalesce(e.{Prop.ELAPSED}, m.{Prop.ELAPSED}) AS {Prop.ELAPSED}
        ORDER BY epoch
        """
    ),
    params=(_RUN_PARAM,),
    chart=ChartHint("line", "epoch", (_L, _VL, _A, _VA)),
    constants=_constants("hpLearningRate"),
)

HYPERPARAMETERS_AT = NamedQuery(
    name="hyperparameters-at",
    summary="Every hyperparameter's value at epoch e of a run.",
    description=(
        "For each hyperparameter name of the run, the value in force at the given "
        "epoch: the Hyperparameter node with the largest fromEpoch <= epoch (the largest "
        "version among equals), with its source, fromEpoch and version. Ordered by name."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        MATCH {_HP_PATTERN}
        WHERE {_HP_IS_HP} AND {_in_force("h", "$epoch")}
        RETURN h.{_NAME} AS name, h.{_VALUE} AS value, h.{Prop.SOURCE} AS source,
               h.{_FROM} AS fromEpoch, h.{_VERSION} AS version
        ORDER BY name
        """
    ),
    params=(
        _RUN_PARAM,
        Param("epoch", int, required=True, minimum=1, help="epoch number (1-based)"),
    ),
)

_LINEAGE_TYPES = "|".join(r.rel_type for r in LINEAGE_RELATIONS)

LINEAGE = NamedQuery(
    name="lineage",
    summary="Everything a model was derived from, transitively.",
    description=(
        "Follows PROV relations outward from a model (generated by its run, which used "
        "hyperparameter values, data, script and environment, was informed by its "
        f"experiment, associated with agents, ...) up to {LINEAGE_MAX_DEPTH} hops. One row "
        "per reached node: id, PROV kind (Entity, Activity, Agent), domain label, name "
        "(name, hostname or path), value (for hyperparameter values) and the shortest "
        "distance from the model. Ordered by distance, then id."
    ),
    cypher=_text(
        f"""
        {_find_model()}
        MATCH p = (model)-[:{_LINEAGE_TYPES}*1..{LINEAGE_MAX_DEPTH}]->(n)
        WITH n, min(length(p)) AS distance
        RETURN n.{_ID} AS id, {_kind_label("n")} AS kind,
               {_domain_label("n")} AS label,
               coalesce(n.{_NAME}, n.{Prop.HOSTNAME}, n.{Prop.PATH}) AS name,
               n.{_VALUE} AS value, distance
        ORDER BY distance, id
        """
    ),
    params=(_MODEL_PARAM,),
    constants=_constants("kindLabels"),
)

LAYERS = NamedQuery(
    name="layers",
    summary="A model's layers in order, one row per (layer, attribute) (Keras-Prov Q2).",
    description=(
        "The layers the model HAD_MEMBER, ordered by index, each with its name and "
        f"class and one row per attribute it has ({', '.join(LAYER_ATTRIBUTES)}), "
        "attributes in alphabetical order; a layer with none of them (e.g. Flatten) "
        "gives one row with a null attribute and value."
    ),
    cypher=_text(
        f"""
        {_find_model()}
        MATCH (model)-[:{HAD_MEMBER.rel_type}]->(l:{_LAYER})
        WITH l, [a IN $layerAttributes WHERE l[a] IS NOT NULL] AS present
        UNWIND CASE WHEN size(present) = 0 THEN [null] ELSE present END AS attribute
        RETURN l.{Prop.INDEX} AS `index`, l.{_NAME} AS layer, l.{Prop.CLASS} AS `class`, attribute,
               CASE WHEN attribute IS NULL THEN null ELSE l[attribute] END AS value
        ORDER BY `index`, attribute
        """
    ),
    params=(_MODEL_PARAM,),
    constants=_constants("layerAttributes"),
)

SEED_Q1 = NamedQuery(
    name="seed-q1",
    summary="Loss and val_loss at epoch N per optimizer, for one initial learning rate "
    "(Keras-Prov Q1).",
    description=(
        "For every run whose initial learning_rate equals `learning_rate` (relative "
        "tolerance `tolerance`, so float32 values such as 0.0010000000474974513 match "
        "0.001) and that has metrics at epoch `epoch`: its optimizer, run name and id, "
        "loss and val_loss at that epoch. Ordered by optimizer, run, runId."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})-[:{_USED}]->(lr:{_HP} {{{_NAME}: $hpLearningRate}})
        WHERE abs(toFloat(lr.{_VALUE}) - $learning_rate) <= $tolerance * abs($learning_rate)
        MATCH (r)<-[:{_INFORMED}]-(:{_EPOCH} {{{_EPOCH_NO}: $epoch}})<-[:{_GEN}]-(m:{_METRICS})
        {_initial("opt", "hpOptimizer", optional=False)}
        RETURN opt.{_VALUE} AS optimizer, r.{_NAME} AS run, r.{_RUN_ID} AS runId,
               m.{_L} AS {_L}, m.{_VL} AS {_VL}
        ORDER BY optimizer, run, runId
        """
    ),
    params=(
        Param("epoch", int, default=30, minimum=1, help="epoch number (1-based)"),
        Param("learning_rate", float, default=0.001, help="initial learning rate"),
        Param("tolerance", float, default=1e-6, minimum=0, help="relative tolerance"),
    ),
    chart=ChartHint("bar", "optimizer", (_L, _VL)),
    constants=_constants("hpLearningRate", "hpOptimizer"),
)

SEED_Q3 = NamedQuery(
    name="seed-q3",
    summary="Average epoch time and average loss per optimizer (Keras-Prov Q3).",
    description=(
        "Over all epochs of all runs with an optimizer hyperparameter, grouped by the "
        "initial optimizer: number of runs, number of epochs, mean elapsed seconds per "
        "epoch and mean epoch loss (an epoch still running counts as an epoch; the means "
        "skip what it lacks). Ordered by optimizer."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})<-[:{_INFORMED}]-(e:{_EPOCH})
        {_initial("opt", "hpOptimizer", optional=False)}
        OPTIONAL MATCH (m:{_METRICS})-[:{_GEN}]->(e)
        WITH opt.{_VALUE} AS optimizer, r, e, m
        RETURN optimizer, count(DISTINCT r) AS runs, count(e) AS epochs,
               avg(e.{Prop.ELAPSED}) AS avgEpochSeconds, avg(m.{_L}) AS avgLoss
        ORDER BY optimizer
        """
    ),
    chart=ChartHint("bar", "optimizer", ("avgEpochSeconds", "avgLoss")),
    constants=_constants("hpOptimizer"),
)

SEED_Q4 = NamedQuery(
    name="seed-q4",
    summary="Initial learning rate, optimizer and number of layers of the run with the "
    "best value of a metric (Keras-Prov Q4).",
    description=(
        "Finds the epoch metrics with the best value of `metric` (largest for mode "
        "max, smallest for min; ties go to the smallest runId, then epoch) and returns "
        "that run's id and name, initial optimizer and learning_rate, the number of "
        "layers of its model (its Layer members, else the model's layerCount), the "
        "metric, the value and the epoch it was reached at. Test metrics are ignored."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})<-[:{_INFORMED}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
        WITH r, e, m[$metric] AS value
        WHERE value IS NOT NULL
        WITH r, e, value
        ORDER BY CASE WHEN $mode = 'min' THEN value ELSE -value END, r.{_RUN_ID}, e.{_EPOCH_NO}
        LIMIT 1
        {_initial("opt", "hpOptimizer")}
        {_initial("lr", "hpLearningRate")}
        OPTIONAL MATCH (model:{_MODEL})-[:{_GEN}]->(r)
        OPTIONAL MATCH (model)-[:{_MEMBER}]->(layer:{_LAYER})
        WITH r, e, value, opt, lr, model, count(layer) AS members
        RETURN r.{_RUN_ID} AS runId, r.{_NAME} AS run, opt.{_VALUE} AS optimizer,
               lr.{_VALUE} AS learning_rate,
               CASE WHEN members > 0 THEN members ELSE model.{Prop.LAYER_COUNT} END AS layers,
               $metric AS metric, value, e.{_EPOCH_NO} AS epoch
        """
    ),
    params=(
        Param("metric", str, default=_VA, help="metric key as Keras logs it"),
        Param("mode", str, default="max", choices=("max", "min"), help="best is max or min"),
    ),
    constants=_constants("hpOptimizer", "hpLearningRate"),
)

SEED_Q7 = NamedQuery(
    name="seed-q7",
    summary="Hyperparameter combinations (optimizer, learning_rate, batch_size) by "
    "average training time (Keras-Prov Q7).",
    description=(
        "A run's training time is the sum of its epochs' elapsed seconds (runs without "
        "epochs are left out). Runs are grouped by their initial optimizer, "
        "learning_rate and batch_size; each combination gets its number of runs and "
        "mean training time. Ordered by that mean, then by the combination."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})<-[:{_INFORMED}]-(e:{_EPOCH})
        WITH r, sum(e.{Prop.ELAPSED}) AS trainingSeconds
        {_initial("opt", "hpOptimizer", optional=False)}
        {_initial("lr", "hpLearningRate")}
        {_initial("bs", "hpBatchSize")}
        WITH opt.{_VALUE} AS optimizer, lr.{_VALUE} AS learning_rate,
             bs.{_VALUE} AS batch_size, trainingSeconds
        RETURN optimizer, learning_rate, batch_size, count(*) AS runs,
               avg(trainingSeconds) AS avgTrainingSeconds
        ORDER BY avgTrainingSeconds, optimizer, learning_rate, batch_size
        """
    ),
    chart=ChartHint("bar", "optimizer", ("avgTrainingSeconds",)),
    constants=_constants("hpOptimizer", "hpLearningRate", "hpBatchSize"),
)

RUNS_USING = NamedQuery(
    name="runs-using",
    summary="Runs that used a dataset or a script version.",
    description=(
        "`entity` is matched against datasets (node id, fingerprint or name) and "
        "scripts (node id, sha256 or path). One row per (run, matching entity) the run "
        "USED, with the entity's label and the role it was used in (train, validation). "
        "Newest runs first."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})-[u:{_USED}]->(x)
        WHERE (x:{_DATASET} AND (x.{_ID} = $entity OR x.{Prop.FINGERPRINT} = $entity
                                  OR x.{_NAME} = $entity))
           OR (x:{_SCRIPT} AND (x.{_ID} = $entity OR x.{Prop.SHA256} = $entity
                                 OR x.{Prop.PATH} = $entity))
        RETURN r.{_RUN_ID} AS runId, r.{_NAME} AS name, r.{Prop.EXPERIMENT} AS experiment,
               r.{Prop.STATUS} AS status, r.{_STARTED} AS startedAtTime,
               {_domain_label("x")} AS entityType, x.{_ID} AS entity, u.{Prop.ROLE} AS role
        ORDER BY coalesce(startedAtTime, '') DESC, runId, entity
        """
    ),
    params=(
        Param(
            "entity",
            str,
            required=True,
            help="dataset id, fingerprint or name; or script id, sha256 or path",
        ),
    ),
    constants=_constants("kindLabels"),
)

ALL: tuple[NamedQuery, ...] = (
    RUNS,
    EPOCHS,
    HYPERPARAMETERS_AT,
    LINEAGE,
    LAYERS,
    SEED_Q1,
    SEED_Q3,
    SEED_Q4,
    SEED_Q7,
    RUNS_USING,
)
