"""All Cypher the store itself runs: schema, batched idempotent writes, graph reads.

Labels and relationship types are taken from the ontology only, never from input;
values always travel as parameters. Named lineage queries live in `provkb.queries`.
"""

from __future__ import annotations

from ..ontology import (
    CLAIM_LABEL,
    ENTITY,
    KIND_BY_LABEL,
    KINDS,
    NAMESPACE_LABEL,
    RELATION_BY_TYPE,
    STEERING_REQUEST,
    SUBTYPE_BY_LABEL,
    TRAINING_RUN,
    Kind,
    Prop,
    Relation,
)

ENGINE_NEO4J = "neo4j"
ENGINE_ARCADEDB = "arcadedb"


def _checked_label(label: str) -> str:
    if label not in SUBTYPE_BY_LABEL and label not in KIND_BY_LABEL and label != NAMESPACE_LABEL:
        raise ValueError(f"not an ontology label: {label!r}")
    return label


def schema_statements(engine: str) -> list[str]:
    """Constraints (and, where the engine needs them, indexes) on PROV identifiers.

    Engine difference: ArcadeDB answers id lookups fastest with an explicit index
    beside the uniqueness constraint; Neo4j builds that index with the constraint
    and refuses a second one on the same property.
    """
    labels = [k.label for k in KINDS] + [NAMESPACE_LABEL, CLAIM_LABEL]
    statements = [
        f"CREATE CONSTRAINT provkb_{label.lower()}_id IF NOT EXISTS "
        f"FOR (n:{label}) REQUIRE n.{Prop.ID} IS UNIQUE"
        for label in labels
    ]
    if engine == ENGINE_ARCADEDB:
        statements += [
            f"CREATE INDEX provkb_{label.lower()}_id_idx IF NOT EXISTS "
            f"FOR (n:{label}) ON (n.{Prop.ID})"
            for label in labels
        ]
    for kind in KINDS:
        statements.append(
            f"CREATE INDEX provkb_{kind.label.lower()}_run IF NOT EXISTS "
            f"FOR (n:{kind.label}) ON (n.{Prop.RUN_ID})"
        )
    # A steering poll is one indexed read, whatever the store holds (ArcadeDB scans
    # every request otherwise: 8 ms at 6k requests, 0.4 ms with the index).
    statements.append(
        f"CREATE INDEX provkb_{STEERING_REQUEST.label.lower()}_run IF NOT EXISTS "
        f"FOR (n:{STEERING_REQUEST.label}) ON (n.{Prop.RUN_ID})"
    )
    return statements


def merge_nodes(kind: Kind, extra_labels: tuple[str, ...]) -> str:
    """UNWIND rows {id, props} and MERGE them on id with their full label set.

    Engine difference: ArcadeDB stores a label set as a type, so adding a label to an
    existing node re-creates it (and trips the uniqueness check inside a
    transaction). Nodes are therefore always merged with all their labels at once,
    and relationships never create placeholder nodes (see `merge_edges`).
    """
    labels = "".join(f":{_checked_label(label)}" for label in (kind.label, *extra_labels))
    return f"UNWIND $rows AS r MERGE (n{labels} {{{Prop.ID}: r.id}}) SET n += r.props"


def update_nodes(kind: Kind, extra_labels: tuple[str, ...]) -> str:
    """UNWIND rows {id, props}; SET the props of those that exist with (at least) the
    full label set, as MERGE would match them; returns the ids found.

    With `create_nodes` for the ids not found, this is `merge_nodes` in two statements.
    Engine difference: ArcadeDB runs a MERGE (or MATCH) on several labels without its
    id index, one label scan per row, so writes slowed as the store grew (1.6 ms per
    Epoch row at 3,000 epochs, quadratic overall); a MATCH on the core label alone
    seeks the index and the extra labels are then a filter.
    """
    extra = " AND ".join(f"n:{_checked_label(label)}" for label in extra_labels)
    return (
        f"UNWIND $rows AS r MATCH (n:{_checked_label(kind.label)} {{{Prop.ID}: r.id}}) "
        + (f"WHERE {extra} " if extra else "")
        + "SET n += r.props RETURN r.id AS id"
    )


