"""Imports never rewrite what is stored (issue 10, section 4), on every engine.

A run is captured through `RunRecorder` (what the callback writes), exported as
PROV-JSON and Turtle, and the export edited as a forger would: the run's status
`tampered`, epoch 1's loss 1e-06 and accuracy 1.0, plus a foreign entity whose
`provkb:runId` names the captured run. Importing that is refused whole (nothing
changes), `skip` adds only the foreign entity (detached from the run), `replace`
changes the values and records an Import activity keeping the previous ones, and
importing an unedited export again is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rdflib
from helpers import cli
from rdflib.namespace import RDF

from provkb import ontology as o
from provkb.capture.facts import Hyperparameter, Run, RunContext
from provkb.capture.recorder import RunRecorder
from provkb.errors import ImportConflict
from provkb.kb import cypher
from provkb.kb.export import build_document, export, select_ids
from provkb.kb.provimport import import_file
from provkb.kb.store import Store

LOSS1, ACC1 = 0.6931, 0.4375  # epoch 1's logs
FORGED_LOSS, FORGED_ACC, FORGED_STATUS = 1e-06, 1.0, "tampered"
EX = "http://example.org/"
PROV_O = rdflib.Namespace(o.PROV_NS)
PROVKB_O = rdflib.Namespace(o.PROVKB_NS)
SUFFIX = {"provjson": ".json", "turtle": ".ttl"}


@dataclass
class Captured:
    """A captured run and the names of the properties holding epoch 1's logs."""

    run_id: str
    run_node: str
    metrics1: str
    loss_prop: str
    acc_prop: str

    @property
    def intruder(self) -> str:
        """A foreign entity (of this test only) that claims the run."""
        return f"ex:intruder-{self.run_id}"


def _t(second: int) -> str:
    return f"2026-12-01T10:00:{second:02d}+00:00"


def capture_run(store: Store) -> Captured:
    """Three epochs of a completed run, written as the callback writes them."""
    tag = uuid.uuid4().hex[:12]
    run = Run(tag, f"run-{tag}", f"exp-{tag}", f"proj-{tag}", f"ada-{tag}", _t(0), 3)
    recorder = RunRecorder(run)
    hp = [Hyperparameter("learning_rate", 0.01, "optimizer", True)]
    store.write(recorder.start(RunContext(run, hyperparameters=hp)))
    logs = {1: (LOSS1, ACC1), 2: (0.41, 0.71), 3: (0.33, 0.82)}
    for n, (loss, acc) in logs.items():
        batch = recorder.epoch(n, _t(10 * n), _t(10 * n + 9), 9.0, {"loss": loss, "accuracy": acc})
        store.write(batch)
    store.write(recorder.finish(o.RunStatus.COMPLETED, _t(40)))
    metrics1 = f"{recorder.run_node}/epoch/1/metrics"
    props = node_props(store, metrics1)
    # whatever names capture gives Keras' keys: the properties holding their values
    (loss_prop,) = [k for k, v in props.items() if v == LOSS1]
    (acc_prop,) = [k for k, v in props.items() if v == ACC1]
    return Captured(tag, recorder.run_node, metrics1, loss_prop, acc_prop)


def node_props(store: Store, node_id: str) -> dict[str, Any]:
    for kind in o.KINDS:
        rows = store.read(cypher.read_nodes(kind, selected=True), ids=[node_id]).rows
        if rows:
            return rows[0]["props"]
    return {}


def node_labels(store: Store, node_id: str) -> list[str]:
    for kind in o.KINDS:
        rows = store.read(cypher.read_nodes(kind, selected=True), ids=[node_id]).rows
        if rows:
            return sorted(rows[0]["labels"])
    return []


def exported(store: Store, run: Captured, fmt: str, path: Path) -> Path:
    export(store, fmt, path, run_id=run.run_id)
    return path


# -- forging an export ------------------------------------------------------------------
def _plain(value: Any) -> Any:
    return value["$"] if isinstance(value, dict) and "$" in value else value


def _set_json_value(attrs: dict[str, Any], old: Any, new: Any) -> None:
    keys = [k for k, v in attrs.items() if not k.startswith("prov:") and _equal(_plain(v), old)]
    assert len(keys) == 1, (old, attrs)
    attrs[keys[0]] = new


def _equal(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, float):
        try:
            return float(value) == wanted
        except (TypeError, ValueError):
            return False
    return value == wanted


