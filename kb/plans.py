"""Script Plans: prospective provenance of a training script (provkb scan --record).

A ScriptPlan (`provkb:plan/script/<sha256>`, `Entity:Plan:ScriptPlan`) says what one
script version will do, as `capture.scan` read it. A run of that script version (one
that USED its Script) is linked to it: the run's association with its software agent
names it as its plan (PROV's qualified association, `prov:hadPlan`) and the run's own
Plan (the configuration Keras reported) WAS_DERIVED_FROM it. The link is made from
either side, whichever comes second: when the plan is recorded (`record`, every run of
that script so far) and when a run starts (`link_run`, queued by capture).
"""

from __future__ import annotations

from .cypher import PLANS
from .records import GraphBatch
from .store import Store, Transaction


def record(store: Store, batch: GraphBatch, plan: str) -> int:
    """Write a plan's `batch` (its node, its Script, their relations) and link every run
    of that script version to `plan`, in one transaction; returns the runs linked."""

    def work(tx: Transaction) -> int:
        tx.write(batch)
        return _link(tx, "plan", plan=plan)

    return store.transaction(work)


def link_run(store: Store, run_node: str) -> int:
    """Link run `run_node` to the Plan of the script version it USED, if one was
    recorded (1), else nothing (0)."""
    return store.transaction(lambda tx: _link(tx, "run", run=run_node))


def _link(tx: Transaction, by: str, **params: str) -> int:
    tx.run(PLANS[f"associate_{by}"], **params)
    rows = tx.run(PLANS[f"derive_{by}"], **params)
    return int(rows[0]["derived"]) if rows else 0