def create_nodes(kind: Kind, extra_labels: tuple[str, ...]) -> str:
    """UNWIND rows {id, props} and CREATE them with their full label set (ids that
    `update_nodes` did not find; the uniqueness constraint refuses an id that exists
    with other labels, as a MERGE would)."""
    labels = "".join(f":{_checked_label(label)}" for label in (kind.label, *extra_labels))
    return f"UNWIND $rows AS r CREATE (n{labels} {{{Prop.ID}: r.id}}) SET n += r.props"


def _existing(kind: Kind, extra_labels: tuple[str, ...]) -> str:
    """`UNWIND $rows AS r MATCH` a node by id through the core label's index, `WHERE` it
    has the extra labels (as `update_nodes`); the caller adds its conditions."""
    extra = "".join(f" AND n:{_checked_label(label)}" for label in extra_labels)
    return (
        f"UNWIND $rows AS r MATCH (n:{_checked_label(kind.label)} {{{Prop.ID}: r.id}}) "
        f"WHERE true{extra}"
    )


def advance_run_progress(kind: Kind, extra_labels: tuple[str, ...]) -> str:
    """UNWIND rows {id, epochs, progress}: SET a run's progress properties (its
    `epochsCompleted`, `epochSeconds`, `summary.*`: `ontology.is_run_progress`) only
    where `epochs`, the epochsCompleted they were computed from, is not below the
    stored one. A replayed old journal (17 epochs after 40) changes nothing, so
    replays in any order leave the same run. Runs after the node rows were merged."""
    return (
        f"{_existing(kind, extra_labels)} "
        f"AND coalesce(n.{Prop.EPOCHS_COMPLETED}, -1) <= coalesce(r.epochs, -1) "
        f"SET n += r.progress"
    )


def advance_run_status(kind: Kind, extra_labels: tuple[str, ...]) -> str:
    """UNWIND rows {id, status, weak}: SET a run's status, except that a `weak` one
    (`running`, what a start writes) never replaces another status: a finished,
    failed or interrupted run stays so whatever old journal is replayed."""
    return (
        f"{_existing(kind, extra_labels)} "
        f"AND (NOT r.weak OR coalesce(n.{Prop.STATUS}, r.status) = r.status) "
        f"SET n.{Prop.STATUS} = r.status"
    )


def merge_edges(relation: Relation) -> str:
    """UNWIND rows {src, dst, props}; MERGE one relationship per (src, type, dst).

    Both ends must exist: the statement returns how many rows found both, so the
    store can refuse a batch that refers to unknown nodes.
    """
    if RELATION_BY_TYPE.get(relation.rel_type) is not relation:
        raise ValueError(f"not an ontology relation: {relation.rel_type!r}")
    return (
        f"UNWIND $rows AS r "
        f"MATCH (a:{relation.source.label} {{{Prop.ID}: r.src}}) "
        f"MATCH (b:{relation.target.label} {{{Prop.ID}: r.dst}}) "
        f"MERGE (a)-[e:{relation.rel_type}]->(b) SET e += r.props "
        f"RETURN count(*) AS matched"
    )


MERGE_NAMESPACES = (
    f"UNWIND $rows AS r MERGE (n:{NAMESPACE_LABEL} {{{Prop.ID}: r.id}}) "
    f"SET n.{Prop.PREFIX} = r.prefix, n.{Prop.URI} = r.uri"
)

READ_NAMESPACES = (
    f"MATCH (n:{NAMESPACE_LABEL}) RETURN n.{Prop.PREFIX} AS prefix, n.{Prop.URI} AS uri "
    f"ORDER BY prefix"
)

COUNT_NODES = "MATCH (n) RETURN count(n) AS count"
COUNT_EDGES = "MATCH ()-[e]->() RETURN count(e) AS count"
# One slice of `Store.clear()`: a million-record delete in one transaction needs more
# heap than a small server has, so everything goes in slices of $limit nodes.
DELETE_SLICE = "MATCH (n) WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted"
# The read-only console cancels its own transaction past its time limit (kb.store).
SHOW_TRANSACTIONS = "SHOW TRANSACTIONS"
TERMINATE_TRANSACTIONS = "TERMINATE TRANSACTIONS $ids"


def read_nodes(kind: Kind, selected: bool = False) -> str:
    """Every node of a kind with its labels and properties, or (`selected`) those whose id
    is in $ids, each looked up through the id index."""
    match = (
        f"UNWIND $ids AS x MATCH (n:{kind.label} {{{Prop.ID}: x}}) "
        if selected
        else f"MATCH (n:{kind.label}) "
    )
    return (
        f"{match}RETURN n.{Prop.ID} AS id, labels(n) AS labels, properties(n) AS props ORDER BY id"
    )


