"""Names users choose never collide with ProvKB's own properties (issue 10, section 2).

A real Keras fit logs a metric under hostile names (`id`, ArcadeDB's `@rid`..., ProvKB's
`epoch`/`runId`/`kind`, empty, spaces, backticks, dots, unicode, a 5,000-character name)
and records hyperparameters under such names, one of them 20 MB. The run must be
complete, every name and value must read back exactly (named queries, the app's reads),
the big value must be stored truncated with its size and sha256, every export format
must succeed and PROV-JSON / Turtle imports must give the names back. A batch too big
for one Bolt message ends with a clear error instead of a writer retrying forever.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import keras
import lxml.etree
import pytest
from helpers import rows, unique
from hypothesis import given
from hypothesis import strategies as st
from test_capture import (
    BATCH,
    Data,
    data,  # noqa: F401 (the digits fixture)
    make_model,
)

from provkb import ontology as o
from provkb.capture import ids
from provkb.capture.callback import ProvenanceCallback
from provkb.errors import RecordTooLarge
from provkb.kb import records as records_module
from provkb.kb.export import FORMATS, build_document, export, local_name, property_name
from provkb.kb.provimport import import_file
from provkb.kb.records import (
    DEFAULT_MAX_VALUE_KB,
    MAX_STATEMENT_BYTES,
    GraphBatch,
    encode_props,
    max_value_bytes,
)
from provkb.kb.store import Store
from provkb.kb.writer import BackgroundWriter
from provkb.queries import registry
from provkb.ui import data as ui_data

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

EPOCHS = 3
LONG = "ℓ" * 5000  # over MAX_NAME_IN_KEY: its property name is shortened, the name kept
HOSTILE = [
    "id",
    "@rid",
    "@type",
    "@in",
    "@out",
    "@cat",
    "epoch",
    "runId",
    "kind",
    "",
    "a b",
    "a`b",
    "a.b",
    "a_x0020_b",  # reads like an export escape: must stay itself
    "ü∂ 😀",
    LONG,
]
BIG = "big"
BIG_VALUE = "0123456789abcdef" * (20 * 1024 * 1024 // 16)  # 20 MB
HYPERPARAMETERS: dict[str, Any] = {
    **{name: f"value of {name[:20]!r}" for name in HOSTILE},
    "@rid": 7,
    "@type": 2.5,
    "@in": True,
    "@out": [1, 2, 3],
    BIG: BIG_VALUE,
}


def logged(i: int, epoch: int) -> float:
    """The value logged under HOSTILE[i] at epoch `epoch` (1-based): exact in binary."""
    return i + epoch / 8


class HostileLogs(keras.callbacks.Callback):
    """Adds a metric under every hostile name to the logs the callbacks after it see."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        assert logs is not None
        for i, name in enumerate(HOSTILE):
            logs[name] = logged(i, epoch + 1)


