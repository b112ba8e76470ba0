"""Query latency: p50 / p95 of every named query of the registry, warm, on the KB.

Parameters are real values of the knowledge base (`synthetic.sample_params`): a run in
the middle, its experiment, epoch 30 (5 with --quick), a shared training dataset. A
query is run twice untimed, then `repeats` times (fewer when one call is slow, so a
slow query cannot eat the whole budget), each through `queries.run` as the CLI and
the UI do (Cypher text, parameter checks, rows converted to Python).
"""

from __future__ import annotations

import time
from typing import Any

from provkb.kb.store import Store
from provkb.queries import registry

from .common import stats

# The parameters given (from `sample_params`) whenever a query has them; the others
# keep their defaults. A query needing another parameter is skipped.
GIVEN = {"run": "run", "epoch": "epoch", "entity": "dataset", "combination": "combination"}


def with_combination(store: Store, sample: dict[str, Any]) -> dict[str, Any]:
    """`sample` plus the best hyperparameter combination (seed-q5's first answer), which
    seed-q6 takes."""
    if "combination" in sample:
        return sample
    rows = registry.run(store, "seed-q5", limit=1).rows
    return {**sample, "combination": rows[0]["combination"]} if rows else sample


def params_for(name: str, sample: dict[str, Any]) -> dict[str, Any] | None:
    """User parameters for query `name`, or None when it needs one we have no value for."""
    out: dict[str, Any] = {}
    for p in registry.get(name).params:
        key = GIVEN.get(p.name)
        if key is not None and key in sample:
            out[p.name] = sample[key]
        elif p.required:
            return None
    return out


def run(
    store: Store,
    sample: dict[str, Any],
    repeats: int = 20,
    budget_seconds: float = 20.0,
    min_repeats: int = 3,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Latencies (ms) per named query."""
    out: dict[str, Any] = {}
    sample = with_combination(store, sample)
    for name in registry.names():
        if only and name not in only:
            continue
        params = params_for(name, sample)
        if params is None:
            out[name] = {"skipped": "needs a parameter the synthetic KB has no value for"}
            continue
        warm = []
        rows = 0
        for _ in range(2):
            t0 = time.perf_counter()
            rows = len(registry.run(store, name, **params).rows)
            warm.append(time.perf_counter() - t0)
        per_call = max(min(warm), 1e-4)
        n = max(min_repeats, min(repeats, int(budget_seconds / per_call)))
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            registry.run(store, name, **params)
            samples.append((time.perf_counter() - t0) * 1000)
        out[name] = {"params": params, "rows": rows, "ms": stats(samples)}
    return out