def read_edges(relation: Relation, selected: bool = False) -> str:
    """Every relationship of a type, or (`selected`) those leaving a node whose id is in
    $ids (looked up through the id index; the caller keeps those whose target is too)."""
    source = (
        f"UNWIND $ids AS x MATCH (a:{relation.source.label} {{{Prop.ID}: x}})"
        if selected
        else f"MATCH (a:{relation.source.label})"
    )
    return (
        f"{source}-[e:{relation.rel_type}]->(b:{relation.target.label}) "
        f"RETURN a.{Prop.ID} AS src, b.{Prop.ID} AS dst, properties(e) AS props "
        f"ORDER BY src, dst"
    )


# -- export / import (kb.export, kb.provimport) ---------------------------------------

READ_RUN = (
    f"MATCH (r:{KIND_BY_LABEL['Activity'].label}:{SUBTYPE_BY_LABEL['TrainingRun'].label}) "
    f"WHERE r.{Prop.RUN_ID} = $runId RETURN r.{Prop.ID} AS id"
)

READ_EXPERIMENT_RUNS = (
    f"MATCH (r:{KIND_BY_LABEL['Activity'].label}:{SUBTYPE_BY_LABEL['TrainingRun'].label}) "
    f"WHERE r.{Prop.EXPERIMENT} = $experiment RETURN r.{Prop.RUN_ID} AS runId ORDER BY runId"
)


def read_run_node_ids(kind: Kind) -> str:
    """Ids of the nodes of a kind that belong to some runs (`runId` in $runIds)."""
    return (
        f"UNWIND $runIds AS rid MATCH (n:{kind.label} {{{Prop.RUN_ID}: rid}}) "
        f"RETURN n.{Prop.ID} AS id ORDER BY id"
    )


def read_touching_edges(relation: Relation, outgoing: bool) -> str:
    """Relationships of a type leaving (`outgoing`) or reaching a node whose id is in
    $ids, with both ends' runIds. The pattern starts at the node found through the id
    index (an `id IN $ids` test scans the whole graph instead)."""
    if RELATION_BY_TYPE.get(relation.rel_type) is not relation:
        raise ValueError(f"not an ontology relation: {relation.rel_type!r}")
    src, dst, rel = relation.source.label, relation.target.label, relation.rel_type
    anchored = f"{{{Prop.ID}: x}}"
    pattern = (
        f"(a:{src} {anchored})-[e:{rel}]->(b:{dst})"
        if outgoing
        else f"(b:{dst} {anchored})<-[e:{rel}]-(a:{src})"
    )
    return (
        f"UNWIND $ids AS x MATCH {pattern} "
        f"RETURN a.{Prop.ID} AS src, a.{Prop.RUN_ID} AS srcRun, "
        f"b.{Prop.ID} AS dst, b.{Prop.RUN_ID} AS dstRun"
    )


def read_present_run_ids(kind: Kind) -> str:
    """Which of $runIds some node of a kind carries as its runId (through the index)."""
    return (
        f"UNWIND $runIds AS rid MATCH (n:{kind.label} {{{Prop.RUN_ID}: rid}}) "
        f"RETURN DISTINCT rid AS runId"
    )


def read_node_labels(kind: Kind) -> str:
    """Labels of the nodes of a kind whose id is in $ids."""
    return (
        f"MATCH (n:{kind.label}) WHERE n.{Prop.ID} IN $ids "
        f"RETURN n.{Prop.ID} AS id, labels(n) AS labels"
    )


