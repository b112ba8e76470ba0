"""What the app's pages load (through `ui.common.load`, which caches it): the reads of
`provkb.queries.app` and the PROV documents of `KnowledgeBase`. No Cypher here."""

from __future__ import annotations

import io

from ..knowledge_base import KnowledgeBase
from ..queries.app import (
    GAIN,
    KEY_HYPERPARAMETERS,
    METRICS_KEY,
    STATUSES,
    TEST_KIND,
    compare_metric_keys,
    compare_rows,
    current_values,
    experiments,
    filter_choices,
    find_nodes,
    hyperparameter_names,
    metric_keys,
    metric_of,
    neighbours,
    node,
    relations_among,
    run,
    run_choices,
    run_count,
    run_events,
    run_hyperparameters,
    run_layers,
    run_metrics,
    run_model,
    run_requests,
    run_test_metrics,
    runs_page,
    status_counts,
    studies,
    study_chain,
    study_count,
    study_edits,
    study_items,
    study_iterations,
    study_sessions,
)


def prov_diagram(kb: KnowledgeBase, run_id: str, output: str, attributes: bool = False) -> str:
    """The standard PROV diagram of a run (`dot` or `svg` text), optionally with the
    attribute notes."""
    return str(kb.diagram(run_id, output, attributes=attributes))


def export_bytes(
    kb: KnowledgeBase, fmt: str, run_id: str | None = None, experiment: str | None = None
) -> bytes:
    """A run, an experiment or the whole knowledge base in an export format."""
    buffer = io.BytesIO()
    kb.export(fmt, buffer, run_id=run_id, experiment=experiment)
    return buffer.getvalue()


__all__ = [
    "GAIN",
    "KEY_HYPERPARAMETERS",
    "METRICS_KEY",
    "STATUSES",
    "TEST_KIND",
    "compare_metric_keys",
    "compare_rows",
    "current_values",
    "experiments",
    "export_bytes",
    "filter_choices",
    "find_nodes",
    "hyperparameter_names",
    "metric_keys",
    "metric_of",
    "neighbours",
    "node",
    "prov_diagram",
    "relations_among",
    "run",
    "run_choices",
    "run_count",
    "run_events",
    "run_hyperparameters",
    "run_layers",
    "run_metrics",
    "run_model",
    "run_requests",
    "run_test_metrics",
    "runs_page",
    "status_counts",
    "studies",
    "study_chain",
    "study_count",
    "study_edits",
    "study_items",
    "study_iterations",
    "study_sessions",
]
