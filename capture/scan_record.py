"""A scan as prospective provenance: the ScriptPlan of one script version (kb/plans.py).

`plan_batch(result)` builds the plan's node (`planned.<fact>` values, how each was found
or why it is not known, the whole scan as JSON), the Script it WAS_DERIVED_FROM and the
person it is attributed to; `record(store, result)` writes it and links the runs of that
script version.
"""

from __future__ import annotations

import json
from typing import Any

from ..kb import plans
from ..kb.identity import default_person, now_iso
from ..kb.records import GraphBatch
from ..kb.store import Store
from ..ontology import (
    PERSON,
    PLAN,
    SCRIPT,
    SCRIPT_PLAN,
    WAS_ATTRIBUTED_TO,
    WAS_DERIVED_FROM,
    PlanFact,
    Prop,
    ids,
    planned_prop,
)
from . import ids as capture_ids
from .scan_facts import ScanResult


def plan_id(result: ScanResult) -> str:
    """The Plan's id: `provkb:plan/script/<sha256 of the script>`."""
    return ids.script_plan(result.sha256)


def plan_batch(result: ScanResult, person: str | None = None) -> GraphBatch:
    """The ScriptPlan of `result`, its Script and the person who recorded it."""
    b = GraphBatch()
    planned = result.planned()
    origins = result.planned_origins()
    props: dict[str, Any] = {
        Prop.PATH: result.path,
        Prop.SHA256: result.sha256,
        Prop.PARSED: result.parsed,
        Prop.ERROR: result.error,
        Prop.GENERATED: now_iso(),
        Prop.SCAN: json.dumps(result.to_dict(), sort_keys=True),
        Prop.PLAN_NOTES: [f"{fact}: {origins[fact]}" for fact in PlanFact.ALL if fact in origins],
    }
    props.update({planned_prop(f): planned[f] for f in PlanFact.ALL if f in planned})
    plan = b.add_node(plan_id(result), PLAN.kind, PLAN, SCRIPT_PLAN, **props)
    script = b.add_node(
        capture_ids.script(result.sha256),
        SCRIPT.kind,
        SCRIPT,
        **{Prop.PATH: result.path, Prop.SHA256: result.sha256},
    )
    b.add_edge(WAS_DERIVED_FROM, plan, script)
    name = default_person(person)
    who = b.add_node(ids.person(name), PERSON.kind, PERSON, **{Prop.NAME: name})
    b.add_edge(WAS_ATTRIBUTED_TO, plan, who)
    return b


def record(store: Store, result: ScanResult, person: str | None = None) -> int:
    """Store `result` as its script version's Plan; returns the runs of that version
    now linked to it (0 when the script has not run yet)."""
    return plans.record(store, plan_batch(result, person), plan_id(result))