def forge_provjson(text: str, run: Captured, extra: dict | None = None) -> str:
    doc = json.loads(text)
    _set_json_value(doc["activity"][run.run_node], o.RunStatus.COMPLETED, FORGED_STATUS)
    metrics = doc["entity"][run.metrics1]
    _set_json_value(metrics, LOSS1, FORGED_LOSS)
    _set_json_value(metrics, ACC1, FORGED_ACC)
    doc["prefix"]["ex"] = EX
    doc["entity"][run.intruder] = {"provkb:runId": run.run_id, "ex:note": "not captured"}
    for key, records in (extra or {}).items():
        doc.setdefault(key, {}).update(records)
    return json.dumps(doc)


def _iri(node_id: str) -> rdflib.URIRef:
    prefix, _, local = node_id.partition(":")
    return rdflib.URIRef((o.PROVKB_DATA_NS if prefix == o.PROVKB_PREFIX else EX) + local)


def _set_triple(graph: rdflib.Graph, subject: rdflib.URIRef, old: Any, new: Any) -> None:
    found = [
        (p, v)
        for p, v in graph.predicate_objects(subject)
        if isinstance(v, rdflib.Literal) and _equal(v.toPython(), old)
    ]
    assert len(found) == 1, (subject, old, found)
    predicate, value = found[0]
    graph.remove((subject, predicate, value))
    graph.add((subject, predicate, rdflib.Literal(new)))


def forge_turtle(text: str, run: Captured) -> str:
    graph = rdflib.Graph().parse(data=text, format="turtle")
    _set_triple(graph, _iri(run.run_node), o.RunStatus.COMPLETED, FORGED_STATUS)
    _set_triple(graph, _iri(run.metrics1), LOSS1, FORGED_LOSS)
    _set_triple(graph, _iri(run.metrics1), ACC1, FORGED_ACC)
    graph.bind("ex", EX)
    intruder = _iri(run.intruder)
    graph.add((intruder, RDF.type, PROV_O.Entity))
    graph.add((intruder, PROVKB_O.runId, rdflib.Literal(run.run_id)))
    graph.add((intruder, rdflib.URIRef(EX + "note"), rdflib.Literal("not captured")))
    # N-Triples (a subset of Turtle) keeps every literal's lexical form; rdflib's Turtle
    # writer rounds doubles (1.9674999999999998 -> 1.9675e+00)
    # (with the prefixes declared: the foreign entity keeps its `ex:` name)
    return f"@prefix ex: <{EX}> .\n" + graph.serialize(format="nt")


def forged_file(store: Store, run: Captured, fmt: str, tmp_path: Path) -> Path:
    original = exported(store, run, fmt, tmp_path / f"run{SUFFIX[fmt]}")
    text = original.read_text(encoding="utf-8")
    forged = forge_provjson(text, run) if fmt == "provjson" else forge_turtle(text, run)
    path = tmp_path / f"forged{SUFFIX[fmt]}"
    path.write_text(forged, encoding="utf-8")
    return path


def run_records(store: Store, run_id: str) -> set[str]:
    """Ids of the records a run's queries see: those carrying its runId."""
    rows = store.read("MATCH (n) WHERE n.runId = $run RETURN n.id AS id", run=run_id).rows
    return {row["id"] for row in rows}


@pytest.fixture
def run(store: Store) -> Captured:
    return capture_run(store)


# -- refuse (the default) -----------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["provjson", "turtle"])
def test_forged_export_is_refused_whole(
    store: Store, run: Captured, tmp_path: Path, fmt: str
) -> None:
    path = forged_file(store, run, fmt, tmp_path)
    before, counts = build_document(store, run_id=run.run_id), store.counts()
    with pytest.raises(ImportConflict) as refused:
        import_file(store, path)
    found = {(c.record, c.property, c.stored, c.file) for c in refused.value.conflicts}
    assert found == {
        (run.run_node, o.Prop.STATUS, o.RunStatus.COMPLETED, FORGED_STATUS),
        (run.metrics1, run.loss_prop, LOSS1, FORGED_LOSS),
        (run.metrics1, run.acc_prop, ACC1, FORGED_ACC),
        (run.intruder, o.Prop.RUN_ID, None, run.run_id),
    }
    message = str(refused.value)
    assert "nothing was imported" in message and "tampered" in message and "1e-06" in message
    assert f"claiming stored run {run.run_id}" in message
    assert store.counts() == counts
    assert build_document(store, run_id=run.run_id) == before
    assert node_props(store, run.intruder) == {}


def test_cli_refuses_with_the_conflicts_and_a_nonzero_exit(
    store: Store, run: Captured, tmp_path: Path
) -> None:
    path = forged_file(store, run, "provjson", tmp_path)
    before, counts = build_document(store, run_id=run.run_id), store.counts()
    done = cli(store, "import", str(path))
    assert done.returncode == 3, done.stderr
    assert f"{run.run_node} status: stored 'completed', file 'tampered'" in done.stderr
    assert f"{run.metrics1} {run.loss_prop}: stored {LOSS1!r}, file 1e-06" in done.stderr
    assert "--on-conflict skip" in done.stderr and "--replace" in done.stderr
    assert store.counts() == counts and build_document(store, run_id=run.run_id) == before


