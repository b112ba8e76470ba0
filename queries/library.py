"""The Cypher texts of ProvKB's named lineage queries.

Labels, relationship types and property names come from `provkb.ontology` (a Keras
metric key `k`, data, is the property `metric.k` of a Metrics node: `ontology.metric_prop`;
well-known keys are in `Metric` below) and are put
into the texts with f-strings, so nothing is spelled twice. Values, including data such as
hyperparameter names, always travel as parameters.

Every text sticks to the Cypher subset that runs unchanged, with the same rows, on
Neo4j 5 and on ArcadeDB's openCypher: parameters everywhere, OPTIONAL MATCH, `EXISTS {}`,
bounded variable-length paths, dynamic property access `n[$key]`, aggregation in WITH,
and an explicit ORDER BY with full tie-breaking on every query. No `id(n)`, APOC,
`elementId` parsing or inline `collect(x)[a..b]`. Series (moving averages) are built
with pattern comprehensions, list comprehensions, slices and `reduce`, and put in order
by computed ranks, never by relying on the order rows reach an aggregation.
"""

from __future__ import annotations

from ..ontology import (
    ACTED_ON_BEHALF_OF,
    ACTIVITY,
    ADAPTATION,
    AGENT,
    DATASET,
    ENTITY,
    EPOCH,
    HAD_MEMBER,
    HYPERPARAMETER,
    KINDS,
    LAYER,
    LONG_NAME_PREFIX,
    METRICS,
    MODEL,
    RELATIONS,
    SCRIPT,
    STEERING_ACTION,
    STEERING_REQUEST,
    STUDY,
    TRAINING_RUN,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    WAS_INVALIDATED_BY,
    HyperparameterName,
    Prop,
    RunStatus,
    SteeringStatus,
    SummaryStat,
    metric_prop,
    summary_prop,
)
from .library_sessions import SEED_Q5, SEED_Q6, STUDY_LINEAGE, STUDY_TRIAL_STATUS
from .spec import ChartHint, NamedQuery, Param


class Metric:
    """Keras metric keys (data): a Metrics node holds key `k` as property `metric_prop(k)`."""

    LOSS = "loss"
    ACCURACY = "accuracy"
    VAL_LOSS = "val_loss"
    VAL_ACCURACY = "val_accuracy"


HP = HyperparameterName  # names the queries look up


# Layer properties reported by `layers`, one row each (when the layer has it).
LAYER_ATTRIBUTES = (Prop.ACTIVATION, Prop.UNITS, Prop.FILTERS, Prop.KERNEL_SIZE, Prop.RATE)

# Relations followed (outward) by `lineage`: every PROV relation except invalidation,
# which points at what ended an entity, not at what it came from, and delegation: a
# shared agent (keras, the machine, a callback) acts on behalf of a run's person only in
# that run's activities, which their associations say (`onBehalfOf`); an agent-to-agent
# edge without its activity would name every person who ever used the agent (h6).
LINEAGE_RELATIONS = tuple(
    r for r in RELATIONS if r is not WAS_INVALIDATED_BY and r is not ACTED_ON_BEHALF_OF
)
LINEAGE_MAX_DEPTH = 10

