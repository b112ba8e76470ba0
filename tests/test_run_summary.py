"""The run summary capture keeps on a run node (capture.run_summary)."""

from __future__ import annotations

import math
import uuid

from builders import RunBuilder
from helpers import one

from provkb.capture.run_summary import RunSummary
from provkb.kb.store import Store
from provkb.ontology import TRAINING_RUN, Prop, SummaryStat, summary_prop


def stat(props: dict, name: str, metric: str):
    return props[summary_prop(name, metric)]


def test_best_values_keep_the_first_epoch_that_reached_them() -> None:
    s = RunSummary()
    for epoch, acc in enumerate([0.5, 0.8, 0.8, 0.7], start=1):
        s.add(epoch, 2.0, {"val_accuracy": acc})
    p = s.props()
    assert stat(p, SummaryStat.MAX, "val_accuracy") == 0.8
    assert stat(p, SummaryStat.MAX_EPOCH, "val_accuracy") == 2
    assert stat(p, SummaryStat.MIN, "val_accuracy") == 0.5
    assert stat(p, SummaryStat.MIN_EPOCH, "val_accuracy") == 1
    assert math.isclose(stat(p, SummaryStat.SUM, "val_accuracy"), 2.8)
    assert stat(p, SummaryStat.COUNT, "val_accuracy") == 4
    assert p[Prop.EPOCH_SECONDS] == 8.0


def test_only_finite_numbers_count_and_an_epoch_counts_once() -> None:
    s = RunSummary()
    s.add(1, 1.0, {"loss": math.nan, "flag": True, "note": "x", "acc": 0.1})
    s.add(2, math.inf, {"loss": 0.5, "acc": math.inf})
    s.add(2, 1.0, {"loss": 0.1})  # epoch 2 again: ignored
    p = s.props()
    assert stat(p, SummaryStat.MIN, "loss") == 0.5 and stat(p, SummaryStat.COUNT, "loss") == 1
    assert stat(p, SummaryStat.MIN_EPOCH, "loss") == 2
    assert stat(p, SummaryStat.COUNT, "acc") == 1
    assert summary_prop(SummaryStat.MAX, "flag") not in p
    assert summary_prop(SummaryStat.MAX, "note") not in p
    assert p[Prop.EPOCH_SECONDS] == 1.0


def test_numpy_scalars_count_and_numpy_bools_do_not() -> None:
    import numpy as np

    s = RunSummary()
    s.add(1, np.float32(2.0), {"loss": np.float32(0.25), "done": np.bool_(True)})
    p = s.props()
    assert stat(p, SummaryStat.MIN, "loss") == 0.25 and p[Prop.EPOCH_SECONDS] == 2.0
    assert summary_prop(SummaryStat.MAX, "done") not in p


def test_no_epochs_no_metric_statistics() -> None:
    assert RunSummary().props() == {Prop.EPOCH_SECONDS: 0.0}


def test_the_stored_run_carries_the_summary_of_its_recorded_epochs(store: Store) -> None:
    """What capture writes: the run node's summary is RunSummary's over the epochs, on
    each engine (NaN left out, a name with a dot kept whole)."""
    logs = [
        {"val_accuracy": 0.5, "loss": 1.0, "a.b": 3.0},
        {"val_accuracy": 0.8, "loss": math.nan, "a.b": 1.0},
        {"val_accuracy": 0.8, "loss": 0.5, "a.b": 2.0},
    ]
    run = RunBuilder(uuid.uuid4().hex[:12])
    expected = RunSummary()
    for epoch, values in enumerate(logs, start=1):
        run.epoch(epoch, values, elapsed=2.0)
        expected.add(epoch, 2.0, values)
    run.write(store)
    query = f"MATCH (r:{TRAINING_RUN.label} {{id: $id}}) RETURN properties(r) AS p"
    stored = one(store, query, id=run.node)
    summary = {k: v for k, v in stored.items() if k.startswith("summary.")}
    assert summary == {k: v for k, v in expected.props().items() if k.startswith("summary.")}
    assert stat(stored, SummaryStat.MAX, "val_accuracy") == 0.8
    assert stat(stored, SummaryStat.MAX_EPOCH, "val_accuracy") == 2
    assert stat(stored, SummaryStat.COUNT, "loss") == 2
    assert stat(stored, SummaryStat.MIN, "a.b") == 1.0
    assert stored[Prop.EPOCH_SECONDS] == 6.0 and stored[Prop.EPOCHS_COMPLETED] == 3