def test_conflicts_listed_are_capped_with_a_count(
    store: Store, run: Captured, tmp_path: Path
) -> None:
    doc = json.loads(exported(store, run, "provjson", tmp_path / "run.json").read_text())
    for n in (1, 2, 3):
        doc["entity"][f"{run.run_node}/epoch/{n}/metrics"].update(
            {f"provkb:extra{i}": i for i in range(10)}
        )
    path = tmp_path / "many.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ImportConflict) as refused:
        import_file(store, path)
    assert len(refused.value.conflicts) == 30
    assert "... and 10 more" in str(refused.value)


def test_changed_relation_property_and_new_relation_of_a_run_are_conflicts(
    store: Store, run: Captured, tmp_path: Path
) -> None:
    doc = json.loads(exported(store, run, "provjson", tmp_path / "run.json").read_text())
    (assoc,) = [
        r
        for r in doc["wasAssociatedWith"].values()
        if r["prov:activity"] == run.run_node and "prov:plan" in r
    ]
    assoc["provkb:role"] = "forged"
    doc["prefix"]["ex"] = EX
    planted = f"ex:planted-{run.run_id}"
    doc["entity"][planted] = {"ex:note": "planted"}
    doc["used"]["_:planted"] = {"prov:activity": run.run_node, "prov:entity": planted}
    epoch1 = f"{run.run_node}/epoch/1"
    doc["wasGeneratedBy"]["_:planted"] = {"prov:entity": planted, "prov:activity": epoch1}
    derived = {"prov:generatedEntity": planted, "prov:usedEntity": run.metrics1}
    doc.setdefault("wasDerivedFrom", {})["_:derived"] = derived
    path = tmp_path / "relations.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    counts = store.counts()
    with pytest.raises(ImportConflict) as refused:
        import_file(store, path)
    found = {(c.record.split("(")[0], c.property, c.stored) for c in refused.value.conflicts}
    assert found == {
        ("wasAssociatedWith", "role", None),
        ("used", "relation", None),
        ("wasGeneratedBy", "relation", None),
    }
    assert store.counts() == counts
    report = import_file(store, path, on_conflict=o.ImportMode.SKIP)
    # the entity and its derivation; not the usage by the run nor the epoch's generation
    assert (report.nodes, report.edges) == (1, 1)
    used = store.read(
        "MATCH (a {id: $run})-[:USED]->(e {id: $planted}) RETURN count(*) AS n",
        run=run.run_node,
        planted=planted,
    ).rows
    assert used == [{"n": 0}]


def test_adding_a_label_is_refused_even_with_replace(
    store: Store, run: Captured, tmp_path: Path
) -> None:
    doc = json.loads(exported(store, run, "provjson", tmp_path / "run.json").read_text())
    plan = doc["entity"][f"{run.run_node}/plan"]
    plan["prov:type"] = [plan["prov:type"], {"$": "provkb:Dataset", "type": "prov:QUALIFIED_NAME"}]
    path = tmp_path / "label.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    labels = node_labels(store, f"{run.run_node}/plan")
    for mode in (o.ImportMode.REFUSE, o.ImportMode.REPLACE):
        with pytest.raises(ImportConflict, match="never relabels"):
            import_file(store, path, on_conflict=mode)
    report = import_file(store, path, on_conflict=o.ImportMode.SKIP)
    assert report.records == 0 and [c.property for c in report.conflicts] == ["labels"]
    assert node_labels(store, f"{run.run_node}/plan") == labels


# -- skip ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["provjson", "turtle"])
def test_skip_adds_only_the_new_record_detached_from_the_run(
    store: Store, run: Captured, tmp_path: Path, fmt: str
) -> None:
    path = forged_file(store, run, fmt, tmp_path)
    before, records = build_document(store, run_id=run.run_id), run_records(store, run.run_id)
    report = import_file(store, path, on_conflict=o.ImportMode.SKIP)
    assert (report.nodes, report.edges) == (1, 0) and report.demoted == [run.intruder]
    assert len(report.conflicts) == 4 and report.unchanged > 0
    assert any("skipped 4 conflicting values" in line for line in report.lines())
    assert build_document(store, run_id=run.run_id) == before
    assert run_records(store, run.run_id) == records  # runs' queries do not see it
    assert run.intruder not in select_ids(store, [run.run_id])
    intruder = node_props(store, run.intruder)
    assert o.Prop.RUN_ID not in intruder
    assert intruder[o.imported_prop(o.Prop.RUN_ID)] == run.run_id
    assert node_labels(store, run.intruder) == ["Entity"]
    again = import_file(store, path, on_conflict=o.ImportMode.SKIP)
    assert again.records == 0  # the demoted intruder is stored: nothing left to add


