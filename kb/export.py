"""Export the knowledge base (or one run, or one experiment) as a PROV document.

The graph is turned into a `prov.model.ProvDocument` and written in a format of the
registry `kb.formats`: PROV-JSON, PROV-N, PROV-XML and PROV-JSONLD by prov's
serializers, Turtle, TriG and JSON-LD (PROV-O) by its RDF encoder and rdflib
(`kb.prov_rdf`), and DOT/SVG/PNG by `prov.dot.prov_to_dot` rendered with the
Graphviz `dot` binary (`kb.prov_diagram`, long texts cut).

Mapping (reversed by `kb.provimport`): a node becomes an entity/activity/agent named
by its id; its extra labels become `prov:type` values (`prov:Person`,
`provkb:Hyperparameter`, ...), `startedAtTime`/`endedAtTime` of activities become
the activity times and every other property an attribute `provkb:<name>` (lists as
JSON text typed `provkb:json`; `<name>` escaped by `local_name` so that any property
name, e.g. `metric.a b`, is a valid QName in every format). A relationship becomes the
matching PROV relation;
its `time` is the PROV time, `plan`/`activity`/`starter`/`ender` the secondary
references and every other property a `provkb:` attribute. An association's
`onBehalfOf` (delegation per activity) is the record `actedOnBehalfOf(agent, person,
activity)` beside it.
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from prov.constants import PROV_N_MAP
from prov.identifier import Namespace, QualifiedName
from prov.model import Literal, ProvDocument, ProvException, parse_xsd_datetime

from ..errors import ExportError
from ..ontology import (
    ACTIVITY,
    AGENT,
    KIND_BY_LABEL,
    KINDS,
    PROV_NS,
    PROVKB_NS,
    PROVKB_PREFIX,
    RELATIONS,
    SUBTYPE_BY_LABEL,
    WAS_ASSOCIATED_WITH,
    WAS_GENERATED_BY,
    Kind,
    Prop,
    Relation,
)
from . import cypher, formats, prov_exact
from .formats import FORMATS, Format
from .prov_diagram import DIAGRAM_VALUE_CHARS, diagram_document
from .prov_names import local_name, property_name
from .prov_rdf import prov_o_graph, qualify_mixed_relations
from .store import Store

PROVKB = Namespace(PROVKB_PREFIX, PROVKB_NS)
PROV = Namespace("prov", PROV_NS)
JSON_DATATYPE = PROVKB["json"]  # datatype of list properties, written as JSON text
PROV_TYPE_PROP = Prop.PROV_TYPE  # prov:type values that are no ontology subtype
RELATION_ID_PROP = Prop.ID  # identifier of an identified PROV relation
DEFAULT_PREFIXES = frozenset({"prov", "xsd", "xsi"})
# Properties that are PROV attributes themselves: a usage's role is `prov:role` (PROV-O
# `prov:hadRole`), read back by kb.provimport as the same property.
PROV_ATTRIBUTES = {Prop.ROLE: PROV["role"]}


# -- names ----------------------------------------------------------------------------
def reverse_property_prefixes(namespaces: Mapping[str, str]) -> dict[str, Namespace]:
    """Prefixes whose `<prefix>_<local>` properties are attributes `<prefix>:<local>`.

    `kb.provimport` stores attributes outside `provkb:` (and the reserved `provkb:`
    names) that way; every bound prefix plus `prov` and `provkb` is reversed.
    """
    out = {p: Namespace(p, u) for p, u in namespaces.items() if p}
    out["prov"] = PROV
    out[PROVKB_PREFIX] = PROVKB
    return out


class _Names:
    """Turns stored names (`prefix:local`) into qualified names of the document."""

    def __init__(self, doc: ProvDocument, namespaces: Mapping[str, str]) -> None:
        self.doc = doc
        self.namespaces = {p: Namespace(p, u) for p, u in namespaces.items() if p}
        self.namespaces[PROVKB_PREFIX] = PROVKB
        self.namespaces.setdefault("prov", PROV)
        self.reversed = reverse_property_prefixes(namespaces)
        self.used: set[str] = set(DEFAULT_PREFIXES)

    def _use(self, namespace: Namespace) -> None:
        if namespace.prefix not in self.used:
            self.doc.add_namespace(namespace)
            self.used.add(namespace.prefix)

    def qname(self, text: str) -> QualifiedName:
        """The qualified name of a node id; ExportError if its prefix is unbound."""
        prefix, _, local = str(text).partition(":")
        namespace = self.namespaces.get(prefix)
        if namespace is None or not local:
            raise ExportError(
                f"cannot export {text!r}: it is not a qualified name with a known prefix "
                f"(known: {', '.join(sorted(self.namespaces))})"
            )
        self._use(namespace)
        return namespace[local]

    def maybe_qname(self, text: str) -> QualifiedName | str:
        """A qualified name if `text` looks like one with a known prefix, else `text`."""
        prefix, sep, local = text.partition(":")
        if sep and local and prefix in self.namespaces and " " not in text:
            return self.qname(text)
        return text

    def attribute(self, prop: str) -> QualifiedName:
        """The attribute name of a property: `provkb:<prop>` or a reversed `p:local`."""
        if prop in PROV_ATTRIBUTES:
            return PROV_ATTRIBUTES[prop]
        prefix, sep, local = prop.partition("_")
        namespace = self.reversed.get(prefix) if sep and local else None
        if namespace is None:
            return PROVKB[local_name(prop)]
        self._use(namespace)
        return namespace[local_name(local)]


# -- values ---------------------------------------------------------------------------
def attribute_value(value: Any) -> Any:
    """A property value as a PROV attribute value (lists as `provkb:json` literals)."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return Literal(json.dumps(list(value)), JSON_DATATYPE)
    return str(value)


