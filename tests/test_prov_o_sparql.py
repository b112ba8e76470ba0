"""SPARQL over a captured run's Turtle export (PROV-O): the queries PROV-O users write
return what the graph holds (unqualified shortcuts, xsd:dateTime times, prov:hadRole)."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import keras
import numpy as np
import pytest
import rdflib
from prov.constants import (
    PROV_ATTR_ACTIVITY,
    PROV_ATTR_DELEGATE,
    PROV_ATTR_RESPONSIBLE,
    PROV_DELEGATION,
)
from prov.identifier import QualifiedName
from prov.model import ProvRecord
from rdflib.namespace import XSD

from provkb import ontology as o
from provkb.capture.callback import ProvenanceCallback
from provkb.errors import ConfigError
from provkb.kb import formats
from provkb.kb.export import export
from provkb.kb.prov_names import DATA_NAMESPACE_VARIABLE, data_namespace
from provkb.kb.provimport import import_document, read_document
from provkb.kb.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]
PREFIXES = f"PREFIX prov: <{o.PROV_NS}>\nPREFIX provkb: <{o.PROVKB_NS}>\n"


@dataclass
class Captured:
    store: Store
    run_id: str
    graph: rdflib.Graph

    @property
    def run(self) -> rdflib.URIRef:
        return rdflib.URIRef(f"{o.PROVKB_DATA_NS}run/{self.run_id}")

    def sparql(self, query: str, **bindings: rdflib.term.Node) -> list[tuple]:
        return [tuple(row) for row in self.graph.query(PREFIXES + query, initBindings=bindings)]

    def cypher(self, query: str) -> list[dict]:
        return self.store.read(query, runId=self.run_id).rows


def _iri(node_id: str) -> rdflib.URIRef:
    prefix, _, local = node_id.partition(":")
    assert prefix == o.PROVKB_PREFIX, node_id
    return rdflib.URIRef(o.PROVKB_DATA_NS + local)


@pytest.fixture(scope="module")
def captured(store: Store) -> Captured:
    rng = np.random.default_rng(3)
    x, y = rng.random((96, 8), dtype="float32"), rng.integers(0, 3, 96)
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    cb = ProvenanceCallback(
        experiment=f"sparql-{uuid.uuid4().hex[:8]}",
        person="ada",
        store=store,
        datasets={"train": "random-8"},
    )
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch else lr)
    model.fit(
        x, y, epochs=3, batch_size=32, validation_split=0.25, callbacks=[cb, halve], verbose=0
    )
    assert cb.writer.flush(30)
    out = io.StringIO()
    export(store, "turtle", out, run_id=cb.run_id)
    graph = rdflib.Graph().parse(data=out.getvalue(), format="turtle")
    return Captured(store, cb.run_id, graph)


RUN_MATCH = f"MATCH (r:{o.TRAINING_RUN.label}) WHERE r.{o.Prop.RUN_ID} = $runId "  # the run


def test_revisions(captured: Captured) -> None:
    rows = captured.sparql("SELECT ?new ?old WHERE { ?new prov:wasRevisionOf ?old }")
    stored = captured.cypher(
        f"MATCH (n {{{o.Prop.RUN_ID}: $runId}})-[:{o.WAS_REVISION_OF.rel_type}]->(m) "
        f"RETURN n.{o.Prop.ID} AS new, m.{o.Prop.ID} AS old"
    )
    assert stored  # the scheduler halved the learning rate: revised hyperparameters
    assert sorted(rows) == sorted((_iri(r["new"]), _iri(r["old"])) for r in stored)
    # a revision is a derivation: lineage queries on prov:wasDerivedFrom see it too
    for new, old in rows:
        assert (new, rdflib.URIRef(o.PROV_NS + "wasDerivedFrom"), old) in captured.graph


def test_datasets_used_by_the_run_with_their_roles(captured: Captured) -> None:
    used = captured.sparql(
        "SELECT ?d WHERE { ?run prov:used ?d . ?d a provkb:Dataset }", run=captured.run
    )
    roles = captured.sparql(
        "SELECT ?d ?role WHERE { ?run prov:qualifiedUsage ?u . "
        "?u prov:entity ?d ; prov:hadRole ?role }",
        run=captured.run,
    )
    stored = captured.cypher(
        f"{RUN_MATCH}MATCH (r)-[u:{o.USED.rel_type}]->(d:{o.DATASET.label}) "
        f"RETURN d.{o.Prop.ID} AS d, u.{o.Prop.ROLE} AS role"
    )
    assert {r["role"] for r in stored} == {"train", "validation"}
    assert sorted(used) == sorted((_iri(r["d"]),) for r in stored)
    assert sorted((d, str(role)) for d, role in roles) == sorted(
        (_iri(r["d"]), r["role"]) for r in stored
    )


def test_generation_times_are_xsd_datetimes(captured: Captured) -> None:
    rows = captured.sparql(
        "SELECT ?e ?t ?g WHERE { ?e prov:generatedAtTime ?t ; "
        "prov:qualifiedGeneration [ prov:atTime ?g ] }"
    )
    stored = captured.cypher(
        f"MATCH (e {{{o.Prop.RUN_ID}: $runId}})-[:{o.WAS_GENERATED_BY.rel_type}]->() "
        f"WHERE e.{o.Prop.GENERATED} IS NOT NULL RETURN e.{o.Prop.ID} AS e"
    )
    assert stored and sorted({e for e, _, _ in rows}) == sorted(_iri(r["e"]) for r in stored)
    for _, t, g in rows:
        assert t.datatype == XSD.dateTime and t == g
    started = captured.sparql("SELECT ?t WHERE { ?run prov:startedAtTime ?t }", run=captured.run)
    assert [t.datatype for (t,) in started] == [XSD.dateTime]


def test_the_person_associated_with_the_run(captured: Captured) -> None:
    rows = captured.sparql(
        "SELECT ?p WHERE { ?run prov:wasAssociatedWith ?p . ?p a prov:Person }",
        run=captured.run,
    )
    stored = captured.cypher(
        f"{RUN_MATCH}MATCH (r)-[:{o.WAS_ASSOCIATED_WITH.rel_type}]->(p:{o.PERSON.label}) "
        f"RETURN p.{o.Prop.ID} AS p"
    )
    assert len(stored) == 1 and rows == [(_iri(stored[0]["p"]),)]


def test_lineage_paths(captured: Captured) -> None:
    derived = captured.sparql("SELECT ?a ?b WHERE { ?a prov:wasDerivedFrom+ ?b }")
    stored = captured.cypher(
        f"MATCH (a {{{o.Prop.RUN_ID}: $runId}})"
        f"-[:{o.WAS_DERIVED_FROM.rel_type}|{o.WAS_REVISION_OF.rel_type}*1..]->(b) "
        f"RETURN DISTINCT a.{o.Prop.ID} AS a, b.{o.Prop.ID} AS b"
    )
    assert stored
    assert sorted(set(derived)) == sorted({(_iri(r["a"]), _iri(r["b"])) for r in stored})
    # what the run's activities used, and which activity generated it
    chain = captured.sparql("SELECT DISTINCT ?a ?g WHERE { ?a prov:used/prov:wasGeneratedBy ?g }")
    stored = captured.cypher(
        f"MATCH (a:{o.ACTIVITY.label})-[:{o.USED.rel_type}]->(:{o.ENTITY.label})"
        f"-[:{o.WAS_GENERATED_BY.rel_type}]->"
        f"(g:{o.ACTIVITY.label}) WHERE a.{o.Prop.RUN_ID} = $runId OR g.{o.Prop.RUN_ID} = $runId "
        f"RETURN DISTINCT a.{o.Prop.ID} AS a, g.{o.Prop.ID} AS g"
    )
    assert sorted(chain) == sorted((_iri(r["a"]), _iri(r["g"])) for r in stored)


def _vocabulary_subjects(graph: rdflib.Graph) -> set[rdflib.term.Node]:
    return {s for s in graph.subjects() if str(s).startswith(o.PROVKB_NS)}


def test_instance_iris_are_in_the_data_namespace(captured: Captured) -> None:
    subjects = {s for s in captured.graph.subjects() if isinstance(s, rdflib.URIRef)}
    assert captured.run in subjects
    assert all(str(s).startswith(o.PROVKB_DATA_NS) for s in subjects), sorted(subjects)[:3]
    assert not _vocabulary_subjects(captured.graph)
    # the vocabulary stays in provkb: (types and attributes)
    runs = captured.sparql("SELECT ?r WHERE { ?r a provkb:TrainingRun }")
    assert runs == [(captured.run,)]


@pytest.mark.parametrize("base", [None, "https://example.org/lab/kb#"])
def test_turtle_export_re_imports_as_a_no_op(
    captured: Captured, base: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if base is not None:
        monkeypatch.setenv(DATA_NAMESPACE_VARIABLE, base)
    out = io.StringIO()
    export(captured.store, "turtle", out, run_id=captured.run_id)
    graph = rdflib.Graph().parse(data=out.getvalue(), format="turtle")
    assert (rdflib.URIRef(f"{base or o.PROVKB_DATA_NS}run/{captured.run_id}"), None, None) in graph
    assert not _vocabulary_subjects(graph)
    doc = read_document(out.getvalue().encode("utf-8"), "turtle")
    report = import_document(captured.store, doc, "turtle")
    assert (report.nodes, report.edges, report.conflicts) == (0, 0, [])


def test_a_data_namespace_must_be_an_iri_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("not an iri", "https://example.org/no-separator", o.PROVKB_NS):
        monkeypatch.setenv(DATA_NAMESPACE_VARIABLE, bad)
        with pytest.raises(ConfigError, match=DATA_NAMESPACE_VARIABLE):
            data_namespace()


def _delegations(captured: Captured) -> list[tuple[str, str]]:
    rows = captured.cypher(
        f"{RUN_MATCH}MATCH (r)-[a:{o.WAS_ASSOCIATED_WITH.rel_type}]->(g) "
        f"WHERE a.{o.Prop.ON_BEHALF_OF} IS NOT NULL "
        f"RETURN g.{o.Prop.ID} AS agent, a.{o.Prop.ON_BEHALF_OF} AS person"
    )
    return sorted((r["agent"], r["person"]) for r in rows)


def test_delegation_per_activity_is_a_prov_delegation(captured: Captured) -> None:
    stored = _delegations(captured)
    assert stored  # keras and the machine act for the run's person in this run
    rows = captured.sparql(
        "SELECT ?a ?p WHERE { ?a prov:actedOnBehalfOf ?p ; "
        "prov:qualifiedDelegation [ prov:agent ?p ; prov:hadActivity ?run ] }",
        run=captured.run,
    )
    assert sorted(rows) == [(_iri(a), _iri(p)) for a, p in stored]
    onbehalf = rdflib.URIRef(o.PROVKB_NS + o.Prop.ON_BEHALF_OF)
    assert not list(captured.graph.triples((None, onbehalf, None)))


def _one(record: ProvRecord, attribute: QualifiedName) -> str:
    (value,) = record.get_attribute(attribute)
    return str(value)


@pytest.mark.parametrize("fmt", ["provjson", "provn", "provxml", "turtle"])
def test_delegations_import_back_as_the_associations_on_behalf_of(
    captured: Captured, fmt: str
) -> None:
    out = io.StringIO()
    export(captured.store, fmt, out, run_id=captured.run_id)
    doc = formats.FORMATS[fmt].reader(out.getvalue())
    run = f"{o.PROVKB_PREFIX}:run/{captured.run_id}"
    found = sorted(
        (_one(r, PROV_ATTR_DELEGATE), _one(r, PROV_ATTR_RESPONSIBLE))
        for r in doc.get_records()
        if r.get_type() == PROV_DELEGATION and _one(r, PROV_ATTR_ACTIVITY) == run
    )
    assert found == _delegations(captured)
    # the captured shape again: nothing to write, no agent-to-agent delegation edges
    report = import_document(captured.store, doc, fmt)
    assert (report.nodes, report.edges, report.conflicts) == (0, 0, [])
    edges = captured.cypher(
        f"{RUN_MATCH}MATCH (r)-[:{o.WAS_ASSOCIATED_WITH.rel_type}]->()"
        f"-[d:{o.ACTED_ON_BEHALF_OF.rel_type}]->() RETURN count(d) AS n"
    )
    assert edges == [{"n": 0}]