# Fixed parameters of the texts (names prefixed to keep them apart from user ones).
_CONSTANTS = {
    "hpOptimizer": HP.OPTIMIZER,
    "hpLearningRate": HP.LEARNING_RATE,
    "hpBatchSize": HP.BATCH_SIZE,
    "hpEpochs": HP.EPOCHS,
    "kindLabels": tuple(k.label for k in KINDS),
    "layerAttributes": LAYER_ATTRIBUTES,
    # run summary properties are these prefixes + a metric key (ontology.summary_prop)
    "summaryMax": summary_prop(SummaryStat.MAX, ""),
    "summaryMaxEpoch": summary_prop(SummaryStat.MAX_EPOCH, ""),
    "summaryMin": summary_prop(SummaryStat.MIN, ""),
    "summaryMinEpoch": summary_prop(SummaryStat.MIN_EPOCH, ""),
    # a Metrics property is this prefix + a metric key (ontology.metric_prop)
    "metricPrefix": metric_prop(""),
    "metricLearningRate": metric_prop(HP.LEARNING_RATE),
    "longNamePrefix": LONG_NAME_PREFIX,
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


def shown_status(var: str = "r") -> str:
    """The status to show of run `var` (one fragment for every query that shows one).

    A run that says `running` but whose training process has been silent longer than
    the run's own `heartbeatTimeout` (seconds since its last `heartbeat`, or since it
    started when it never beat) is `interrupted`: the process died without ending it.
    Runs without a `heartbeatTimeout` (recorded before heartbeats) keep their status.
    Compares the server's clock with the training machine's ISO times.
    """
    status, timeout = f"{var}.{Prop.STATUS}", f"{var}.{Prop.HEARTBEAT_TIMEOUT}"
    last_sign = f"coalesce({var}.{Prop.HEARTBEAT}, {var}.{Prop.STARTED})"
    return (
        f"CASE WHEN {status} = '{RunStatus.RUNNING}' AND {timeout} IS NOT NULL "
        f"AND datetime().epochMillis - datetime({last_sign}).epochMillis > {timeout} * 1000 "
        f"THEN '{RunStatus.INTERRUPTED}' ELSE {status} END"
    )


def _metric(var: str, metric: str) -> str:
    """Metrics node `var`'s value of metric key `metric` (`metric.<key>`: quoted)."""
    quoted = metric_prop(metric).replace("`", "``")
    return f"{var}.`{quoted}`"


def _metrics_list(var: str) -> str:
    """Every metric of Metrics node `var` as a list of {name, value} maps (name as
    Keras logged it, a shortened long name resolved), in the engine's key order."""
    key = "substring(k, size($metricPrefix))"
    name = f"coalesce({var}[$longNamePrefix + {key}], {key})"
    return (
        f"[k IN keys({var}) WHERE k STARTS WITH $metricPrefix | {{name: {name}, value: {var}[k]}}]"
    )


def _summary(var: str, stat: str, metric: str) -> str:
    """`var`'s run summary property `stat` of `metric` (its name has dots: quoted)."""
    return f"{var}.`{summary_prop(stat, metric)}`"


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

# seed-q1, q3, q4, q7: only the runs of one experiment, when given (h6)
_EXPERIMENT_PARAM = Param("experiment", str, help="only runs of this experiment (name)")

_L, _VL, _A, _VA = Metric.LOSS, Metric.VAL_LOSS, Metric.ACCURACY, Metric.VAL_ACCURACY

RUNS = NamedQuery(
    name="runs",
    summary="Every training run with its main hyperparameters and final metrics.",
    description=(
        "One row per run, newest first (runs without a start time last): identity, "
        "status (`interrupted` for a run whose training process went silent without "
        "ending it), epochs completed, the initial optimizer, learning_rate, batch_size and "
        "epochs (hyperparameter values the run USED; epochs falls back to epochsPlanned), "
        "the metrics of the last epoch that has metrics, and the best val_accuracy over "
        "all epochs. Optionally only the runs of one experiment."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})
        WHERE $experiment IS NULL OR r.{Prop.EXPERIMENT} = $experiment
        WITH r ORDER BY coalesce(r.{_STARTED}, '') DESC, r.{_RUN_ID} LIMIT $limit
        OPTIONAL MATCH (r)<-[:{_INFORMED}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
        WITH r, max(e.{_EPOCH_NO}) AS lastEpoch, max({_metric("m", _VA)}) AS bestValAccuracy
        OPTIONAL MATCH (r)<-[:{_INFORMED}]-(:{_EPOCH} {{{_EPOCH_NO}: lastEpoch}})
                       <-[:{_GEN}]-(fm:{_METRICS})
        {_initial("opt", "hpOptimizer")}
        {_initial("lr", "hpLearningRate")}
        {_initial("bs", "hpBatchSize")}
        {_initial("ep", "hpEpochs")}
        RETURN r.{_RUN_ID} AS runId, r.{_NAME} AS name, r.{Prop.EXPERIMENT} AS experiment,
               {shown_status("r")} AS status, r.{_STARTED} AS startedAtTime,
               r.{Prop.EPOCHS_COMPLETED} AS epochsCompleted,
               opt.{_VALUE} AS optimizer, lr.{_VALUE} AS learning_rate,
               bs.{_VALUE} AS batch_size, coalesce(ep.{_VALUE}, r.{Prop.EPOCHS_PLANNED}) AS epochs,
               {_metric("fm", _L)} AS {_L}, {_metric("fm", _VL)} AS {_VL},
               {_metric("fm", _A)} AS {_A}, {_metric("fm", _VA)} AS {_VA},
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
        "logged), the epoch's elapsed seconds and `metrics`: every key Keras logged, as "
        "{name, value} maps ordered by name. Epochs without metrics yet show nulls (and "
        "no metrics)."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        MATCH (e:{_EPOCH})-[:{_INFORMED}]->(r)
        OPTIONAL MATCH (m:{_METRICS})-[:{_GEN}]->(e)
        OPTIONAL MATCH {_LR_PATTERN}
        WHERE {_LR_IS_HP} AND {_in_force("h", f"e.{_EPOCH_NO}")}
        WITH e, m, h, CASE WHEN m IS NULL THEN [] ELSE {_metrics_list("m")} END AS raw
        WITH e, m, h, [p IN raw | {{p: p, rank: size([q IN raw WHERE q.name < p.name])}}] AS ranked
        RETURN e.{_EPOCH_NO} AS epoch, {_metric("m", _L)} AS {_L}, {_metric("m", _A)} AS {_A},
               {_metric("m", _VL)} AS {_VL}, {_metric("m", _VA)} AS {_VA},
               coalesce(h.{_VALUE}, m[$metricLearningRate]) AS learning_rate,
               coalesce(e.{Prop.ELAPSED}, m.{Prop.ELAPSED}) AS {Prop.ELAPSED},
               [i IN range(0, size(ranked) - 1) | [x IN ranked WHERE x.rank = i][0].p] AS metrics
        ORDER BY epoch
        """
    ),
    params=(_RUN_PARAM,),
    chart=ChartHint("line", "epoch", (_L, _VL, _A, _VA)),
    constants=_constants("hpLearningRate", "metricLearningRate", "metricPrefix", "longNamePrefix"),
)

HYPERPARAMETERS_AT = NamedQuery(
    name="hyperparameters-at",
    summary="Every hyperparameter's value at epoch e of a run.",
    description=(
        "For each hyperparameter name of the run, the value in force at the given "
        "epoch: the Hyperparameter node with the largest fromEpoch <= epoch (the largest "
        "version among equals), with its source, fromEpoch and version, and `note`: "
        "null, or, for an epoch beyond the last the run recorded, that it is so (the "
        "values are those in force at its end). Ordered by name."
    ),
    cypher=_text(
        f"""
        {_find_run()}
        WITH r, reduce(last = 0, n IN [(r)<-[:{_INFORMED}]-(e:{_EPOCH}) | e.{_EPOCH_NO}] |
             CASE WHEN n > last THEN n ELSE last END) AS lastEpoch
        MATCH {_HP_PATTERN}
        WHERE {_HP_IS_HP} AND {_in_force("h", "$epoch")}
        RETURN h.{_NAME} AS name, h.{_VALUE} AS value, h.{Prop.SOURCE} AS source,
               h.{_FROM} AS fromEpoch, h.{_VERSION} AS version,
               CASE WHEN $epoch > lastEpoch THEN 'epoch ' + toString($epoch)
                    + ' is beyond the last epoch of the run (' + toString(lastEpoch)
                    + '): these values were in force at its end' END AS note
        ORDER BY name
        """
    ),
    params=(
        _RUN_PARAM,
        Param("epoch", int, required=True, minimum=1, help="epoch number (1-based)"),
    ),
)

_LINEAGE_TYPES = "|".join(r.rel_type for r in LINEAGE_RELATIONS)


def _lineage_row(var: str, distance: str, via: str) -> str:
    """One `lineage` row of node `var` as a map (the part a UNWIND merges)."""
    return (
        f"{{id: {var}.{_ID}, kind: {_kind_label(var)}, label: {_domain_label(var)}, "
        f"name: coalesce({var}.{_NAME}, {var}.{Prop.HOSTNAME}, {var}.{Prop.PATH}), "
        f"value: {var}.{_VALUE}, distance: {distance}, via: {via}}}"
    )


def _or_null(var: str, row: str) -> str:
    """`row`, or null when `var` is (collect leaves nulls out)."""
    return f"CASE WHEN {var} IS NULL THEN null ELSE {row} END"


_ENT, _ACT, _AGENT = ENTITY.label, ACTIVITY.label, AGENT.label
_ASSOC = WAS_ASSOCIATED_WITH.rel_type
# a later version `v` of a hyperparameter of run `r` and the activity `c` that generated it.
# Matched, not in pattern comprehensions: ArcadeDB plans a comprehension that starts
# from an unbound node as a scan of every node of its label (lineage: 560 ms at 1,000
# runs, 3 ms matched); one that starts from a bound node is fine.
_CHANGED = f"(v:{_ENT} {{{_RUN_ID}: r.{_RUN_ID}}})-[:{_GEN}]->(c:{_ACT})"

LINEAGE = NamedQuery(
    name="lineage",
    summary="Everything a model was derived from, transitively, and every change of its "
    "hyperparameters.",
    description=(
        "Follows PROV relations outward from a model (generated by its run, which used "
        "hyperparameter values, data, script and environment, was informed by its "
        f"experiment, associated with agents, ...) up to {LINEAGE_MAX_DEPTH} hops; "
        "delegation edges are not followed (a shared agent acts for a run's person "
        "only in its activities: the association's onBehalfOf), so only the agents of "
        "the run's own activities appear. Then every value the training used beyond the "
        "first (each later version of a hyperparameter, at distance 2 like the first), "
        "the adaptation or steering action that generated it (3), and what that "
        "activity used and who it was associated with (4): the old value, the epoch "
        "metrics the decision read, the steering request, the callback agent or person. "
        "One row per node: id, PROV kind (Entity, Activity, Agent), domain label, name "
        "(name, hostname or path), value (for hyperparameter values), the shortest "
        "distance from the model and `via`: for a node of the second part only, the id of "
        "the change activity it belongs to (the smallest, when several), which groups "
        "each change with its inputs; null for what the model derives from directly. "
        "Ordered by distance, then id."
    ),
    cypher=_text(
        f"""
        {_find_model()}
        OPTIONAL MATCH {_CHANGED} WHERE r IS NOT NULL AND v:{_HP}
        OPTIONAL MATCH (c)-[:{_USED}]->(u:{_ENT})
        OPTIONAL MATCH (c)-[:{_ASSOC}]->(g:{_AGENT})
        WITH model, collect(DISTINCT {_or_null("v", _lineage_row("v", "2", "c.id"))})
             + collect(DISTINCT {_or_null("c", _lineage_row("c", "3", "c.id"))})
             + collect(DISTINCT {_or_null("u", _lineage_row("u", "4", "c.id"))})
             + collect(DISTINCT {_or_null("g", _lineage_row("g", "4", "c.id"))}) AS changed
        OPTIONAL MATCH p = (model)-[:{_LINEAGE_TYPES}*1..{LINEAGE_MAX_DEPTH}]->(n)
        WITH changed, n, min(length(p)) AS distance
        UNWIND CASE WHEN n IS NULL THEN changed
               ELSE [{_lineage_row("n", "distance", "null")}] + changed END AS row
        WITH row.id AS id, row.kind AS kind, row.label AS label, row.name AS name,
             row.value AS value, min(row.distance) AS distance,
             min(CASE WHEN row.via IS NULL THEN 0 ELSE 1 END) AS changeOnly,
             min(row.via) AS change
        RETURN id, kind, label, name, value, distance,
               CASE WHEN changeOnly = 1 THEN change END AS via
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
          AND ($experiment IS NULL OR r.{Prop.EXPERIMENT} = $experiment)
        MATCH (r)<-[:{_INFORMED}]-(:{_EPOCH} {{{_EPOCH_NO}: $epoch}})<-[:{_GEN}]-(m:{_METRICS})
        {_initial("opt", "hpOptimizer", optional=False)}
        RETURN opt.{_VALUE} AS optimizer, r.{_NAME} AS run, r.{_RUN_ID} AS runId,
               {_metric("m", _L)} AS {_L}, {_metric("m", _VL)} AS {_VL}
        ORDER BY optimizer, run, runId
        """
    ),
    params=(
        Param("epoch", int, default=30, minimum=1, help="epoch number (1-based)"),
        Param("learning_rate", float, default=0.001, help="initial learning rate"),
        Param("tolerance", float, default=1e-6, minimum=0, help="relative tolerance"),
        _EXPERIMENT_PARAM,
    ),
    chart=ChartHint("bar", "optimizer", (_L, _VL)),
    constants=_constants("hpLearningRate", "hpOptimizer"),
)

SEED_Q3 = NamedQuery(
    name="seed-q3",
    summary="Average epoch time and average loss per optimizer (Keras-Prov Q3).",
    description=(
        "Over all completed epochs of all runs with an optimizer hyperparameter, grouped "
        "by the initial optimizer: number of runs, number of epochs, mean elapsed "
        "seconds per epoch and mean epoch loss. Read from each run's summary "
        "(epochsCompleted, epochSeconds, the loss sum and count), which capture keeps "
        "up to date at every epoch end; a run without one (imported from elsewhere) "
        "counts with its epochs only. Ordered by optimizer."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})
        WHERE $experiment IS NULL OR r.{Prop.EXPERIMENT} = $experiment
        {_initial("opt", "hpOptimizer", optional=False)}
        WITH opt.{_VALUE} AS optimizer, count(r) AS runs,
             sum(coalesce(r.{Prop.EPOCHS_COMPLETED}, 0)) AS epochs,
             sum(CASE WHEN r.{Prop.EPOCH_SECONDS} IS NULL THEN 0
                      ELSE coalesce(r.{Prop.EPOCHS_COMPLETED}, 0) END) AS timedEpochs,
             sum(coalesce(r.{Prop.EPOCH_SECONDS}, 0.0)) AS seconds,
             sum(coalesce({_summary("r", SummaryStat.SUM, _L)}, 0.0)) AS lossSum,
             sum(coalesce({_summary("r", SummaryStat.COUNT, _L)}, 0)) AS lossCount
        RETURN optimizer, runs, epochs,
               CASE WHEN timedEpochs > 0 THEN seconds / timedEpochs END AS avgEpochSeconds,
               CASE WHEN lossCount > 0 THEN lossSum / lossCount END AS avgLoss
        ORDER BY optimizer
        """
    ),
    params=(_EXPERIMENT_PARAM,),
    chart=ChartHint("bar", "optimizer", ("avgEpochSeconds", "avgLoss")),
    constants=_constants("hpOptimizer"),
)