def prov_time(value: Any) -> datetime.datetime | None:
    """A stored ISO 8601 time as a datetime (None if it is not one)."""
    if isinstance(value, datetime.datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return parse_xsd_datetime(value)
    except (ValueError, TypeError):
        return None


def as_list(value: Any) -> list[Any]:
    """A property value as a list of values (None -> [])."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# -- nodes ----------------------------------------------------------------------------
def _node_kind(labels: Iterable[str]) -> Kind | None:
    kinds = [KIND_BY_LABEL[label] for label in labels if label in KIND_BY_LABEL]
    return kinds[0] if len(kinds) == 1 else None


def _types(names: _Names, labels: Iterable[str], props: Mapping[str, Any]) -> list[Any]:
    types: list[Any] = []
    for label in sorted(labels):
        subtype = SUBTYPE_BY_LABEL.get(label)
        if subtype is not None:
            types.append(names.qname(subtype.provjson_type))
    for value in as_list(props.get(PROV_TYPE_PROP)):
        types.append(names.maybe_qname(value) if isinstance(value, str) else value)
    return types


def _other_attributes(
    names: _Names, props: Mapping[str, Any], skip: Iterable[str]
) -> list[tuple[QualifiedName, Any]]:
    skipped = {Prop.ID, PROV_TYPE_PROP, Prop.LABEL, *prov_exact.EXACT_PROPS, *skip}
    attributes = [
        (names.attribute(key), attribute_value(value))
        for key, value in sorted(props.items())
        if key not in skipped and value is not None
    ]
    attributes += [(PROV["label"], value) for value in as_list(props.get(Prop.LABEL))]
    return attributes


def add_node(doc: ProvDocument, names: _Names, node: Mapping[str, Any]) -> None:
    """Add one node row {id, labels, props} as an entity, activity or agent."""
    labels, props = node["labels"], node["props"]
    kind = _node_kind(labels)
    if kind is None:
        raise ExportError(f"node {node['id']!r} has no single PROV kind among {labels}")
    identifier = names.qname(node["id"])
    skip: set[str] = set()
    times: dict[str, datetime.datetime | None] = {}
    if kind is ACTIVITY:
        for key in (Prop.STARTED, Prop.ENDED):
            times[key] = prov_time(props.get(key))
            if times[key] is not None:
                skip.add(key)
    attributes = [(PROV["type"], t) for t in _types(names, labels, props)]
    attributes += _other_attributes(names, props, skip)
    if kind is ACTIVITY:
        doc.activity(identifier, times[Prop.STARTED], times[Prop.ENDED], attributes)
    elif kind is AGENT:
        doc.agent(identifier, attributes)
    else:
        doc.entity(identifier, attributes)


# -- relations ------------------------------------------------------------------------
_RECORD_TYPE_BY_KEYWORD = {keyword: qn for qn, keyword in PROV_N_MAP.items()}


def record_type(relation: Relation) -> QualifiedName:
    """The prov record type (e.g. prov:Usage) of an ontology relation."""
    return _RECORD_TYPE_BY_KEYWORD[relation.provjson_key]


def _formal_attributes(
    names: _Names, relation: Relation, edge: Mapping[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    props = edge["props"]
    formal: dict[str, Any] = {
        relation.source_key: names.qname(edge["src"]),
        relation.target_key: names.qname(edge["dst"]),
    }
    used: set[str] = set()
    if relation.time_key and prov_time(props.get(Prop.TIME)) is not None:
        formal[relation.time_key] = prov_time(props[Prop.TIME])
        used.add(Prop.TIME)
    for key, prop in relation.extra_keys.items():
        value = props.get(prop)
        # a reference that is no node id (e.g. written by an older version) stays a
        # plain attribute rather than failing the whole export
        if isinstance(value, str) and isinstance(names.maybe_qname(value), QualifiedName):
            formal[key] = names.qname(value)
            used.add(prop)
    return formal, used


def delegation_of(
    names: _Names, relation: Relation, props: Mapping[str, Any]
) -> QualifiedName | None:
    """Whom an association's agent acted for in its activity (`onBehalfOf`, see
    docs/graph-model.md "Delegation (per activity)"), if that is a node id."""
    person = props.get(Prop.ON_BEHALF_OF)
    if relation is not WAS_ASSOCIATED_WITH or not isinstance(person, str):
        return None
    found = names.maybe_qname(person)
    return found if isinstance(found, QualifiedName) else None


def add_edge(
    doc: ProvDocument,
    names: _Names,
    relation: Relation,
    edge: Mapping,
    generated: Mapping[str, Any] | None = None,
) -> None:
    """Add one relationship row {src, dst, props} as its PROV relation.

    A generation without a time of its own gets its entity's `generatedAtTime` (from
    `generated`, {entity id: time}): PROV-O's `prov:atTime` / `prov:generatedAtTime`."""
    props = edge["props"]
    formal, used = _formal_attributes(names, relation, edge)
    if relation is WAS_GENERATED_BY and relation.time_key not in formal and generated:
        time = prov_time(generated.get(edge["src"]))
        if time is not None:
            formal[relation.time_key] = time
    identifier = props.get(RELATION_ID_PROP)
    identifier = names.qname(identifier) if isinstance(identifier, str) else None
    responsible = delegation_of(names, relation, props)
    if responsible is not None:
        used.add(Prop.ON_BEHALF_OF)
    attributes = [(PROV["type"], t) for t in _types(names, (), props)]
    attributes += _other_attributes(names, props, used)
    if responsible is not None:  # after the association: actedOnBehalfOf(agent, person, run)
        doc.new_record(record_type(relation), identifier, formal, attributes)
        doc.delegation(formal[relation.target_key], responsible, formal[relation.source_key])
        return
    if relation.provjson_type == "prov:Revision":
        doc.revision(
            formal[relation.source_key],
            formal[relation.target_key],
            formal.get("prov:activity"),
            identifier=identifier,
            other_attributes=attributes,
        )
        return
    doc.new_record(record_type(relation), identifier, formal, attributes)