@pytest.fixture(scope="module")
def hostile(store: Store, data: Data) -> ProvenanceCallback:  # noqa: F811 (the fixture)
    """One captured fit with hostile metric and hyperparameter names (and its warnings)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("provkb")
    logger.addHandler(handler)
    records_module._warned.clear()  # a process warns about 20 truncations at most
    try:
        cb = ProvenanceCallback(
            experiment=unique("names"), store=store, hyperparameters=HYPERPARAMETERS
        )
        model = make_model()
        model.fit(
            *data.train,
            epochs=EPOCHS,
            batch_size=BATCH,
            validation_data=data.validation,
            callbacks=[HostileLogs(), cb],
            verbose=0,
        )
        assert cb.writer.flush(60)
    finally:
        logger.removeHandler(handler)
    cb.log_records = records  # type: ignore[attr-defined]
    return cb


def test_the_run_is_complete_with_its_ids_intact(store: Store, hostile) -> None:
    run_id = hostile.run_id
    (run,) = rows(store, "MATCH (r:TrainingRun {runId: $r}) RETURN properties(r) AS p", r=run_id)
    assert run["p"]["id"] == ids.run(run_id)
    assert run["p"]["status"] == o.RunStatus.COMPLETED
    assert run["p"]["epochsCompleted"] == EPOCHS
    found = rows(
        store,
        "MATCH (m:Metrics)-[:WAS_GENERATED_BY]->(e:Epoch)-[:WAS_INFORMED_BY]->"
        "(:TrainingRun {runId: $r}) RETURN e.id AS e, e.epoch AS n, properties(m) AS m "
        "ORDER BY n",
        r=run_id,
    )
    assert [f["n"] for f in found] == list(range(1, EPOCHS + 1))
    for f in found:
        n, props = f["n"], f["m"]
        assert f["e"] == ids.epoch(run_id, n)
        assert props["id"] == ids.epoch_metrics(run_id, n)
        assert (props["epoch"], props["runId"], props["kind"]) == (n, run_id, "epoch")
        assert not any(k.startswith("@") for k in props)


def test_every_hostile_metric_reads_back_through_the_epochs_query(store: Store, hostile) -> None:
    result = registry.run(store, "epochs", run=hostile.run_id)
    assert [r["epoch"] for r in result.rows] == list(range(1, EPOCHS + 1))
    for row in result.rows:
        names = [m["name"] for m in row["metrics"]]
        assert names == sorted(names)  # ordered by name on both engines
        got = {m["name"]: m["value"] for m in row["metrics"]}
        assert len(got) == len(row["metrics"])
        for i, name in enumerate(HOSTILE):
            assert got[name] == logged(i, row["epoch"]), name
        assert got["loss"] == row["loss"] and got["val_accuracy"] == row["val_accuracy"]
        assert row["loss"] is not None and row["learning_rate"] is not None


def test_every_hostile_hyperparameter_reads_back(store: Store, hostile) -> None:
    result = registry.run(store, "hyperparameters-at", run=hostile.run_id, epoch=1)
    got = {r["name"]: r["value"] for r in result.rows if r["source"] == "user"}
    expected = {k: v for k, v in HYPERPARAMETERS.items() if k != BIG}
    assert {k: got[k] for k in expected} == expected
    ids_found = rows(
        store,
        "MATCH (h:Hyperparameter {runId: $r}) RETURN h.name AS name, h.id AS id",
        r=hostile.run_id,
    )
    by_name = {r["name"]: r["id"] for r in ids_found}
    for name in HOSTILE:
        assert by_name[name] == ids.hyperparameter(hostile.run_id, name, 1)
    assert len(by_name[LONG]) < 400  # a long name's id segment is shortened


def test_the_20_mb_value_is_stored_truncated_with_size_and_sha256(store: Store, hostile) -> None:
    (props,) = rows(
        store,
        "MATCH (h:Hyperparameter {runId: $r, name: $n}) RETURN properties(h) AS p",
        r=hostile.run_id,
        n=BIG,
    )
    p = props["p"]
    limit = max_value_bytes()
    assert p["value"] == BIG_VALUE[:limit]
    assert p[o.truncated_size_prop("value")] == len(BIG_VALUE.encode())
    assert p[o.truncated_sha256_prop("value")] == hashlib.sha256(BIG_VALUE.encode()).hexdigest()
    warnings = [r for r in hostile.log_records if "stored truncated" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "20.0 MB" in warnings[0].getMessage() and "'value'" in warnings[0].getMessage()


def test_run_summary_and_named_queries_take_hostile_metric_names(store: Store, hostile) -> None:
    (run,) = rows(
        store, "MATCH (r:TrainingRun {runId: $r}) RETURN properties(r) AS p", r=hostile.run_id
    )
    props = run["p"]
    for i, name in enumerate(HOSTILE):
        assert props[o.summary_prop(o.SummaryStat.MAX, name)] == logged(i, EPOCHS)
        assert props[o.summary_prop(o.SummaryStat.MIN_EPOCH, name)] == 1
    long_key = o.summary_prop(o.SummaryStat.MAX, LONG)
    assert len(long_key) < 200 and o.summary_metric(long_key, props) == ("max", LONG)
    best = registry.run(store, "seed-q4", metric="@rid", mode="max").rows
    assert best[0]["value"] >= logged(HOSTILE.index("@rid"), EPOCHS)
    impact = registry.run(store, "gain-changes", run=hostile.run_id, metric="a b", k=1)
    assert impact.rows  # the series of metric "a b" rises by 1/8 every epoch


def test_the_app_reads_hostile_metric_names(store: Store, hostile) -> None:
    points = ui_data.run_metrics(store, hostile.run_id)
    assert [p["epoch"] for p in points] == list(range(1, EPOCHS + 1))
    keys = ui_data.metric_keys(points)
    assert set(HOSTILE) <= set(keys)
    assert ui_data.metric_of(points[-1], "a`b") == logged(HOSTILE.index("a`b"), EPOCHS)
    compared = ui_data.compare_metric_keys(store, experiment=hostile.experiment)
    assert set(HOSTILE) <= set(compared)
    (row,) = ui_data.compare_rows(store, [], "id", experiment=hostile.experiment)
    assert row["maxMetric"] == logged(0, EPOCHS)


def _epoch_metrics(store: Store, run_id: str) -> list[dict[str, Any]]:
    return [
        {m["name"]: m["value"] for m in row["metrics"]}
        for row in registry.run(store, "epochs", run=run_id).rows
    ]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_export_format_writes_the_run(
    store: Store, hostile, fmt: str, tmp_path: Path
) -> None:
    path = tmp_path / f"run{FORMATS[fmt].suffix}"
    assert export(store, fmt, path, run_id=hostile.run_id) > 0
    if fmt == "provxml":
        lxml.etree.parse(str(path))  # well-formed XML: every attribute name is a QName
        doc = FORMATS["provxml"].reader(path.read_text(encoding="utf-8"))  # ids decoded
        assert doc == build_document(store, run_id=hostile.run_id)


def test_prov_json_and_turtle_imports_give_the_names_back(
    store: Store, hostile, tmp_path: Path
) -> None:
    run_id = hostile.run_id
    before, metrics = build_document(store, run_id=run_id), _epoch_metrics(store, run_id)
    hps = registry.run(store, "hyperparameters-at", run=run_id, epoch=1).rows
    for fmt in ("provjson", "turtle"):
        path = tmp_path / f"run{FORMATS[fmt].suffix}"
        export(store, fmt, path, run_id=run_id)
        store.clear()  # the shared store: other modules write their own data again
        import_file(store, path)
        assert build_document(store, run_id=run_id) == before, fmt
        assert _epoch_metrics(store, run_id) == metrics, fmt
        assert registry.run(store, "hyperparameters-at", run=run_id, epoch=1).rows == hps


# -- the pieces -------------------------------------------------------------------------
@given(st.text())
def test_export_names_are_qnames_and_reversible(name: str) -> None:
    local = local_name(name)
    assert property_name(local) == name
    if name:  # an XML NCName (PROV-XML element names), never ending with a dot (Turtle)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", local) and not local.endswith(".")


@given(st.text())
def test_metric_props_are_apart_from_provkb_properties(name: str) -> None:
    prop = o.metric_prop(name)
    assert prop.startswith(o.METRIC_PREFIX) and len(prop) <= 200 + o.MAX_NAME_IN_KEY
    assert o.metric_name(prop, o.long_names(name)) == name
    assert o.metric_name("epoch") is None and o.metric_name(o.Prop.ID) is None


def test_oversized_lists_keep_their_head_with_size_and_sha256() -> None:
    items = [f"package-{i}==1.0" for i in range(100_000)]  # 1.8 MB of JSON
    out = encode_props({"packages": items, "small": [1, 2]}, "provkb:environment/x")
    kept = out["packages"]
    assert isinstance(kept, list) and kept == items[: len(kept)] and len(kept) < len(items)
    text = json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(json.dumps(kept, separators=(",", ":")).encode()) <= max_value_bytes()
    assert out[o.truncated_size_prop("packages")] == len(text)
    assert out[o.truncated_sha256_prop("packages")] == hashlib.sha256(text).hexdigest()
    assert out["small"] == [1, 2] and o.truncated_size_prop("small") not in out


def test_the_value_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVKB_MAX_VALUE_KB", "2")
    assert max_value_bytes() == 2048
    assert encode_props({"v": "é" * 5000})["v"] == "é" * 1024
    monkeypatch.setenv("PROVKB_MAX_VALUE_KB", "lots")
    assert max_value_bytes() == DEFAULT_MAX_VALUE_KB * 1024  # never stops capture


# -- writer: batches larger than one Bolt message -----------------------------------------
def _big_nodes(tag: str, count: int, props_each: int) -> GraphBatch:
    batch = GraphBatch()
    for i in range(count):
        values = {o.metric_prop(f"m{k}"): f"{i:04d}{k:04d}" * 7000 for k in range(props_each)}
        batch.add_node(f"provkb:test/{tag}/{i}", o.ENTITY, o.METRICS, runId=tag, **values)
    return batch


def test_a_batch_over_the_bolt_message_size_is_split_and_written(store: Store) -> None:
    tag = uuid.uuid4().hex[:12]
    batch = _big_nodes(tag, 300, 1)  # 300 x 56 KB: 16.8 MB, over ArcadeDB's 16 MB message
    assert store.write(batch) == 300
    (row,) = rows(
        store,
        "MATCH (n:Entity {runId: $r}) RETURN count(n) AS n, sum(size(n.`metric.m0`)) AS size",
        r=tag,
    )
    assert row == {"n": 300, "size": 300 * 56_000}


def test_a_record_too_big_for_one_message_is_refused_not_retried(store: Store) -> None:
    tag = uuid.uuid4().hex[:12]
    batch = _big_nodes(tag, 1, 200)  # one record of 200 x 56 KB: 11 MB
    with pytest.raises(RecordTooLarge, match=r"carries 10\.\d MB .* more than the 8\.0 MB"):
        store.write(batch)
    writer = BackgroundWriter(store)
    try:
        writer.submit(batch)
        assert writer.flush(60)  # done with it: nothing left to send or retry
        assert writer.stats.rejected == len(batch) and writer.stats.failures == 0
        assert "more than the 8.0 MB" in (writer.stats.last_error or "")
    finally:
        writer.close()
    assert rows(store, "MATCH (n:Entity {runId: $r}) RETURN n.id AS id", r=tag) == []
    assert MAX_STATEMENT_BYTES < 16 * 1024 * 1024