# -- steering requests (kb/steering/requests.py) ----------------------------------------
def _steering_cypher() -> dict[str, str]:
    from ..ontology import HYPERPARAMETER, METRICS, STEERING_REQUEST, SteeringStatus
    from ..queries.library import shown_status

    run, req, met = TRAINING_RUN.label, STEERING_REQUEST.label, METRICS.label
    hp = HYPERPARAMETER.label
    pending, claimed = f"'{SteeringStatus.PENDING}'", f"'{SteeringStatus.CLAIMED}'"
    rejected = f"'{SteeringStatus.REJECTED}'"
    return {
        # The shown status: a run whose process went silent is `interrupted` (not live).
        "find_run": (
            f"MATCH (r:{run}) WHERE r.{Prop.RUN_ID} = $run OR r.{Prop.NAME} = $run "
            f"RETURN r.{Prop.RUN_ID} AS runId, r.{Prop.NAME} AS name, "
            f"{shown_status('r')} AS status, r.{Prop.HEARTBEAT} AS heartbeat, "
            # Engine difference: Neo4j sorts nulls first in a descending ORDER BY.
            f"r.{Prop.STARTED} AS started ORDER BY coalesce(started, '') DESC"
        ),
        "current_hyperparameters": (
            f"MATCH (h:{hp}) WHERE h.{Prop.RUN_ID} = $run "
            f"WITH h.{Prop.NAME} AS name, h ORDER BY h.{Prop.VERSION} DESC "
            f"WITH name, collect(h) AS versions "
            f"WITH name, versions[0] AS h "
            f"RETURN name, h.{Prop.ID} AS id, h.{Prop.VALUE} AS value, "
            f"h.{Prop.VALUE_TYPE} AS valueType, h.{Prop.STEERABLE} AS steerable, "
            f"h.{Prop.VERSION} AS version"
        ),
        "latest_metrics": (
            f"MATCH (m:{met}) WHERE m.{Prop.RUN_ID} = $run AND m.{Prop.EPOCH} IS NOT NULL "
            f"RETURN m.{Prop.ID} AS id, m.{Prop.EPOCH} AS epoch "
            f"ORDER BY m.{Prop.EPOCH} DESC LIMIT 1"
        ),
        "pending": (
            f"MATCH (q:{req}) WHERE q.{Prop.RUN_ID} = $run AND q.{Prop.STATUS} = {pending} "
            f"RETURN q.{Prop.ID} AS id ORDER BY q.{Prop.REQUESTED_AT}, q.{Prop.ID} LIMIT $limit"
        ),
        # Engine difference: a conditional SET alone let two concurrent ArcadeDB
        # transactions both claim a request; the claim token's unique id refuses the
        # second on both engines.
        "claim_one": (
            f"MATCH (q:{ENTITY.label} {{{Prop.ID}: $id}}) WHERE q:{req} "
            f"AND q.{Prop.STATUS} = {pending} "
            f"CREATE (c:{CLAIM_LABEL} {{{Prop.ID}: $token, "
            f"{Prop.REQUEST_ID}: q.{Prop.REQUEST_ID}, {Prop.CLAIMED_BY}: $claimer, "
            f"{Prop.CLAIMED_AT}: $now}}) "
            f"SET q.{Prop.STATUS} = {claimed}, q.{Prop.CLAIMED_BY} = $claimer, "
            f"q.{Prop.CLAIMED_AT} = $now "
            f"RETURN properties(q) AS request"
        ),
        "run_steerable": (
            f"MATCH (r:{TRAINING_RUN.label}) WHERE r.{Prop.RUN_ID} = $run "
            f"RETURN r.{Prop.STEERABLE} AS steerable LIMIT 1"
        ),
        "pending_count": (
            f"MATCH (q:{req}) WHERE q.{Prop.RUN_ID} = $run AND q.{Prop.STATUS} = {pending} "
            f"RETURN count(q) AS pending"
        ),
        "request_status": (
            f"MATCH (q:{req}) WHERE q.{Prop.REQUEST_ID} = $request RETURN properties(q) AS request"
        ),
        # The one write of a request's outcome (kb.steering `resolve`): only its
        # claimer turns a claimed request into applied or rejected, once.
        "resolve": (
            f"MATCH (q:{ENTITY.label} {{{Prop.ID}: $id}}) WHERE q:{req} "
            f"AND q.{Prop.STATUS} = $claimed AND q.claimedBy = $claimer "
            f"SET q += $props, q.{Prop.STATUS} = $status, q.statusReason = $reason, "
            f"q.resolvedAtTime = $now RETURN count(q) AS resolved"
        ),
        "reject_pending": (
            f"MATCH (q:{req}) WHERE q.{Prop.RUN_ID} = $run "
            f"AND q.{Prop.STATUS} IN [{pending}, {claimed}] "
            f"SET q.{Prop.STATUS} = {rejected}, q.{Prop.STATUS_REASON} = $reason, "
            f"q.{Prop.RESOLVED_AT} = $now RETURN count(q) AS rejected"
        ),
    }


STEERING = _steering_cypher()