# -- selection ------------------------------------------------------------------------
def _run_ids(store: Store, run_id: str | None, experiment: str | None) -> list[str] | None:
    if run_id is not None and experiment is not None:
        raise ExportError("export either one run or one experiment, not both")
    if run_id is not None:
        run_id = run_id.removeprefix(f"{PROVKB_PREFIX}:run/")
        if not store.read(cypher.READ_RUN, runId=run_id).rows:
            raise ExportError(f"unknown run {run_id!r}: no training run has that run id")
        return [run_id]
    if experiment is not None:
        experiment = experiment.removeprefix(f"{PROVKB_PREFIX}:experiment/")
        rows = store.read(cypher.READ_EXPERIMENT_RUNS, experiment=experiment).rows
        if not rows:
            raise ExportError(f"unknown experiment {experiment!r}: it has no training runs")
        return [row["runId"] for row in rows]
    return None


def _touching(store: Store, ids: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for relation in RELATIONS:
        for outgoing in (True, False):
            text = cypher.read_touching_edges(relation, outgoing)
            rows += store.read(text, ids=sorted(ids)).rows
    return rows


def select_ids(store: Store, run_ids: list[str]) -> set[str]:
    """The node ids of some runs plus the shared nodes (no `runId`) they relate to.

    Shared nodes are those touched by a relation of a run node (agents, datasets,
    script, environment, experiment) and, transitively, the shared nodes those
    point to (the experiment's project, the person software agents act for). Nodes
    of other runs are left out, and so are the relations to them.
    """
    ids: set[str] = set()
    for kind in KINDS:
        rows = store.read(cypher.read_run_node_ids(kind), runIds=run_ids).rows
        ids.update(row["id"] for row in rows)
    frontier: set[str] = set()
    for row in _touching(store, ids):
        for end, run in ((row["src"], row["srcRun"]), (row["dst"], row["dstRun"])):
            if run is None and end not in ids:
                frontier.add(end)
    while frontier:
        ids |= frontier
        rows = _touching(store, frontier)
        frontier = {r["dst"] for r in rows if r["src"] in frontier and r["dstRun"] is None} - ids
    return ids


# -- documents ------------------------------------------------------------------------
def read_namespaces(store: Store) -> dict[str, str]:
    """Stored prefix -> IRI bindings (from imported documents)."""
    return {row["prefix"]: row["uri"] for row in store.read(cypher.READ_NAMESPACES).rows}


def build_document(
    store: Store, run_id: str | None = None, experiment: str | None = None
) -> ProvDocument:
    """The whole knowledge base, one run, or every run of an experiment, as PROV."""
    run_ids = _run_ids(store, run_id, experiment)
    ids = sorted(select_ids(store, run_ids)) if run_ids is not None else None
    doc = ProvDocument()
    doc.add_namespace(PROVKB)
    names = _Names(doc, read_namespaces(store))
    try:
        selected = ids is not None
        chosen = set(ids or ())
        exact = prov_exact.Merger(doc)
        generated: dict[str, Any] = {}
        for kind in KINDS:
            for node in store.read(cypher.read_nodes(kind, selected), ids=ids).rows:
                if Prop.GENERATED in node["props"]:
                    generated[node["id"]] = node["props"][Prop.GENERATED]
                kept = prov_exact.exact_records(node["props"])
                if kept is not None:
                    exact.add(kept)
                else:
                    add_node(doc, names, node)
        for relation in RELATIONS:
            for edge in store.read(cypher.read_edges(relation, selected), ids=ids).rows:
                if selected and edge["dst"] not in chosen:
                    continue
                kept = prov_exact.exact_records(edge["props"])
                if kept is not None:
                    exact.add(kept)
                else:
                    add_edge(doc, names, relation, edge, generated)
    except ProvException as exc:
        raise ExportError(f"cannot build the PROV document: {exc}") from exc
    return doc


def render(doc: ProvDocument, fmt: str) -> str | bytes:
    """A document in an export format (`kb.formats`), as text (or bytes for png)."""
    spec = formats.export_format(fmt)
    try:
        return spec.writer(doc)
    except ProvException as exc:
        raise ExportError(f"cannot write {spec.name}: {exc}") from exc


def _write(content: str | bytes, target: str | Path | IO) -> None:
    if isinstance(target, str | Path):
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(target, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as out:
            out.write(content)
        return
    text_stream = isinstance(target, io.TextIOBase) or hasattr(target, "encoding")
    if isinstance(content, bytes) and text_stream:
        raise ExportError("binary formats (png) need a path or a binary stream")
    if isinstance(content, str) and not text_stream:
        content = content.encode("utf-8")
    target.write(content)


def export(
    store: Store,
    fmt: str,
    path_or_stream: str | Path | IO,
    run_id: str | None = None,
    experiment: str | None = None,
) -> int:
    """Write the knowledge base (or a run or experiment) in `fmt`; returns the records."""
    formats.export_format(fmt)
    doc = build_document(store, run_id=run_id, experiment=experiment)
    _write(render(doc, fmt), path_or_stream)
    return len(doc.get_records())


__all__ = [
    "DIAGRAM_VALUE_CHARS",
    "FORMATS",
    "JSON_DATATYPE",
    "PROV_TYPE_PROP",
    "Format",
    "build_document",
    "diagram_document",
    "export",
    "local_name",
    "property_name",
    "prov_o_graph",
    "qualify_mixed_relations",
    "render",
    "select_ids",
]