SEED_Q4 = NamedQuery(
    name="seed-q4",
    summary="Initial learning rate, optimizer and number of layers of the run with the "
    "best value of a metric (Keras-Prov Q4).",
    description=(
        "Finds the run whose epochs reached the best value of `metric` (largest for "
        "mode max, smallest for min; ties go to the smallest runId; the epoch is the "
        "first that reached it) and returns that run's id and name, initial optimizer "
        "and learning_rate, the number of layers of its model (its Layer members, else "
        "the model's layerCount), the metric, the value and the epoch. Read from each "
        "run's summary, which capture keeps up to date at every epoch end; test "
        "metrics are not part of it."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})
        WHERE $experiment IS NULL OR r.{Prop.EXPERIMENT} = $experiment
        WITH r, CASE WHEN $mode = 'min' THEN $summaryMin ELSE $summaryMax END + $metric AS key,
             CASE WHEN $mode = 'min' THEN $summaryMinEpoch ELSE $summaryMaxEpoch END
             + $metric AS epochKey
        WITH r, r[key] AS value, r[epochKey] AS epoch
        WHERE value IS NOT NULL
        WITH r, value, epoch
        ORDER BY CASE WHEN $mode = 'min' THEN value ELSE -value END, r.{_RUN_ID}
        LIMIT 1
        {_initial("opt", "hpOptimizer")}
        {_initial("lr", "hpLearningRate")}
        OPTIONAL MATCH (model:{_MODEL})-[:{_GEN}]->(r)
        OPTIONAL MATCH (model)-[:{_MEMBER}]->(layer:{_LAYER})
        WITH r, value, epoch, opt, lr, model, count(layer) AS members
        RETURN r.{_RUN_ID} AS runId, r.{_NAME} AS run, opt.{_VALUE} AS optimizer,
               lr.{_VALUE} AS learning_rate,
               CASE WHEN members > 0 THEN members ELSE model.{Prop.LAYER_COUNT} END AS layers,
               $metric AS metric, value, epoch
        """
    ),
    params=(
        Param("metric", str, default=_VA, help="metric key as Keras logs it"),
        Param("mode", str, default="max", choices=("max", "min"), help="best is max or min"),
        _EXPERIMENT_PARAM,
    ),
    constants=_constants(
        "hpOptimizer",
        "hpLearningRate",
        "summaryMax",
        "summaryMaxEpoch",
        "summaryMin",
        "summaryMinEpoch",
    ),
)

SEED_Q7 = NamedQuery(
    name="seed-q7",
    summary="Hyperparameter combinations (optimizer, learning_rate, batch_size) by "
    "average training time (Keras-Prov Q7).",
    description=(
        "A run's training time is the sum of its completed epochs' elapsed seconds "
        "(its summary's epochSeconds; runs without epochs are left out). Runs are "
        "grouped by their initial optimizer, learning_rate and batch_size; each "
        "combination gets its number of runs and mean training time. Ordered by that "
        "mean, then by the combination."
    ),
    cypher=_text(
        f"""
        MATCH (r:{_RUN})
        WHERE r.{Prop.EPOCHS_COMPLETED} > 0 AND r.{Prop.EPOCH_SECONDS} IS NOT NULL
          AND ($experiment IS NULL OR r.{Prop.EXPERIMENT} = $experiment)
        WITH r, r.{Prop.EPOCH_SECONDS} AS trainingSeconds
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
    params=(_EXPERIMENT_PARAM,),
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
               {shown_status("r")} AS status, r.{_STARTED} AS startedAtTime,
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

