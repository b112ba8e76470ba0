"""Export to and import from PROV documents, on the real embedded store.

The graph is a hand-built small captured run (docs/graph-model.md): project,
experiment, run with 3 epochs, metrics, a learning-rate revision chain, agents with
a plan association, datasets with a list `shape`, a model with layers, an
evaluation; plus a second run of the same experiment sharing some agents.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import prov
import pytest
import rdflib
from prov.model import ProvDocument
from rdflib.namespace import RDF

from provkb.errors import ExportError, ProvImportError
from provkb.kb import formats, prov_diagram, prov_exact
from provkb.kb.export import FORMATS, build_document, export, render
from provkb.kb.provimport import import_document, import_file, read_document
from provkb.kb.records import GraphBatch, Node
from provkb.kb.store import Store
from provkb.ontology import (
    ACTED_ON_BEHALF_OF,
    ACTIVITY,
    ADAPTATION,
    AGENT,
    DATASET,
    ENTITY,
    ENVIRONMENT,
    EPOCH,
    EVALUATION,
    EXPERIMENT,
    HAD_MEMBER,
    HYPERPARAMETER,
    LAYER,
    MACHINE,
    METRICS,
    MODEL,
    PERSON,
    PLAN,
    PROJECT,
    SCRIPT,
    SOFTWARE_AGENT,
    TRAINING_RUN,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_ATTRIBUTED_TO,
    WAS_DERIVED_FROM,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    WAS_REVISION_OF,
    Kind,
    Prop,
    Subtype,
)

RUN1 = "a1b2c3d4e5f6"
RUN2 = "0f1e2d3c4b5a"
PROV_O = rdflib.Namespace("http://www.w3.org/ns/prov#")

PROJECT_ID = "provkb:project/demo"
EXPERIMENT_ID = "provkb:experiment/mnist"
ALICE = "provkb:person/alice"
BOB = "provkb:person/bob"
KERAS = "provkb:software/keras-3.3.3-tensorflow"
MACHINE_ID = "provkb:machine/host1"
CALLBACK = "provkb:software/callback/LearningRateScheduler"
TRAIN = "provkb:dataset/7e57da7a"
VALID = "provkb:dataset/5a11da7a"
SCRIPT_ID = "provkb:script/5c41"
ENV = "provkb:environment/e4f1"
SHARED = {PROJECT_ID, EXPERIMENT_ID, ALICE, KERAS, MACHINE_ID, CALLBACK, TRAIN, VALID}
SHARED |= {SCRIPT_ID, ENV}


def add_node(batch: GraphBatch, node_id: str, kind: Kind, *subtypes: Subtype, **props) -> None:
    """Like `GraphBatch.add_node`, but via a props dict: metrics and adaptations have a
    `kind` property, which `add_node(id, kind, ...)` cannot take as a keyword."""
    props = {k.removesuffix("_"): v for k, v in props.items()}
    batch.nodes.append(Node(node_id, kind, subtypes, props))


def _t(second: int) -> str:
    return f"2026-11-23T01:02:{second:02d}.456789+00:00"


def shared_nodes() -> GraphBatch:
    """Nodes every run relates to (no runId)."""
    b = GraphBatch()
    b.add_node(PROJECT_ID, ACTIVITY, PROJECT, name="demo")
    b.add_node(EXPERIMENT_ID, ACTIVITY, EXPERIMENT, name="mnist", project="demo")
    b.add_node(ALICE, AGENT, PERSON, name="alice")
    b.add_node(BOB, AGENT, PERSON, name="bob")
    b.add_node(
        KERAS,
        AGENT,
        SOFTWARE_AGENT,
        name="keras",
        version="3.3.3",
        backend="tensorflow",
        backendVersion="2.16.1",
        provkbVersion="0.1.0",
    )
    b.add_node(MACHINE_ID, AGENT, MACHINE, hostname="host1", os="Linux", cpuCount=8, gpus=["GPU-0"])
    b.add_node(CALLBACK, AGENT, SOFTWARE_AGENT, name="LearningRateScheduler")
    for node_id, name, samples in ((TRAIN, "mnist-train", 600), (VALID, "mnist-val", 100)):
        b.add_node(
            node_id,
            ENTITY,
            DATASET,
            name=name,
            shape=[samples, 28, 28],
            dtype="float32",
            samples=samples,
            fingerprint=node_id.rsplit("/", 1)[1],
        )
    b.add_node(SCRIPT_ID, ENTITY, SCRIPT, path="train.py", sha256="5c41", gitDirty=False)
    b.add_node(ENV, ENTITY, ENVIRONMENT, python="3.11.7", packages=["keras==3.3.3", "numpy==1"])
    b.add_edge(WAS_INFORMED_BY, EXPERIMENT_ID, PROJECT_ID)
    for agent in (KERAS, MACHINE_ID, CALLBACK):
        b.add_edge(ACTED_ON_BEHALF_OF, agent, ALICE)
    return b


def run_batch(run: str, *, nan: bool = False, person: str = ALICE) -> GraphBatch:
    """One captured run of 3 epochs (NaN in the last val_loss when `nan`)."""
    b = GraphBatch()
    r = f"provkb:run/{run}"
    plan, model = f"{r}/plan", f"{r}/model"
    b.add_node(
        r,
        ACTIVITY,
        TRAINING_RUN,
        runId=run,
        name=f"run-{run}",
        experiment="mnist",
        project="demo",
        status="completed",
        startedAtTime=_t(0),
        endedAtTime=_t(30),
        epochsPlanned=3,
        epochsCompleted=3,
        commandLine="python train.py --epochs 3",
        # the run summary: property names with dots must survive every format
        epochSeconds=30.0,
        **{"summary.max.val_accuracy": 0.91, "summary.maxEpoch.val_accuracy": 2},
    )
    b.add_node(plan, ENTITY, PLAN, runId=run, modelConfig=json.dumps({"layers": 2}))
    lr1, lr2 = f"{r}/hp/learning_rate/v1", f"{r}/hp/learning_rate/v2"
    bs = f"{r}/hp/batch_size/v1"
    hp = {"runId": run, "valueType": "float", "source": "optimizer", "name": "learning_rate"}
    b.add_node(lr1, ENTITY, HYPERPARAMETER, value=0.01, fromEpoch=1, version=1, **hp)
    b.add_node(lr2, ENTITY, HYPERPARAMETER, value=0.005, fromEpoch=3, version=2, **hp)
    b.add_node(bs, ENTITY, HYPERPARAMETER, runId=run, name="batch_size", value=32, version=1)
    b.add_node(model, ENTITY, MODEL, runId=run, name="cnn", totalParams=1234, layerCount=2)
    layers = [{"class": "Dense", "units": 64}, {"class": "Dropout", "rate": 0.5}]
    for i, layer in enumerate(layers):
        b.add_node(f"{model}/layer/{i}", ENTITY, LAYER, runId=run, name=f"l{i}", index=i, **layer)
        b.add_edge(HAD_MEMBER, model, f"{model}/layer/{i}")
    b.add_edge(WAS_INFORMED_BY, r, EXPERIMENT_ID)
    b.add_edge(WAS_ASSOCIATED_WITH, r, person, plan=plan)
    b.add_edge(WAS_ASSOCIATED_WITH, r, KERAS)
    b.add_edge(WAS_ASSOCIATED_WITH, r, MACHINE_ID)
    for used in (lr1, bs, SCRIPT_ID, ENV):
        b.add_edge(USED, r, used)
    b.add_edge(USED, r, TRAIN, role="train")
    b.add_edge(USED, r, VALID, role="validation")
    for n in (1, 2, 3):
        epoch, metrics = f"{r}/epoch/{n}", f"{r}/epoch/{n}/metrics"
        b.add_node(
            epoch,
            ACTIVITY,
            EPOCH,
            runId=run,
            epoch=n,
            startedAtTime=_t(10 * n - 9),
            endedAtTime=_t(10 * n - 1),
            elapsedSeconds=8.0,
        )
        val_loss = math.nan if nan and n == 3 else 1.0 / n
        add_node(
            b,
            metrics,
            ENTITY,
            METRICS,
            runId=run,
            epoch=n,
            kind_="epoch",
            loss=0.5 / n,
            accuracy=0.8 + n / 100,
            val_loss=val_loss,
            generatedAtTime=_t(10 * n - 1),
        )
        b.add_edge(WAS_INFORMED_BY, epoch, r if n == 1 else f"{r}/epoch/{n - 1}")
        b.add_edge(WAS_GENERATED_BY, metrics, epoch, time=_t(10 * n - 1))
        b.add_edge(USED, epoch, lr1 if n < 3 else lr2)
    adaptation = f"{r}/adaptation/3/learning_rate"
    add_node(
        b,
        adaptation,
        ACTIVITY,
        ADAPTATION,
        runId=run,
        epoch=3,
        hyperparameter="learning_rate",
        oldValue=0.01,
        newValue=0.005,
        callback="LearningRateScheduler",
        kind_="schedule",
        startedAtTime=_t(20),
        endedAtTime=_t(20),
    )
    b.add_edge(WAS_INFORMED_BY, adaptation, r)
    b.add_edge(WAS_ASSOCIATED_WITH, adaptation, CALLBACK)
    b.add_edge(USED, adaptation, f"{r}/epoch/2/metrics")
    b.add_edge(USED, adaptation, lr1)
    b.add_edge(WAS_GENERATED_BY, lr2, adaptation, time=_t(20))
    b.add_edge(WAS_REVISION_OF, lr2, lr1)
    b.add_edge(WAS_GENERATED_BY, model, r, time=_t(30))
    b.add_edge(WAS_DERIVED_FROM, model, TRAIN)
    b.add_edge(WAS_ATTRIBUTED_TO, model, person)
    evaluation, test_metrics = f"{r}/evaluation/1", f"{r}/evaluation/1/metrics"
    b.add_node(
        evaluation, ACTIVITY, EVALUATION, runId=run, startedAtTime=_t(31), endedAtTime=_t(32)
    )
    add_node(b, test_metrics, ENTITY, METRICS, runId=run, kind_="test", loss=0.3, accuracy=0.9)
    b.add_edge(USED, evaluation, model)
    b.add_edge(USED, evaluation, VALID, role="test")
    b.add_edge(WAS_ASSOCIATED_WITH, evaluation, person)
    b.add_edge(WAS_GENERATED_BY, test_metrics, evaluation, time=_t(32))
    return b


def write_sample(store: Store, *, nan: bool = False, second_run: bool = True) -> None:
    batch = shared_nodes()
    batch.extend(run_batch(RUN1, nan=nan))
    if second_run:
        batch.extend(run_batch(RUN2, person=BOB))
    store.write(batch)


def element_ids(doc: ProvDocument) -> set[str]:
    return {str(r.identifier) for r in doc.get_records() if r.is_element()}


def export_text(store: Store, fmt: str, **selection: str) -> str:
    out = io.StringIO()
    export(store, fmt, out, **selection)
    return out.getvalue()


@pytest.fixture
def sample(clean_store: Store) -> Store:
    write_sample(clean_store)
    return clean_store


# -- (1) exports load back equal ------------------------------------------------------
def test_document_maps_nodes_and_relations(sample: Store) -> None:
    doc = build_document(sample)
    counts = sample.counts()
    assert len(doc.get_records()) == counts["nodes"] + counts["relationships"]
    run = doc.get_record(f"provkb:run/{RUN1}")[0]
    assert run.get_startTime().isoformat() == _t(0)
    assert {str(t) for t in run.get_asserted_types()} == {"provkb:TrainingRun"}
    assert {str(t) for t in doc.get_record(ALICE)[0].get_asserted_types()} == {"prov:Person"}
    dataset = doc.get_record(TRAIN)[0]
    (shape,) = dataset.get_attribute("provkb:shape")
    assert str(shape.datatype) == "provkb:json" and json.loads(shape.value) == [600, 28, 28]
    assert dataset.get_attribute("provkb:samples") == {600}
    relations = [r for r in doc.get_records() if r.is_relation()]
    revisions = [r for r in relations if "prov:Revision" in map(str, r.get_asserted_types())]
    assert len(revisions) == 2
    plans = [r for r in relations if r.get_attribute("prov:plan")]
    assert {str(p) for r in plans for p in r.get_attribute("prov:plan")} == {
        f"provkb:run/{RUN1}/plan",
        f"provkb:run/{RUN2}/plan",
    }
    roles = {v for r in relations for v in r.get_attribute("prov:role")}
    assert roles == {"train", "validation", "test"}


def test_provjson_export_loads_back_equal(sample: Store, tmp_path: Path) -> None:
    doc = build_document(sample)
    path = tmp_path / "kb.json"
    assert export(sample, "provjson", path) == len(doc.get_records())
    assert prov.read(str(path), format="json") == doc
    assert ProvDocument.deserialize(path, format="json") == doc


def test_turtle_export_loads_back_equal(sample: Store) -> None:
    doc = build_document(sample)
    text = export_text(sample, "turtle")
    assert formats.FORMATS["turtle"].reader(text) == doc
    # prov's own decoder reads the unqualified shortcuts beside the qualified usages
    # and generations as relations of their own (docs/graph-model.md, "PROV-O export")
    plain = ProvDocument.deserialize(content=text, format="rdf", rdf_format="turtle")
    assert len(plain.get_records()) > len(doc.get_records())


# -- (2) export -> import into an empty store -> export --------------------------------
@pytest.mark.parametrize(
    "fmt", ["provjson", "turtle", "trig", "jsonld", "provxml", "provn", "provjsonld"]
)
def test_round_trip_through_an_empty_store(sample: Store, tmp_path: Path, fmt: str) -> None:
    before, counts = build_document(sample), sample.counts()
    path = tmp_path / f"kb{FORMATS[fmt].suffix}"
    export(sample, fmt, path)
    sample.clear()
    report = import_file(sample, path)
    assert report.format == fmt and report.implicit == []
    assert report.records == counts["nodes"] + counts["relationships"]
    assert build_document(sample) == before
    assert sample.counts() == counts


def test_nan_survives_export_and_import(clean_store: Store, tmp_path: Path) -> None:
    write_sample(clean_store, nan=True, second_run=False)
    metrics = f"provkb:run/{RUN1}/epoch/3/metrics"
    for fmt in ("provjson", "turtle"):
        path = tmp_path / f"nan{FORMATS[fmt].suffix}"
        export(clean_store, fmt, path)
        clean_store.clear()
        import_file(clean_store, path)
        (value,) = (
            build_document(clean_store).get_record(metrics)[0].get_attribute("provkb:val_loss")
        )
        assert isinstance(value, float) and math.isnan(value)


def test_reimport_into_the_same_store_changes_nothing(sample: Store, tmp_path: Path) -> None:
    before, counts = build_document(sample), sample.counts()
    export(sample, "provjson", tmp_path / "kb.json")
    import_file(sample, tmp_path / "kb.json")
    assert sample.counts() == counts and build_document(sample) == before


# -- (3) Turtle read by plain rdflib ---------------------------------------------------
def test_turtle_used_and_generated_link_typed_nodes(sample: Store) -> None:
    graph = rdflib.Graph().parse(data=export_text(sample, "turtle"), format="turtle")
    # every usage and generation has its unqualified shortcut (prov:used, wasGeneratedBy)
    links = [(s, o, PROV_O.Activity, PROV_O.Entity) for s, o in graph.subject_objects(PROV_O.used)]
    links += [
        (s, o, PROV_O.Entity, PROV_O.Activity)
        for s, o in graph.subject_objects(PROV_O.wasGeneratedBy)
    ]
    for prop, qualified, shortcut in (
        (PROV_O.qualifiedUsage, PROV_O.entity, PROV_O.used),
        (PROV_O.qualifiedGeneration, PROV_O.activity, PROV_O.wasGeneratedBy),
    ):
        for s, q in graph.subject_objects(prop):
            assert all((s, shortcut, o) in graph for o in graph.objects(q, qualified))
    types = [str(r.get_type()) for r in build_document(sample).get_records()]
    assert len(links) == types.count("prov:Usage") + types.count("prov:Generation") == 38
    for subject, obj, subject_type, object_type in links:
        assert (subject, RDF.type, subject_type) in graph, subject
        assert (obj, RDF.type, object_type) in graph, obj


# -- (4) Graphviz ---------------------------------------------------------------------
def test_svg_export_uses_prov_colours(sample: Store, tmp_path: Path) -> None:
    path = tmp_path / "run.svg"
    assert export(sample, "svg", path, run_id=RUN1) > 0
    svg = path.read_text(encoding="utf-8").lower()
    assert svg.startswith("<?xml") and "<svg" in svg
    assert 'fill="#fffc87"' in svg and "<ellipse" in svg  # entities: yellow ellipses
    assert 'fill="#9fb1fc"' in svg  # activities: blue rectangles
    assert 'fill="#fed37f"' in svg  # agents: orange pentagons ("house")


def test_dot_and_png_exports(sample: Store, tmp_path: Path) -> None:
    dot = export_text(sample, "dot", run_id=RUN1)
    assert dot.startswith("digraph") and "#FFFC87" in dot and "shape=house" in dot
    png = io.BytesIO()
    export(sample, "png", png, run_id=RUN1)
    assert png.getvalue().startswith(b"\x89PNG")
    with pytest.raises(ExportError, match="binary"):
        export(sample, "png", io.StringIO(), run_id=RUN1)


def test_diagrams_have_short_captions_and_run_left_to_right(sample: Store) -> None:
    """Captions are kind and name (the full id is the tooltip), not the id, so a run's
    diagram stays readable; causes are on the left (rankdir RL: arrows point back)."""
    import re

    dot = export_text(sample, "dot", run_id=RUN1)
    assert "rankdir=RL" in dot
    labels = re.findall(r'label="([^"]*)"', dot)
    nodes = [line for line in dot.splitlines() if "URL=" in line]
    assert nodes and all("tooltip=" in line for line in nodes)
    captions = [label for label in labels if "\\n" in label]
    assert len(captions) == len(nodes)
    assert not any("provkb:" in c or "https://" in c for c in captions), captions
    assert all(len(line) <= prov_diagram.CAPTION_CHARS for c in captions for line in c.split("\\n"))
    assert any(c.startswith("Hyperparameter\\n") and " = " in c for c in captions), captions
    assert any(c.startswith("Epoch\\nepoch ") for c in captions), captions


# -- (5) bad input --------------------------------------------------------------------
def _unknown_relation(doc: dict) -> dict:
    doc["wasFooedBy"] = {"_:r1": {"prov:entity": f"provkb:run/{RUN1}/model"}}
    return doc


def test_relations_without_a_relationship_import_and_export_exactly(
    clean_store: Store,
) -> None:
    """A relation whose end is of another kind, kinds ProvKB has no relationship type
    for, and absent ends: kept exactly on their first end (docs/graph-model.md)."""
    doc = ProvDocument()
    doc.set_default_namespace("https://example.org/")
    doc.entity("e", {"size": 3})
    doc.entity("e2")
    doc.agent("e")  # also an agent
    doc.used("e", "e2")  # an entity used as an activity
    doc.specializationOf("e2", "e")
    doc.alternateOf("e", "e2")
    doc.influence("e2", "e")
    doc.wasGeneratedBy("e2", None, "2024-01-02T03:04:05+00:00")  # no activity
    doc.wasEndedBy("a", None, "a0")  # no trigger
    import_document(clean_store, doc)
    assert build_document(clean_store).unified() == doc.unified()
    kept = clean_store.read(
        f"MATCH (n) WHERE n.{Prop.PROV_RECORDS} IS NOT NULL RETURN count(n) AS n"
    ).rows
    assert kept[0]["n"] >= 2  # e (two kinds, its relations) and e2 (its relations)


def _bad_time(doc: dict) -> dict:
    doc["activity"][f"provkb:run/{RUN1}"]["prov:startTime"] = "yesterday"
    return doc


def _bad_json_literal(doc: dict) -> dict:
    doc["entity"][TRAIN]["provkb:shape"] = {"$": "[600, 28", "type": "provkb:json"}
    return doc


@pytest.mark.parametrize(
    ("name", "corrupt", "message"),
    [
        ("truncated.json", lambda text: text[: len(text) // 2], "not a valid provjson"),
        ("garbage.json", lambda text: "\x00\x01 not json {", "not a valid provjson"),
        ("empty.json", lambda text: "  \n", "empty"),
        ("unknown.json", lambda t: json.dumps(_unknown_relation(json.loads(t))), "wasFooedBy"),
        ("time.json", lambda t: json.dumps(_bad_time(json.loads(t))), "xsd:dateTime"),
        ("literal.json", lambda t: json.dumps(_bad_json_literal(json.loads(t))), "provkb:json"),
        ("notturtle.ttl", lambda text: "this is { not turtle ;;", "not a valid turtle"),
        ("json.ttl", lambda text: text, "not a valid turtle"),
        ("unknown.bin", lambda text: text, "suffix"),
    ],
)
def test_bad_input_raises_and_writes_nothing(
    sample: Store, tmp_path: Path, name: str, corrupt, message: str
) -> None:
    text = export_text(sample, "provjson", run_id=RUN1)
    sample.clear()
    write_sample(sample, second_run=False)
    counts = sample.counts()
    path = tmp_path / name
    path.write_text(corrupt(text), encoding="utf-8")
    with pytest.raises(ProvImportError, match=message):
        import_file(sample, path)
    assert sample.counts() == counts


def test_refuses_relabelling_and_missing_files(sample: Store, tmp_path: Path) -> None:
    counts = sample.counts()
    doc = ProvDocument()
    doc.add_namespace("provkb", "https://provkb.org/ns#")
    doc.entity(TRAIN, {"prov:type": doc.valid_qualified_name("prov:Plan")})
    with pytest.raises(ProvImportError, match="never relabels"):
        import_document(sample, doc)
    with pytest.raises(ProvImportError, match="cannot read"):
        import_file(sample, tmp_path / "missing.json")
    with pytest.raises(ProvImportError, match="unknown import format"):
        import_file(sample, tmp_path / "x.json", fmt="yaml")
    assert sample.counts() == counts


# -- (6) selections -------------------------------------------------------------------
def test_run_export_holds_only_that_run_and_shared_nodes(sample: Store) -> None:
    doc = read_document(export_text(sample, "provjson", run_id=RUN1).encode(), "provjson")
    ids = element_ids(doc)
    assert ids - SHARED == {i for i in element_ids(build_document(sample)) if RUN1 in i}
    assert ids >= SHARED
    assert BOB not in ids and not any(RUN2 in i for i in ids)
    for relation in (r for r in doc.get_records() if r.is_relation()):
        ends = {str(v) for _, v in relation.formal_attributes[:2] if v is not None}
        assert ends <= ids, relation
    assert build_document(sample, run_id=f"provkb:run/{RUN1}") == build_document(
        sample, run_id=RUN1
    )


def test_experiment_export_holds_every_run(sample: Store) -> None:
    ids = element_ids(build_document(sample, experiment="mnist"))
    assert any(RUN1 in i for i in ids) and any(RUN2 in i for i in ids) and BOB in ids
    assert ids == element_ids(build_document(sample))


def test_export_errors(sample: Store) -> None:
    with pytest.raises(ExportError, match="unknown run"):
        build_document(sample, run_id="ffffffffffff")
    with pytest.raises(ExportError, match="unknown experiment"):
        build_document(sample, experiment="nope")
    with pytest.raises(ExportError, match="unknown export format"):
        export(sample, "yaml", io.StringIO())
    with pytest.raises(ExportError, match="unknown export format"):
        render(ProvDocument(), "yaml")
    with pytest.raises(ExportError, match="either one run or one experiment"):
        build_document(sample, run_id=RUN1, experiment="mnist")
    stray = GraphBatch()
    stray.add_node("nobody:x", ENTITY)  # a prefix no import ever bound
    sample.write(stray)
    with pytest.raises(ExportError, match="known prefix"):
        build_document(sample)


# -- foreign documents ----------------------------------------------------------------
FOREIGN = {
    "prefix": {"ex": "http://example.org/", "provkb": "https://provkb.org/ns#"},
    "entity": {
        "ex:e1": {
            "prov:type": [
                {"$": "ex:Thing", "type": "xsd:QName"},
                {"$": "provkb:Dataset", "type": "xsd:QName"},
            ],
            "ex:colour": "red",
            "provkb:id": "not-the-id",
            "prov:label": "first",
        }
    },
    "agent": {"ex:bob": {"prov:type": {"$": "prov:Person", "type": "xsd:QName"}}},
    "activity": {"ex:a1": {"prov:startTime": "2026-01-01T00:00:00+00:00"}},
    "used": {"_:u1": {"prov:activity": "ex:a1", "prov:entity": "ex:e2", "prov:role": "in"}},
    "wasAttributedTo": {"ex:attr1": {"prov:entity": "ex:e1", "prov:agent": "ex:bob"}},
    "bundle": {"ex:b1": {"entity": {"ex:e3": {"ex:n": 3}}}},
}


def test_foreign_document_import(clean_store: Store, tmp_path: Path) -> None:
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(FOREIGN), encoding="utf-8")
    report = import_file(clean_store, path)
    assert report.implicit == ["ex:e2"] and report.namespaces == {"ex": "http://example.org/"}
    assert (report.nodes, report.edges) == (5, 2)
    query = "MATCH (n:Entity) RETURN n.id AS id, labels(n) AS labels, properties(n) AS props"
    rows = sorted(clean_store.read(query).rows, key=lambda row: row["id"])
    e1 = rows[0]
    assert e1["id"] == "ex:e1" and sorted(e1["labels"]) == ["Dataset", "Entity"]
    assert e1["props"]["ex_colour"] == "red" and e1["props"]["provType"] == ["ex:Thing"]
    assert e1["props"]["provkb_id"] == "not-the-id" and e1["props"]["label"] == "first"
    # the export is the document itself: its bundle restored, no declaration added for
    # ex:e2 (the node made for the usage's end keeps its records exactly: none)
    assert build_document(clean_store) == ProvDocument.deserialize(content=json.dumps(FOREIGN))


def test_foreign_names_stay_canonical_and_relations_fold(clean_store: Store) -> None:
    import_document(clean_store, ProvDocument.deserialize(content=json.dumps(FOREIGN)))
    other = ProvDocument()
    other.add_namespace("ex", "http://other.org/")  # `ex` is taken: renamed
    same = other.add_namespace("mine", "http://example.org/")  # known IRI: stored `ex`
    other.entity("ex:z")
    other.activity(same["a1"])
    other.used(same["a1"], "ex:z", other_attributes={"prov:role": "first"})
    other.used(same["a1"], "ex:z", other_attributes={"prov:role": "second"})
    report = import_document(clean_store, other)
    assert report.namespaces == {"ex2": "http://other.org/"} and report.merged_relations == 1
    rows = clean_store.read(
        "MATCH (a:Activity)-[:USED]->(b:Entity) RETURN a.id AS a, b.id AS b"
    ).rows
    assert {(r["a"], r["b"]) for r in rows} == {("ex:a1", "ex:e2"), ("ex:a1", "ex2:z")}
    assert "ex2" in {str(ns.prefix) for ns in build_document(clean_store).namespaces}


def test_kept_records_are_used_only_while_valid() -> None:
    doc = ProvDocument()
    doc.set_default_namespace("https://example.org/")
    record = doc.entity("e", {"prov:label": prov.model.Literal("report", langtag="en")})
    props: dict = {"label": "report"}
    prov_exact.attach(props, [(None, record)])
    assert prov_exact.exact_records(props) == doc  # the language tag kept
    assert prov_exact.exact_records({**props, "label": "changed"}) is None  # stale
    cut = {**props, Prop.PROV_RECORDS: props[Prop.PROV_RECORDS][:20]}
    cut[Prop.PROV_RECORDS_OF] = prov_exact.digest(cut)
    assert prov_exact.exact_records(cut) is None  # unreadable (cut): the natural form