# -- run liveness: heartbeats, interrupted runs, requests left behind (kb/lifecycle.py) --
def _lifecycle_cypher() -> dict[str, str]:
    from ..ontology import ACTIVITY, EPOCH, STEERING_ACTION, USED, RunStatus, SteeringStatus
    from ..queries.library import shown_status

    run, req = TRAINING_RUN.label, STEERING_REQUEST.label
    running, interrupted = f"'{RunStatus.RUNNING}'", f"'{RunStatus.INTERRUPTED}'"
    pending, claimed = f"'{SteeringStatus.PENDING}'", f"'{SteeringStatus.CLAIMED}'"
    applied, rejected = f"'{SteeringStatus.APPLIED}'", f"'{SteeringStatus.REJECTED}'"
    hb = f"r.{Prop.HEARTBEAT}"
    return {
        # A beat is proof of life: it also revives a run `sync` took for interrupted.
        # Never backwards (a late beat does not undo a newer one).
        "heartbeat": (
            f"MATCH (r:{ACTIVITY.label} {{{Prop.ID}: $id}}) WHERE r:{run} "
            f"AND r.{Prop.STATUS} IN [{running}, {interrupted}] "
            f"AND ({hb} IS NULL OR {hb} < $now) "
            f"WITH r, r.{Prop.STATUS} = {interrupted} AS revived "
            f"SET r.{Prop.ENDED} = CASE WHEN revived THEN null ELSE r.{Prop.ENDED} END, "
            f"r.{Prop.STOPPED_EPOCH} = CASE WHEN revived THEN null "
            f"ELSE r.{Prop.STOPPED_EPOCH} END, "
            f"{hb} = $now, r.{Prop.STATUS} = {running} "
            f"RETURN count(r) AS beats"
        ),
        # Runs that say running but went silent: recorded as interrupted after their last
        # finished epoch, ended at their last sign of life.
        "record_interrupted": (
            f"MATCH (r:{run}) WHERE r.{Prop.STATUS} = {running} "
            f"WITH r, {shown_status('r')} AS shown WHERE shown = {interrupted} "
            f"OPTIONAL MATCH (e:{ACTIVITY.label} {{{Prop.RUN_ID}: r.{Prop.RUN_ID}}}) "
            f"WHERE e:{EPOCH.label} "
            f"WITH r, max(e.{Prop.EPOCH}) AS lastEpoch "
            f"SET r.{Prop.STATUS} = {interrupted}, "
            f"r.{Prop.ENDED} = coalesce({hb}, r.{Prop.STARTED}), "
            f"r.{Prop.STOPPED_EPOCH} = lastEpoch "
            f"RETURN r.{Prop.RUN_ID} AS runId, r.{Prop.NAME} AS name, lastEpoch, "
            f"r.{Prop.ENDED} AS lastSeen ORDER BY runId"
        ),
        # Claimed requests whose training recorded the action but not the outcome (it
        # ended before the store took it): applied, as the action says.
        "settle_applied": (
            f"MATCH (q:{req}) WHERE q.{Prop.STATUS} = {claimed} "
            f"MATCH (a:{ACTIVITY.label})-[:{USED.rel_type}]->(q) WHERE a:{STEERING_ACTION.label} "
            f"SET q.{Prop.STATUS} = {applied}, q.{Prop.APPLIED_EPOCH} = a.{Prop.EPOCH}, "
            f"q.{Prop.ACTION_ID} = a.{Prop.ID}, q.{Prop.RESOLVED_AT} = $now "
            f"RETURN count(q) AS applied"
        ),
        # Requests no training will ever apply: of runs that are not live.
        "reject_orphaned": (
            f"MATCH (q:{req}) WHERE q.{Prop.STATUS} IN [{pending}, {claimed}] "
            f"MATCH (r:{ACTIVITY.label} {{{Prop.RUN_ID}: q.{Prop.RUN_ID}}}) WHERE r:{run} "
            f"WITH q, {shown_status('r')} AS shown WHERE shown <> {running} "
            f"SET q.{Prop.STATUS} = {rejected}, q.{Prop.STATUS_REASON} = $reason, "
            f"q.{Prop.RESOLVED_AT} = $now RETURN count(q) AS rejected"
        ),
    }


RUN_LIFECYCLE = _lifecycle_cypher()