# -- steering: what people changed and what followed (docs/graph-model.md, "Steering",
# "Studies") -------------------------------------------------------------------------


class Steer:
    """Property names of steering requests and actions, studies and their iterations."""

    REQUEST_ID = "requestId"
    ACTION = "action"
    REQUESTED_VALUE = "requestedValue"
    REASON = "reason"
    NOTE = "note"
    PERSON = "person"
    REQUESTED_AT = "requestedAtTime"
    STATUS_REASON = "statusReason"
    APPLIED_EPOCH = "appliedEpoch"
    STUDY = "study"
    ITERATION = "iteration"  # of an iteration run (1-based); of a queue edit: iterations done
    ITEM_ID = "itemId"
    GAIN = "gain"
    BEFORE = "before"  # of a queue edit (JSON)
    AFTER = "after"


_STUDY, _ACTION, _REQUEST = STUDY.label, STEERING_ACTION.label, STEERING_REQUEST.label
_ADAPT = ADAPTATION.label
_ITER, _GAIN, _ITEM = Steer.ITERATION, Steer.GAIN, Steer.ITEM_ID

# Where a steering action sits on its series: a run's action at its `epoch`, a queue
# edit at `iteration + 1` (the first iteration it affects). A run action has no
# iteration and a queue edit no epoch, so one coalesce serves both.
_AT_A = f"coalesce(a.{_EPOCH_NO}, a.{_ITER} + 1)"
_AT_B = f"coalesce(b.{_EPOCH_NO}, b.{_ITER} + 1)"
_B_STARTED, _A_STARTED = f"coalesce(b.{_STARTED}, '')", f"coalesce(a.{_STARTED}, '')"
# Action b comes after action a: later on the series, then started later, then larger id.
_B_AFTER_A = (
    f"({_AT_B} > {_AT_A} OR ({_AT_B} = {_AT_A} AND ({_B_STARTED} > {_A_STARTED}\n"
    f"       OR ({_B_STARTED} = {_A_STARTED} AND b.{_ID} > a.{_ID}))))"
)