# -- replace ------------------------------------------------------------------------------
def test_replace_changes_the_values_and_records_the_import(
    store: Store, run: Captured, tmp_path: Path
) -> None:
    path = forged_file(store, run, "provjson", tmp_path)
    person = f"auditor-{run.run_id}"
    done = cli(store, "import", str(path), "--replace", "--person", person)
    assert done.returncode == 0, done.stderr
    assert "replaced 4 conflicting values" in done.stdout and "recorded as" in done.stdout
    assert "ImportReport(" not in done.stdout
    assert node_props(store, run.run_node)[o.Prop.STATUS] == FORGED_STATUS
    metrics = node_props(store, run.metrics1)
    assert metrics[run.loss_prop] == FORGED_LOSS and metrics[run.acc_prop] == FORGED_ACC
    rows = store.read(
        "MATCH (i:Import)-[:WAS_ASSOCIATED_WITH]->(p:Person {id: $person}) "
        "MATCH (i)-[:USED]->(f:ImportedFile) "
        "RETURN properties(i) AS activity, properties(f) AS file",
        person=f"provkb:person/{person}",
    ).rows
    assert len(rows) == 1
    activity, file = rows[0]["activity"], rows[0]["file"]
    assert activity[o.Prop.ON_CONFLICT] == o.ImportMode.REPLACE
    assert activity[o.Prop.STARTED] and activity[o.Prop.ENDED] and activity[o.Prop.OS_USER]
    assert file[o.Prop.SHA256] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file[o.Prop.NAME] == path.name
    replaced = {
        (c["record"], c["property"]): (c["stored"], c["file"])
        for c in json.loads(activity[o.Prop.REPLACED])
    }
    assert replaced == {
        (run.run_node, o.Prop.STATUS): (o.RunStatus.COMPLETED, FORGED_STATUS),
        (run.metrics1, run.loss_prop): (LOSS1, FORGED_LOSS),
        (run.metrics1, run.acc_prop): (ACC1, FORGED_ACC),
        (run.intruder, o.Prop.RUN_ID): (None, run.run_id),
    }


def test_replace_without_a_change_is_a_noop(store: Store, run: Captured, tmp_path: Path) -> None:
    path = exported(store, run, "turtle", tmp_path / "run.ttl")
    counts = store.counts()
    report = import_file(store, path, on_conflict=o.ImportMode.REPLACE, record=True)
    assert report.records == 0 and report.import_id is None and report.conflicts == []
    assert store.counts() == counts


# -- identical re-import ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["provjson", "turtle"])
def test_identical_reimport_is_a_noop(
    store: Store, run: Captured, tmp_path: Path, fmt: str
) -> None:
    path = exported(store, run, fmt, tmp_path / f"run{SUFFIX[fmt]}")
    before, counts = build_document(store, run_id=run.run_id), store.counts()
    report = import_file(store, path, record=True)
    assert report.records == 0 and report.conflicts == [] and report.import_id is None
    assert report.unchanged == len(before.get_records())
    assert store.counts() == counts and build_document(store, run_id=run.run_id) == before


def test_cli_identical_reimport_exits_zero(store: Store, run: Captured, tmp_path: Path) -> None:
    path = exported(store, run, "provjson", tmp_path / "run.json")
    counts = store.counts()
    done = cli(store, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert "nothing to import from run.json" in done.stdout
    assert store.counts() == counts


# -- an export into an empty knowledge base -----------------------------------------------
def test_export_into_an_empty_store_keeps_capture_properties_and_records_the_import(
    clean_store: Store, tmp_path: Path
) -> None:
    run = capture_run(clean_store)
    path = exported(clean_store, run, "provjson", tmp_path / "run.json")
    before = build_document(clean_store, run_id=run.run_id)
    records = run_records(clean_store, run.run_id)
    clean_store.clear()
    report = import_file(clean_store, path, record=True, person="ada")
    assert report.demoted == [] and report.conflicts == [] and report.import_id
    assert build_document(clean_store, run_id=run.run_id) == before
    assert run_records(clean_store, run.run_id) == records
    imports = clean_store.read(
        "MATCH (i:Import {id: $id}) RETURN i.nodesWritten AS n", id=report.import_id
    ).rows
    assert imports == [{"n": report.nodes}]