# -- studies: steerable trial queues (kb/study/queue.py) --------------------------------
def _study_cypher() -> dict[str, str]:
    from ..ontology import (
        ACTIVITY,
        ENTITY,
        STEERING_ACTION,
        STUDY,
        TRIAL_ITEM,
        WAS_INFORMED_BY,
        ItemStatus,
    )

    P = Prop
    study = f"{ACTIVITY.label}:{STUDY.label}"
    item = f"{ENTITY.label}:{TRIAL_ITEM.label}"
    action = f"{ACTIVITY.label}:{STEERING_ACTION.label}"
    # Lookups by id match the core label (its id index), the domain label is a filter.
    the_study = f"MATCH (s:{ACTIVITY.label} {{{Prop.ID}: $study}}) WHERE s:{STUDY.label} "
    the_item = f"MATCH (i:{ENTITY.label} {{{Prop.ID}: $item}}) WHERE i:{TRIAL_ITEM.label} "
    current_items = f"MATCH (i:{item}) WHERE i.{P.STUDY} = $name AND i.{P.CURRENT} = true "
    pending, running = f"'{ItemStatus.PENDING}'", f"'{ItemStatus.RUNNING}'"
    finished = f"['{ItemStatus.DONE}', '{ItemStatus.FAILED}']"
    return {
        "get": f"{the_study}RETURN properties(s) AS study",
        "list": f"MATCH (s:{study}) RETURN properties(s) AS study ORDER BY s.{Prop.NAME}",
        # Every write transaction of a study first changes its node: concurrent writers of
        # one study conflict there and serialise (ArcadeDB: optimistic retry; Neo4j: lock).
        "lock": (
            f"{the_study}"
            f"SET s.{P.QUEUE_REVISION} = coalesce(s.{P.QUEUE_REVISION}, 0) + 1 "
            f"RETURN properties(s) AS study"
        ),
        "update_study": f"{the_study}SET s += $props",
        "items": (
            f"MATCH (i:{item}) WHERE i.{P.STUDY} = $name AND ($all OR i.{P.CURRENT} = true) "
            f"RETURN properties(i) AS item ORDER BY i.{P.ITEM_ID}, i.{P.VERSION}"
        ),
        "item_versions": (
            f"MATCH (i:{item}) WHERE i.{P.STUDY} = $name AND i.{P.ITEM_ID} = $item "
            f"RETURN properties(i) AS item ORDER BY i.{P.VERSION}"
        ),
        "next_pending": (
            f"{current_items}AND i.{P.STATUS} = {pending} "
            f"RETURN properties(i) AS item ORDER BY i.{P.POSITION}, i.{P.ITEM_ID} LIMIT 1"
        ),
        "start_item": (
            f"{the_item}AND i.{P.CURRENT} = true AND i.{P.STATUS} = {pending} "
            f"SET i.{P.STATUS} = {running}, i += $props RETURN count(i) AS changed"
        ),
        "finish_item": (
            f"{the_item}AND i.{P.STATUS} = {running} SET i += $props RETURN count(i) AS changed"
        ),
        # Retire the current version of a pending item, if it is still the one expected.
        "retire": (
            f"{the_item}AND i.{P.CURRENT} = true "
            f"AND i.{P.STATUS} = {pending} AND i.{P.VERSION} = $version "
            f"SET i.{P.CURRENT} = false RETURN count(i) AS changed"
        ),
        "finished": (
            f"{current_items}AND i.{P.ITERATION} IS NOT NULL "
            f"AND i.{P.STATUS} IN {finished} "
            f"RETURN i.{P.ITERATION} AS iteration, i.{P.GAIN} AS gain ORDER BY iteration"
        ),
        "edits": (
            f"{the_study}MATCH (a:{action})-[:{WAS_INFORMED_BY.rel_type}]->(s) "
            f"RETURN properties(a) AS edit ORDER BY a.{P.STARTED}, a.{P.ID}"
        ),
    }


STUDY = _study_cypher()