def _find_run_optional(param: str = "run") -> str:
    """Like `_find_run`, but one row with `r` null when `$param` is null or unknown."""
    exact = f"r.{_RUN_ID} = ${param} OR r.{_ID} = ${param}"
    return (
        f"OPTIONAL MATCH (r:{_RUN})\n"
        f"WHERE ${param} IS NOT NULL AND ({exact} OR r.{_NAME} = ${param})\n"
        f"WITH r ORDER BY CASE WHEN {exact} THEN 0 ELSE 1 END, "
        f"coalesce(r.{_STARTED}, '') DESC, r.{_RUN_ID} LIMIT 1"
    )


def _find_study_optional(param: str = "study") -> str:
    """`s`: the study named `$param` (name or node id); null when not given or unknown."""
    return (
        f"OPTIONAL MATCH (s:{_STUDY})\n"
        f"WHERE ${param} IS NOT NULL AND (s.{_ID} = ${param} OR s.{_NAME} = ${param})"
    )


# The series of a run (its epoch metrics' `$metric`, by epoch) or of a study (its
# iteration runs' gain, by iteration), as `xs` (epochs or iterations) and `ys` (values)
# in order, with `src` the run or study node. Points whose value is missing or NaN
# (`y = y` is false for NaN and null) are left out. The points are ranked by x (the
# node id breaks ties) and put in rank order, so no engine's row order matters.
# ArcadeDB reads a pattern comprehension on a null node as unbound (it matched every
# run's epochs), hence the CASE around each comprehension.
_SERIES = f"""{_find_run_optional()}
{_find_study_optional()}
WITH r, s WHERE r IS NOT NULL OR s IS NOT NULL
WITH coalesce(r, s) AS src, CASE WHEN r IS NOT NULL
     THEN [(r)<-[:{_INFORMED}]-(e:{_EPOCH})<-[:{_GEN}]-(m:{_METRICS})
       WHERE m[$metricPrefix + $metric] = m[$metricPrefix + $metric]
       | {{x: e.{_EPOCH_NO}, y: m[$metricPrefix + $metric], tie: m.{_ID}}}]
     ELSE [(s)<-[:{_INFORMED}]-(it:{_RUN})
       WHERE it.{_GAIN} = it.{_GAIN} AND it.{_ITER} IS NOT NULL
       | {{x: it.{_ITER}, y: it.{_GAIN}, tie: it.{_ID}}}] END AS raw
WITH src, [p IN raw | {{x: p.x, y: p.y,
     rank: size([q IN raw WHERE q.x < p.x OR (q.x = p.x AND q.tie < p.tie)])}}] AS ranked
WITH src, [i IN range(0, size(ranked) - 1) | [p IN ranked WHERE p.rank = i][0]] AS pts
WITH src, [p IN pts | p.x] AS xs, [p IN pts | p.y] AS ys"""


