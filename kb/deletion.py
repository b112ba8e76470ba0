"""`provkb delete`: remove a run, an experiment's runs or a study, recorded as provenance.

What goes: every node of the runs (those carrying their `runId`: epochs, metrics,
hyperparameters, model, layers, requests, evaluations...) and, for a study, its node,
queue items, states and edits; then the shared nodes next to them (datasets, scripts,
environments, software and machine agents, the experiment) that nothing else uses any
more. People stay. A `:Deletion` activity records who asked, when and what went
(`deletedScope`, `deletedName`, `deletedRuns`, `deletedNodes`); it carries no run id,
so it outlives what it removed. All in one transaction: nothing or everything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..errors import ProvKBError
from ..ontology import ACTIVITY, DELETION, KINDS, PERSON, WAS_ASSOCIATED_WITH, Prop, ids
from .cypher import DELETION as Q
from .identity import default_person, now_iso
from .records import GraphBatch
from .store import Store, Transaction

SCOPES = ("run", "experiment", "study")


@dataclass
class DeletionPlan:
    """What a deletion covers: the scope, the name given and the run ids."""

    scope: str
    name: str
    runs: list[str] = field(default_factory=list)
    study: str | None = None  # the study's name (scope study)


@dataclass
class DeletionReport:
    """What a deletion removed and the Deletion activity that records it."""

    plan: DeletionPlan
    nodes: int = 0
    record_id: str | None = None
    person: str | None = None


def plan(store: Store, scope: str, name: str) -> DeletionPlan:
    """The runs `scope` `name` covers; ProvKBError when it names nothing."""
    if scope not in SCOPES:
        raise ProvKBError(f"delete what? one of {', '.join(SCOPES)}, got {scope!r}")
    runs = sorted({row["runId"] for row in store.read(Q[scope], name=name).rows})
    study = name if scope == "study" else None
    if study is not None:
        found = store.read(Q["study_node"], id=ids.study(study)).rows[0]["found"]
        if not found and not runs:
            raise ProvKBError(f"no study named {name!r}; nothing deleted")
    elif not runs:
        what = "run with id" if scope == "run" else "run in experiment"
        raise ProvKBError(f"no {what} {name!r}; nothing deleted")
    return DeletionPlan(scope, name, runs, study)


def _params(p: DeletionPlan) -> dict[str, object]:
    study_id = ids.study(p.study) if p.study is not None else None
    return {"runs": p.runs, "study": p.study, "studyId": study_id}


def _count(tx: Transaction, key: str, **params: object) -> int:
    return sum(tx.run(Q[f"{key}:{k.label}"], **params)[0]["nodes"] for k in KINDS)


def _record(p: DeletionPlan, nodes: int, person: str) -> tuple[str, GraphBatch]:
    at = now_iso()
    record = ids.deletion(uuid.uuid4().hex[:12])
    batch = GraphBatch()
    agent = batch.add_node(ids.person(person), PERSON.kind, PERSON, **{Prop.NAME: person})
    props = {
        Prop.STARTED: at,
        Prop.ENDED: at,
        Prop.DELETED_SCOPE: p.scope,
        Prop.DELETED_NAME: p.name,
        Prop.DELETED_RUNS: p.runs,
        Prop.DELETED_NODES: nodes,
    }
    batch.add_node(record, ACTIVITY, DELETION, **props)
    batch.add_edge(WAS_ASSOCIATED_WITH, record, agent)
    return record, batch


def delete(store: Store, p: DeletionPlan, person: str | None = None) -> DeletionReport:
    """Remove what `p` covers and record it, in one transaction."""
    who = default_person(person)
    params = _params(p)

    def work(tx: Transaction) -> DeletionReport:
        touched = sorted(
            {row["id"] for k in KINDS for row in tx.run(Q[f"touched:{k.label}"], **params)}
        )
        nodes = _count(tx, "count", **params)
        for kind in KINDS:
            tx.run(Q[f"delete:{kind.label}"], **params)
        unused = _count(tx, "count_unused", ids=touched)
        for kind in KINDS:
            tx.run(Q[f"delete_unused:{kind.label}"], ids=touched)
        record, batch = _record(p, nodes + unused, who)
        tx.write(batch)
        return DeletionReport(p, nodes + unused, record, who)

    return store.transaction(work)