def _deletion_cypher() -> dict[str, str]:
    """`provkb delete` (kb/deletion.py): the runs a scope names, what they own, and
    the removal. `*:<Kind>` statements exist once per PROV kind (its id/runId index)."""
    from ..ontology import ACTIVITY, KINDS, PERSON, STUDY, TRAINING_RUN

    P = Prop
    run = f"MATCH (r:{ACTIVITY.label}) WHERE r:{TRAINING_RUN.label} "
    out = {
        "run": f"{run}AND (r.{P.RUN_ID} = $name OR r.{P.ID} = $name) RETURN r.{P.RUN_ID} AS runId",
        "experiment": f"{run}AND r.{P.EXPERIMENT} = $name RETURN r.{P.RUN_ID} AS runId",
        "study": f"{run}AND r.{P.STUDY} = $name RETURN r.{P.RUN_ID} AS runId",
        "study_node": (
            f"MATCH (s:{ACTIVITY.label} {{{P.ID}: $id}}) WHERE s:{STUDY.label} "
            f"RETURN count(s) AS found"
        ),
    }
    # A node is the runs' (or the study's) own when it carries their runId (or the
    # study's name and no runId); the nodes next to them without one are shared
    # (datasets, scripts, agents, the experiment) and go only once nothing uses them.
    owned = f"n.{P.RUN_ID} IN $runs OR (n.{P.RUN_ID} IS NULL AND n.{P.STUDY} = $study)"
    owned += f" OR n.{P.ID} = $studyId"
    for kind in KINDS:
        k = kind.label
        out[f"count:{k}"] = f"MATCH (n:{k}) WHERE {owned} RETURN count(n) AS nodes"
        out[f"touched:{k}"] = (
            f"MATCH (n:{k}) WHERE {owned} MATCH (n)--(m) "
            f"WHERE m.{P.RUN_ID} IS NULL AND m.{P.STUDY} IS NULL AND NOT m:{PERSON.label} "
            f"RETURN DISTINCT m.{P.ID} AS id"
        )
        out[f"delete:{k}"] = f"MATCH (n:{k}) WHERE {owned} DETACH DELETE n"
        unused = f"MATCH (n:{k}) WHERE n.{P.ID} IN $ids AND NOT EXISTS {{ MATCH (n)--() }} "
        out[f"count_unused:{k}"] = f"{unused}RETURN count(n) AS nodes"
        out[f"delete_unused:{k}"] = f"{unused}DELETE n"
    return out


DELETION = _deletion_cypher()


# -- script plans (provkb scan --record, kb/plans.py) -----------------------------------
def _plan_cypher() -> dict[str, str]:
    """Link runs to the Plan of the script version they USED (a ScriptPlan that
    WAS_DERIVED_FROM that Script): the run's association with its software agent gets
    the plan (PROV's hadPlan), the run's own Plan WAS_DERIVED_FROM it. From one run
    (`$run`, a node id: at its start) or one plan (`$plan`: when it is recorded)."""
    from ..ontology import (
        ACTIVITY,
        AGENT,
        PERSON,
        PLAN,
        SCRIPT,
        SCRIPT_PLAN,
        SOFTWARE_AGENT,
        USED,
        WAS_ASSOCIATED_WITH,
        WAS_DERIVED_FROM,
    )

    P, E, derived, assoc = Prop, ENTITY.label, WAS_DERIVED_FROM.rel_type, WAS_ASSOCIATED_WITH
    by_run = (
        f"MATCH (r:{ACTIVITY.label} {{{P.ID}: $run}}) WHERE r:{TRAINING_RUN.label} "
        f"MATCH (r)-[:{USED.rel_type}]->(s:{E}) WHERE s:{SCRIPT.label} "
        f"MATCH (p:{E})-[:{derived}]->(s) WHERE p:{SCRIPT_PLAN.label} "
    )
    by_plan = (
        f"MATCH (p:{E} {{{P.ID}: $plan}}) WHERE p:{SCRIPT_PLAN.label} "
        f"MATCH (p)-[:{derived}]->(s:{E}) WHERE s:{SCRIPT.label} "
        f"MATCH (r:{ACTIVITY.label})-[:{USED.rel_type}]->(s) WHERE r:{TRAINING_RUN.label} "
    )
    associate = (
        f"MATCH (r)-[a:{assoc.rel_type}]->(g:{AGENT.label}) WHERE g:{SOFTWARE_AGENT.label} "
        f"SET a.{P.PLAN} = p.{P.ID} RETURN count(a) AS linked"
    )
    derive = (
        f"MATCH (r)-[w:{assoc.rel_type}]->(h:{AGENT.label}) WHERE h:{PERSON.label} "
        f"MATCH (c:{E} {{{P.ID}: w.{P.PLAN}}}) WHERE c:{PLAN.label} "
        f"MERGE (c)-[:{derived}]->(p) RETURN count(c) AS derived"
    )
    return {
        "associate_run": by_run + associate,
        "derive_run": by_run + derive,
        "associate_plan": by_plan + associate,
        "derive_plan": by_plan + derive,
    }


PLANS = _plan_cypher()