def _mean(values: str) -> str:
    """The mean of a list expression (null when it is empty)."""
    return (
        f"CASE WHEN size({values}) = 0 THEN null "
        f"ELSE reduce(t = 0.0, y IN {values} | t + y) / size({values}) END"
    )


# Windows of the point at index i (0-based, i >= 2k - 1): the k points ending at i and
# the k points before them.
_AFTER = "ys[i - $k + 1..i + 1]"
_BEFORE = "ys[i - 2 * $k + 1..i - $k + 1]"

_ACTION_COLUMNS = (
    f"coalesce(a.{Steer.ACTION}, a.{Prop.KIND}) AS action, "
    f"a.{Prop.HYPERPARAMETER} AS hyperparameter, a.{_ITEM} AS itemId,\n"
    f"       coalesce(a.{Prop.OLD_VALUE}, a.{Steer.BEFORE}) AS oldValue, "
    f"coalesce(a.{Prop.NEW_VALUE}, a.{Steer.AFTER}) AS newValue,\n"
    f"       a.{Steer.PERSON} AS person, a.{Steer.REASON} AS reason,\n"
    f"       CASE WHEN a IS NULL THEN null WHEN a:{_ADAPT} THEN true ELSE false END AS automatic,"
    f" a.{Prop.CALLBACK} AS callback"
)
# A change of a run or study: a person's steering action or queue edit, or an automatic
# adaptation (a schedule, ReduceLROnPlateau, early stopping) of a run (h6).
_IS_CHANGE_A, _IS_CHANGE_B = f"(a:{_ACTION} OR a:{_ADAPT})", f"(b:{_ACTION} OR b:{_ADAPT})"

_SOURCE_PARAMS = (
    Param("run", str, help="run id, run node id or run name (newest); or give study"),
    Param("study", str, help="study name or node id (series: its iterations' gain); or give run"),
    Param(
        "metric",
        str,
        default=_VA,
        help="epoch metric key of the run's series (a study's series is its gain)",
    ),
    Param("k", int, default=5, minimum=1, help="points per moving-average window"),
)

GAIN_CHANGES = NamedQuery(
    name="gain-changes",
    summary="Where a run's metric (or a study's gain) changed, and the steering or "
    "adaptation before it.",
    description=(
        "The series is the run's epoch metric `metric` by epoch, or the study's iteration "
        "gain by iteration; give exactly one of run and study. Points whose value is "
        "missing or NaN are skipped (windows count the points present). For each point t "
        "with 2k points up to it, avgAfter is the mean of the k points ending at t, "
        "avgBefore the mean of the k points before those, delta = avgAfter - avgBefore. "
        "A change is a maximal run of consecutive points whose |delta| >= threshold with "
        "the same sign; each change gives one row, its point with the largest |delta| "
        "(the earliest among equals). `at` is the first point of that after-window (epoch "
        "or iteration). The action columns describe the latest change of the run (a "
        "SteeringAction or an automatic Adaptation: a schedule, ReduceLROnPlateau, early "
        "stopping; epoch <= at) or study (queue edit with iteration + 1 <= at), ties to "
        "the latest startedAtTime, then id; nulls when none. `automatic` is true for an "
        "adaptation (its action is its kind, callback the callback's class), false for "
        "what a person did, so 'did the schedule or the person help' is answerable. "
        "A queue edit's before/after show as oldValue/newValue, its item as itemId. "
        "Ordered by at."
    ),
    cypher=_text(
        f"""
        {_SERIES}
        WITH src, xs, ys, [i IN range(0, size(ys) - 1) | CASE WHEN i < 2 * $k - 1 THEN null
             ELSE reduce(t = 0.0, y IN {_AFTER} | t + y) / $k
                  - reduce(t = 0.0, y IN {_BEFORE} | t + y) / $k END] AS ds
        UNWIND range(2 * $k - 1, size(ys) - 1) AS i
        WITH src, xs, ys, ds, i WHERE abs(ds[i]) >= $threshold
        WITH src, xs, ys, ds, i,
             [d IN ds | d IS NOT NULL AND abs(d) >= $threshold AND (d > 0) = (ds[i] > 0)] AS same
        WITH src, xs, ys, ds, i,
             coalesce([j IN range(0, i) WHERE NOT same[j]][-1], -1) + 1 AS lo,
             coalesce([j IN range(i, size(ds) - 1) WHERE NOT same[j]][0], size(ds)) - 1 AS hi
        WHERE none(j IN range(lo, hi)
                   WHERE abs(ds[j]) > abs(ds[i]) OR (abs(ds[j]) = abs(ds[i]) AND j < i))
        WITH src, xs[i - $k + 1] AS at, reduce(t = 0.0, y IN {_BEFORE} | t + y) / $k AS avgBefore,
             reduce(t = 0.0, y IN {_AFTER} | t + y) / $k AS avgAfter, ds[i] AS delta
        OPTIONAL MATCH (a:{_ACT})-[:{_INFORMED}]->(src)
        WHERE {_IS_CHANGE_A} AND {_AT_A} <= at AND NOT EXISTS {{
          MATCH (b:{_ACT})-[:{_INFORMED}]->(src)
          WHERE {_IS_CHANGE_B} AND {_AT_B} <= at AND {_B_AFTER_A}
        }}
        RETURN at, avgBefore, avgAfter, delta, a.{_ID} AS actionId,
               {_ACTION_COLUMNS},
               {_AT_A} AS actionAt
        ORDER BY at
        """
    ),
    params=(
        *_SOURCE_PARAMS,
        Param("threshold", float, default=0.05, minimum=0, help="smallest |delta| reported"),
    ),
    chart=ChartHint("bar", "at", ("delta",)),
    constants=_constants("metricPrefix"),
)

STEERING_IMPACT = NamedQuery(
    name="steering-impact",
    summary="For each steering action or adaptation of a run (or study): the moving average "
    "before and after it.",
    description=(
        "The series is the run's epoch metric `metric` by epoch, or the study's iteration "
        "gain by iteration; give exactly one of run and study. Points whose value is "
        "missing or NaN are skipped. For each SteeringAction or automatic Adaptation "
        "(`automatic` true, `callback` its callback) of the run (at its epoch) or "
        "queue edit of the study (at its iteration + 1, the first iteration it affects): "
        "avgBefore is the mean of the last k points before `at`, avgAfter the mean of the "
        "first k points from `at` on, delta = avgAfter - avgBefore; pointsBefore and "
        "pointsAfter count the points averaged (fewer than k near the ends; 0 gives a null "
        "mean). Ordered by at, then actionId."
    ),
    cypher=_text(
        f"""
        {_SERIES}
        MATCH (a:{_ACT})-[:{_INFORMED}]->(src)
        WHERE {_IS_CHANGE_A}
        WITH a, {_AT_A} AS at, xs, ys
        WITH a, at, ys, size([x IN xs WHERE x < at]) AS n
        WITH a, at, ys[CASE WHEN n > $k THEN n - $k ELSE 0 END..n] AS ysBefore,
             ys[n..n + $k] AS ysAfter
        WITH a, at, ysBefore, ysAfter, {_mean("ysBefore")} AS avgBefore,
             {_mean("ysAfter")} AS avgAfter
        RETURN a.{_ID} AS actionId, at, {_ACTION_COLUMNS},
               avgBefore, avgAfter, avgAfter - avgBefore AS delta,
               size(ysBefore) AS pointsBefore, size(ysAfter) AS pointsAfter
        ORDER BY at, actionId
        """
    ),
    params=_SOURCE_PARAMS,
    chart=ChartHint("bar", "at", ("avgBefore", "avgAfter")),
    constants=_constants("metricPrefix"),
)

STEERING_HISTORY = NamedQuery(
    name="steering-history",
    summary="Who asked for what, when and why, and whether it was applied or rejected.",
    description=(
        "One row per SteeringRequest (kind `request`): of the run when `run` is given; "
        "else of the study's iteration runs when `study` is given; else of every run. "
        "With `study`, also one row per queue edit of that study (kind `queue-edit`, "
        "status applied, time = its startedAtTime, appliedIteration = iteration + 1, "
        "before/after as oldValue/newValue). Columns: who (person), when "
        "(requestedAtTime), and who really asked (osUser, host: the OS account "
        "and machine of the requesting process; clientAddress: the app's browser), "
        "what (action, hyperparameter or itemId, requestedValue as "
        "JSON text), why (reason, note), the outcome (status, statusReason, "
        "appliedEpoch) and, when applied, the SteeringAction's id and "
        "oldValue/newValue. Ordered by requestedAtTime, requestId; at most `limit` rows."
    ),
    cypher=_text(
        f"""
        {_find_run_optional()}
        {_find_study_optional()}
        WITH r, s
        UNWIND CASE WHEN s IS NULL THEN [0] ELSE [0, 1] END AS part
        OPTIONAL MATCH (q:{_REQUEST})
        WHERE part = 0 AND ((r IS NOT NULL AND q.{_RUN_ID} = r.{_RUN_ID})
              OR ($run IS NULL AND $study IS NULL)
              OR ($run IS NULL AND s IS NOT NULL AND EXISTS {{
                   MATCH (it:{ACTIVITY.label} {{{_RUN_ID}: q.{_RUN_ID}}})
                   WHERE it:{_RUN} AND it.{Steer.STUDY} = s.{_NAME}
                 }}))
        OPTIONAL MATCH (applied:{_ACTION})-[:{_USED}]->(q)
        OPTIONAL MATCH (edit:{_ACTION})-[:{_INFORMED}]->(s)
        WHERE part = 1
        WITH q, applied, edit WHERE q IS NOT NULL OR edit IS NOT NULL
        RETURN CASE WHEN q IS NULL THEN 'queue-edit' ELSE 'request' END AS kind,
               coalesce(q.{Steer.REQUEST_ID}, edit.{Steer.REQUEST_ID}) AS requestId,
               q.{_RUN_ID} AS runId, edit.{Steer.STUDY} AS study,
               coalesce(q.{Steer.REQUESTED_AT}, edit.{_STARTED}) AS requestedAtTime,
               coalesce(q.{Steer.PERSON}, edit.{Steer.PERSON}) AS person,
               coalesce(q.{Prop.OS_USER}, edit.{Prop.OS_USER}) AS osUser,
               coalesce(q.{Prop.HOST}, edit.{Prop.HOST}) AS host,
               q.{Prop.CLIENT_ADDRESS} AS clientAddress,
               coalesce(q.{Steer.ACTION}, edit.{Steer.ACTION}) AS action,
               q.{Prop.HYPERPARAMETER} AS hyperparameter, edit.{_ITEM} AS itemId,
               q.{Steer.REQUESTED_VALUE} AS requestedValue,
               coalesce(q.{Steer.REASON}, edit.{Steer.REASON}) AS reason,
               coalesce(q.{Steer.NOTE}, edit.{Steer.NOTE}) AS note,
               CASE WHEN q IS NULL THEN '{SteeringStatus.APPLIED}'
                    ELSE q.{Prop.STATUS} END AS status,
               q.{Steer.STATUS_REASON} AS statusReason,
               coalesce(q.{Steer.APPLIED_EPOCH}, applied.{_EPOCH_NO}) AS appliedEpoch,
               edit.{_ITER} + 1 AS appliedIteration,
               coalesce(applied.{_ID}, edit.{_ID}) AS actionId,
               coalesce(applied.{Prop.OLD_VALUE}, edit.{Steer.BEFORE}) AS oldValue,
               coalesce(applied.{Prop.NEW_VALUE}, edit.{Steer.AFTER}) AS newValue
        ORDER BY coalesce(requestedAtTime, ''), requestId, kind
        LIMIT $limit
        """
    ),
    params=(
        Param("run", str, help="only this run's requests (run id, node id or name; newest)"),
        Param("study", str, help="also this study's queue edits (study name or node id)"),
        Param("limit", int, default=100, minimum=0, help="at most this many rows"),
    ),
)

# Queries whose parameters include a group of which exactly one must be given; the
# registry refuses any other combination before running the text.
EXACTLY_ONE_OF: dict[str, tuple[str, ...]] = {
    GAIN_CHANGES.name: ("run", "study"),
    STEERING_IMPACT.name: ("run", "study"),
}

from .library_plans import PLAN_VS_RUN  # noqa: E402  (scan plans; uses _find_run)
from .library_predictions import (  # noqa: E402  (issue 17; uses _find_run)
    CONFUSION_MATRIX_QUERY,
    PREDICTIONS_QUERY,
)
from .library_steps import STEPS  # noqa: E402  (step series; it uses this module's fragments)
from .reproduce import REPRODUCTIONS  # noqa: E402  (provkb reproduce; uses _find_run)

ALL: tuple[NamedQuery, ...] = (
    RUNS,
    EPOCHS,
    STEPS,
    HYPERPARAMETERS_AT,
    LINEAGE,
    LAYERS,
    SEED_Q1,
    SEED_Q3,
    SEED_Q4,
    SEED_Q5,
    SEED_Q6,
    SEED_Q7,
    RUNS_USING,
    PLAN_VS_RUN,
    REPRODUCTIONS,
    PREDICTIONS_QUERY,
    CONFUSION_MATRIX_QUERY,
    GAIN_CHANGES,
    STEERING_IMPACT,
    STEERING_HISTORY,
    STUDY_LINEAGE,
    STUDY_TRIAL_STATUS,
)
