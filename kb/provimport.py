"""Import PROV documents (any format the `prov` library reads) into the knowledge base.

A document is flattened (bundles lifted), unified (records sharing an identifier
merged) and converted to ONE `GraphBatch` written in one transaction: all or
nothing. The mapping reverses `kb.export`: elements become nodes with their core
label plus the labels of `prov:type` values that are ontology subtypes of that kind;
other `prov:type` values go to the `provType` list property, `prov:label` to
`label`, `provkb:` attributes to properties by local name, other attributes to
`<prefix>_<local>` (reserved names too: `provkb:id` -> `provkb_id`), `provkb:json`
literals are decoded. Relations become relationships (time as `time`, plan as
`plan`, identifier as `id`); elements a relation refers to but the document never
declares are created from the relation's role. Names are canonical by IRI: a
namespace already bound in the knowledge base keeps its stored prefix.

An import never rewrites what is stored unless asked to (`ImportMode`, see
`build_batch` and docs/graph-model.md, "Import"): records already stored are
compared with the file's, any change is a conflict, and by default the whole import
is refused with the list of conflicts. A new record may not claim a run the
knowledge base already has (`runId`). An import can be recorded as PROV itself: an
`Import` activity with its person, time, file and sha256 (always for a replace, with
the previous values).
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
import math
import os
import socket
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prov.constants import PROV_N_MAP
from prov.identifier import Identifier, QualifiedName
from prov.model import (
    Literal,
    ProvDocument,
    ProvException,
    ProvFutureRejectionWarning,
    ProvRecord,
    ProvWarning,
)

from ..errors import ImportConflict, ProvImportError, ProvKBError, QueryError
from ..ontology import (
    ACTED_ON_BEHALF_OF,
    ACTIVITY,
    AGENT,
    ENTITY,
    IMPORT,
    IMPORTED_FILE,
    IMPORTED_PREFIX,
    KIND_BY_LABEL,
    KINDS,
    PERSON,
    PLAN,
    PROV_NS,
    PROVKB_DATA_PREFIX,
    PROVKB_NS,
    PROVKB_PREFIX,
    RELATION_BY_TYPE,
    RELATIONS,
    SUBTYPE_BY_LABEL,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_GENERATED_BY,
    WAS_INVALIDATED_BY,
    ImportMode,
    Kind,
    Prop,
    Relation,
    Subtype,
    imported_prop,
    is_capture_prop,
)
from . import cypher, formats, prov_exact
from .export import (
    DEFAULT_PREFIXES,
    JSON_DATATYPE,
    PROV_ATTRIBUTES,
    PROV_TYPE_PROP,
    RELATION_ID_PROP,
    add_edge,
    add_node,
    as_list,
    property_name,
    prov_time,
)
from .export import _Names as export_Names
from .identity import now_iso
from .prov_names import data_namespaces
from .records import Edge, GraphBatch, Node, encode_props
from .store import Store
from .study import default_person, person_node_id

_KIND_BY_IRI: dict[str, Kind] = {k.iri: k for k in KINDS}
_DELEGATION_ACTIVITY = ACTED_ON_BEHALF_OF.extra_keys["prov:activity"]  # its property
_NOT_BOUND = DEFAULT_PREFIXES | {PROVKB_DATA_PREFIX}  # prefixes an import never binds
_PROV_ATTRIBUTE_PROPS = {qn.uri: prop for prop, qn in PROV_ATTRIBUTES.items()}
_SUBTYPE_BY_IRI: dict[str, Subtype] = {s.iri: s for s in SUBTYPE_BY_LABEL.values()}
# Kinds of the secondary references of relations (Relation.extra_keys).
_EXTRA_KINDS: dict[str, tuple[Kind, tuple[Subtype, ...]]] = {
    "prov:plan": (ENTITY, (PLAN,)),
    "prov:activity": (ACTIVITY, ()),
    "prov:starter": (ACTIVITY, ()),
    "prov:ender": (ACTIVITY, ()),
}
_RESERVED_NODE = frozenset({Prop.ID, Prop.LABEL, PROV_TYPE_PROP})
_ACTIVITY_TIMES = {PROV_NS + "startTime": Prop.STARTED, PROV_NS + "endTime": Prop.ENDED}


@dataclass
class ImportReport:
    """What an import wrote, found already stored, skipped or replaced."""

    format: str
    nodes: int = 0  # nodes written (the import's own provenance not counted)
    edges: int = 0
    implicit: list[str] = field(default_factory=list)  # ids created from a relation role
    merged_relations: int = 0  # relations folded into one (same type and ends)
    namespaces: dict[str, str] = field(default_factory=dict)  # bindings written
    warnings: list[str] = field(default_factory=list)
    path: str | None = None
    on_conflict: str = ImportMode.REFUSE
    unchanged: int = 0  # records already stored exactly as the document has them
    conflicts: list[Conflict] = field(default_factory=list)  # skipped or replaced
    demoted: list[str] = field(default_factory=list)  # new records claiming a stored run
    import_id: str | None = None  # the Import activity recording this import
    person: str | None = None
    sha256: str | None = None

    @property
    def records(self) -> int:
        """Nodes plus relationships written."""
        return self.nodes + self.edges

    def lines(self, limit: int = 20) -> list[str]:
        """The report as text lines (the first `limit` conflicts listed)."""
        where = Path(self.path).name if self.path else "the document"
        if self.records:
            out = [
                f"imported {self.records} records ({self.nodes} nodes, {self.edges} "
                f"relations) from {where} ({self.format})"
            ]
        else:
            out = [f"nothing to import from {where}: the knowledge base already has it"]
        if self.unchanged:
            out.append(f"  {self.unchanged} records were already stored as the file has them")
        if self.conflicts:
            verb = "replaced" if self.on_conflict == ImportMode.REPLACE else "skipped"
            kept = "previous values kept" if verb == "replaced" else "stored values kept"
            out.append(f"  {verb} {len(self.conflicts)} conflicting values ({kept}):")
            out += [f"    {c.describe()}" for c in self.conflicts[:limit]]
            if len(self.conflicts) > limit:
                out.append(f"    ... and {len(self.conflicts) - limit} more")
        if self.demoted:
            out.append(
                f"  {len(self.demoted)} new records claim a stored run: their capture "
                f"properties are kept as {IMPORTED_PREFIX}<name>: "
                + ", ".join(self.demoted[:limit])
            )
        if self.implicit:
            out.append(f"  created from relation roles: {', '.join(self.implicit[:limit])}")
        if self.merged_relations:
            out.append(f"  {self.merged_relations} relations folded into one (same type, ends)")
        if self.namespaces:
            bound = ", ".join(f"{p} = {u}" for p, u in sorted(self.namespaces.items()))
            out.append(f"  namespaces bound: {bound}")
        if self.import_id:
            out.append(
                f"  recorded as {self.import_id} (by {self.person}, file sha256 "
                f"{self.sha256 or '-'})"
            )
        out += [f"  warning: {w}" for w in self.warnings]
        return out


# -- reading files --------------------------------------------------------------------
def guess_format(path: Path) -> str:
    """The import format of a file from its suffix (`kb.formats`)."""
    return formats.for_path(path, "import").name


def normalise_format(fmt: str) -> str:
    """An import format name (aliases `json`, `ttl`, `xml`, `json-ld` accepted)."""
    return formats.import_format(fmt).name


def read_document(content: bytes, fmt: str, source: str = "input") -> ProvDocument:
    """Parse PROV content with the `prov` library; ProvImportError on any problem.

    Input `prov` reads today but will reject (its future-rejection warnings, e.g. a
    time that is no xsd:dateTime) is refused too.
    """
    spec = formats.import_format(fmt)
    fmt = spec.name
    if not content.strip():
        raise ProvImportError(f"{source} is empty: there is no PROV document to import")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProvImportError(f"{source} is not UTF-8 text ({exc})") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProvFutureRejectionWarning)
        try:
            doc = spec.reader(text)
        except NotImplementedError as exc:
            raise ProvImportError(
                f"the installed prov library cannot read {fmt}: export to PROV-JSON "
                f"or Turtle and import that"
            ) from exc
        except Exception as exc:  # parsers raise anything on corrupt input
            raise ProvImportError(
                f"{source} is not a valid {fmt} PROV document: {type(exc).__name__}: {_short(exc)}"
            ) from exc
    if not doc.get_records() and not doc.has_bundles():
        raise ProvImportError(f"{source} holds no PROV records (is it really {fmt}?)")
    return doc


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- names and values -----------------------------------------------------------------
class _Names:
    """Canonical `prefix:local` texts, keyed by IRI, consistent with the store."""

    def __init__(self, stored: Mapping[str, str]) -> None:
        self.uri_by_prefix: dict[str, str] = dict(stored)
        self.uri_by_prefix[PROVKB_PREFIX] = PROVKB_NS
        self.uri_by_prefix["prov"] = PROV_NS
        self.data = data_namespaces()
        self.new: dict[str, str] = {}

    def text(self, qn: QualifiedName) -> str:
        """`prefix:local` of a qualified name, preferring prefixes already bound; an IRI
        in ProvKB's data namespace (`data_namespaces`) is a `provkb:` id again."""
        uri = qn.uri
        known = [(p, u) for p, u in self.uri_by_prefix.items() if uri.startswith(u) and p]
        known += [(PROVKB_PREFIX, base) for base in self.data if uri.startswith(base)]
        if known:
            prefix, base = max(known, key=lambda pu: len(pu[1]))
            return f"{prefix}:{uri[len(base) :]}"
        prefix = self._bind(qn.namespace.prefix or "ns", qn.namespace.uri)
        return f"{prefix}:{qn.localpart}"

    def _bind(self, wanted: str, uri: str) -> str:
        prefix, n = wanted, 1
        while prefix in self.uri_by_prefix or prefix in _NOT_BOUND:
            n += 1
            prefix = f"{wanted}{n}"
        self.uri_by_prefix[prefix] = uri
        self.new[prefix] = uri
        return prefix

    def property(self, attr: QualifiedName, reserved: Iterable[str]) -> str:
        """The property name of an attribute: local name for `provkb:`, else prefixed.

        A `provkb:` name is prefixed too when it is reserved or would read back as
        another namespace's attribute (`provkb:prov_x` -> `provkb_prov_x`). The local
        part is unescaped (`export.property_name`: `metric.a_x0020_b` -> `metric.a b`).
        """
        prefix, local = self.text(attr).split(":", 1)
        local = property_name(local)
        head, sep, _ = local.partition("_")
        ambiguous = bool(sep) and head in self.uri_by_prefix
        if prefix == PROVKB_PREFIX and local not in reserved and not ambiguous:
            return local
        return f"{prefix}_{local}"


def convert_value(names: _Names, value: Any, where: str) -> Any:
    """A PROV attribute value as a property value (decoding `provkb:json`)."""
    if isinstance(value, Literal):
        if value.datatype is not None and value.datatype.uri == JSON_DATATYPE.uri:
            try:
                return json.loads(value.value)
            except json.JSONDecodeError as exc:
                raise ProvImportError(f"{where}: malformed provkb:json literal ({exc})") from exc
        return value.value
    if isinstance(value, QualifiedName):
        return names.text(value)
    if isinstance(value, Identifier):
        return value.uri
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _collect(props: dict[str, Any], key: str, value: Any) -> None:
    if key in props:
        previous = props[key] if isinstance(props[key], list) else [props[key]]
        props[key] = [*previous, value]
    else:
        props[key] = value


# -- records --------------------------------------------------------------------------
@dataclass
class _Pending:
    """Nodes and edges converted so far, keyed by identity."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], Edge] = field(default_factory=dict)
    implicit: dict[str, Node] = field(default_factory=dict)
    merged: int = 0
    loose: list[ProvRecord] = field(default_factory=list)  # relations without a relationship
    mixed: set[str] = field(default_factory=set)  # ids declared as two kinds


def _record_name(record: ProvRecord) -> str:
    return str(record.identifier) if record.identifier else record.get_provn()[:120]


def _kind_of(record: ProvRecord) -> Kind | None:
    return _KIND_BY_IRI.get(record.get_type().uri)


def _relation_of(record: ProvRecord) -> Relation:
    keyword = PROV_N_MAP.get(record.get_type())
    types = {t.uri for t in record.get_asserted_types() if isinstance(t, Identifier)}
    candidates = [r for r in RELATIONS if r.provjson_key == keyword]
    typed = [r for r in candidates if r.provjson_type and _prov_uri(r.provjson_type) in types]
    plain = [r for r in candidates if not r.provjson_type]
    if typed or plain:
        return (typed or plain)[0]
    supported = sorted({r.provjson_key for r in RELATIONS})
    raise ProvImportError(
        f"unsupported PROV record type {keyword or record.get_type()!s} "
        f"({_record_name(record)}); ProvKB stores {', '.join(supported)}"
    )


def _prov_uri(key: str) -> str:
    prefix, _, local = key.partition(":")
    return (PROV_NS if prefix == "prov" else PROVKB_NS) + local


def _is_type(value: Any, key: str | None) -> bool:
    return key is not None and isinstance(value, Identifier) and value.uri == _prov_uri(key)


def _annotate(
    names: _Names,
    props: dict[str, Any],
    attr: QualifiedName,
    value: Any,
    reserved: set[str],
    where: str,
) -> None:
    """Store a plain attribute: `prov:type` -> provType, `prov:label` -> label, else by name."""
    if attr.uri == PROV_NS + "type":
        key = PROV_TYPE_PROP
    elif attr.uri == PROV_NS + "label":
        key = Prop.LABEL
    elif attr.uri in _PROV_ATTRIBUTE_PROPS and _PROV_ATTRIBUTE_PROPS[attr.uri] not in reserved:
        key = _PROV_ATTRIBUTE_PROPS[attr.uri]
    else:
        key = names.property(attr, reserved)
    _collect(props, key, convert_value(names, value, f"{where}, attribute {attr}"))
    if key == PROV_TYPE_PROP and not isinstance(props[key], list):
        props[key] = [props[key]]


def _node(names: _Names, record: ProvRecord, kind: Kind) -> Node:
    """An element as a node: ontology subtypes as labels, activity times, attributes."""
    subtypes: list[Subtype] = []
    props: dict[str, Any] = {}
    reserved = set(_RESERVED_NODE)
    if kind is ACTIVITY:
        reserved |= set(_ACTIVITY_TIMES.values())
    for attr, value in record.attributes:
        subtype = _SUBTYPE_BY_IRI.get(value.uri) if isinstance(value, Identifier) else None
        if attr.uri == PROV_NS + "type" and subtype is not None and subtype.kind is kind:
            subtypes.append(subtype)
        elif attr.uri in _ACTIVITY_TIMES and kind is ACTIVITY:
            props[_ACTIVITY_TIMES[attr.uri]] = convert_value(names, value, str(attr))
        else:
            _annotate(names, props, attr, value, reserved, f"{kind.name} {record.identifier}")
    return Node(names.text(record.identifier), kind, tuple(subtypes), props)


def _edge(
    names: _Names, record: ProvRecord, relation: Relation
) -> tuple[Edge, dict[str, str]] | None:
    """The relationship of a relation record and its secondary references {key: id};
    None if an end is absent (such a relation is kept exactly, see `kb.prov_exact`)."""
    ends: dict[str, str] = {}
    refs: dict[str, str] = {}
    props: dict[str, Any] = {}
    if record.identifier is not None:
        props[RELATION_ID_PROP] = names.text(record.identifier)
    end_uris = {_prov_uri(relation.source_key), _prov_uri(relation.target_key)}
    time_uri = _prov_uri(relation.time_key) if relation.time_key else None
    extra_by_uri = {_prov_uri(k): (k, p) for k, p in relation.extra_keys.items()}
    reserved = {RELATION_ID_PROP, Prop.LABEL, PROV_TYPE_PROP, *relation.extra_keys.values()}
    if relation.time_key:
        reserved.add(Prop.TIME)
    for attr, value in record.attributes:
        if attr.uri in end_uris:
            ends[attr.uri] = names.text(value)
        elif attr.uri == time_uri:
            props[Prop.TIME] = convert_value(names, value, str(attr))
        elif attr.uri in extra_by_uri:
            key, prop = extra_by_uri[attr.uri]
            props[prop] = refs[key] = names.text(value)
        elif attr.uri != PROV_NS + "type" or not _is_type(value, relation.provjson_type):
            _annotate(names, props, attr, value, reserved, relation.name)
    if any(_prov_uri(k) not in ends for k in (relation.source_key, relation.target_key)):
        return None
    src, dst = ends[_prov_uri(relation.source_key)], ends[_prov_uri(relation.target_key)]
    return Edge(relation, src, dst, props), refs


def _natural_edge(
    names: _Names, record: ProvRecord, pending: _Pending
) -> tuple[Edge, dict[str, str]] | None:
    """The relationship a relation record becomes, or None when ProvKB has no
    relationship for it (no such type, an absent end, an end of another kind)."""
    try:
        relation = _relation_of(record)
    except ProvImportError:
        return None
    found = _edge(names, record, relation)
    if found is None:
        return None
    edge = found[0]
    for node_id, wanted in ((edge.src, relation.source), (edge.dst, relation.target)):
        declared = pending.nodes.get(node_id)
        if declared is not None and declared.kind is not wanted:
            # an end of another kind (declared as two kinds, or e.g. an Entity used as
            # the activity of a usage): no relationship, the relation is kept exactly
            return None
    return found


def _add_element(pending: _Pending, node: Node) -> None:
    existing = pending.nodes.get(node.id)
    if existing is None:
        pending.nodes[node.id] = node
        return
    if existing.kind is not node.kind:  # e.g. an Entity and an Agent: kept exactly
        pending.mixed.add(node.id)
        for key, value in node.props.items():
            _collect(existing.props, key, value)
        return
    existing.subtypes = tuple(dict.fromkeys((*existing.subtypes, *node.subtypes)))
    for key, value in node.props.items():
        _collect(existing.props, key, value)


def _add_ends(pending: _Pending, edge: Edge, refs: dict[str, str]) -> None:
    """Implicit nodes for the ends and references a relation names but no record declares."""
    for node_id, kind, subtypes in (
        (edge.src, edge.relation.source, ()),
        (edge.dst, edge.relation.target, ()),
        *((ref, *_EXTRA_KINDS[key]) for key, ref in refs.items() if key in _EXTRA_KINDS),
    ):
        if node_id not in pending.nodes and node_id not in pending.implicit:
            pending.implicit[node_id] = Node(node_id, kind, tuple(subtypes), {})


def _add_relation(pending: _Pending, edge: Edge, refs: dict[str, str]) -> None:
    _add_ends(pending, edge, refs)
    identity = (edge.relation.rel_type, edge.src, edge.dst)
    if identity in pending.edges:
        pending.merged += 1
        pending.edges[identity].props.update(edge.props)
    else:
        pending.edges[identity] = edge


def convert(doc: ProvDocument, names: _Names) -> _Pending:
    """Every record of a (flattened, unified) document as pending nodes and edges."""
    pending = _Pending()
    relations: list[ProvRecord] = []
    for record in doc.get_records():
        kind = _kind_of(record)
        if kind is not None:
            _add_element(pending, _node(names, record, kind))
        elif record.is_relation():
            relations.append(record)
        else:
            raise ProvImportError(f"unsupported PROV record {record.get_type()}")
    delegations: list[tuple[Edge, dict[str, str]]] = []
    for record in relations:
        natural = _natural_edge(names, record, pending)
        if natural is None:
            pending.loose.append(record)
        elif _foldable(record, natural[0]):
            delegations.append(natural)
        else:
            _add_relation(pending, *natural)
    for edge, refs in delegations:  # once every association is known
        association = _delegating_association(pending, edge)
        if association is not None and Prop.ON_BEHALF_OF not in association.props:
            association.props[Prop.ON_BEHALF_OF] = edge.dst
            _add_ends(pending, edge, refs)
        else:
            _add_relation(pending, edge, refs)
    _drop_derived_times(pending)
    return pending


def _foldable(record: ProvRecord, edge: Edge) -> bool:
    """A plain `actedOnBehalfOf(agent, person, activity)`: nothing but its three ends."""
    plain = record.identifier is None and set(edge.props) == {_DELEGATION_ACTIVITY}
    return edge.relation is ACTED_ON_BEHALF_OF and plain


def _delegating_association(pending: _Pending, delegation: Edge) -> Edge | None:
    """The association of a delegation's activity with its delegate, if pending: a
    delegation per activity is that association's `onBehalfOf` (docs/graph-model.md,
    "Delegation (per activity)"), as capture records it."""
    activity = delegation.props.get(_DELEGATION_ACTIVITY)
    return pending.edges.get((WAS_ASSOCIATED_WITH.rel_type, activity, delegation.src))


def _folded_into(names: _Names, record: ProvRecord, pending: _Pending) -> Owner | None:
    """The association a delegation record was folded into (`convert`), if any."""
    natural = _natural_edge(names, record, pending)
    if natural is None or not _foldable(record, natural[0]):
        return None
    edge = natural[0]
    if (edge.relation.rel_type, edge.src, edge.dst) in pending.edges:
        return None  # stored as a delegation edge of its own
    association = _delegating_association(pending, edge)
    if association is None or association.props.get(Prop.ON_BEHALF_OF) != edge.dst:
        return None
    return ("edge", (WAS_ASSOCIATED_WITH.rel_type, association.src, association.dst))


def _drop_derived_times(pending: _Pending) -> None:
    """A generation's time that is its entity's `generatedAtTime` (what export writes
    for captured data) is not stored twice: the relationship keeps its captured shape."""
    for (rel_type, src, _dst), edge in pending.edges.items():
        entity = pending.nodes.get(src)
        if rel_type != WAS_GENERATED_BY.rel_type or entity is None:
            continue
        time, generated = edge.props.get(Prop.TIME), entity.props.get(Prop.GENERATED)
        if isinstance(time, str) and isinstance(generated, str) and _same(generated, time):
            del edge.props[Prop.TIME]


# -- exact records (kb.prov_exact) ------------------------------------------------------
Owner = tuple[str, Any]  # ("node", id) or ("edge", (type, src, dst))


def _placed(doc: ProvDocument) -> list[tuple[QualifiedName | None, ProvRecord]]:
    """Every record of a document with its bundle (None: the document itself)."""
    out: list[tuple[QualifiedName | None, ProvRecord]] = [(None, r) for r in doc.get_records()]
    for bundle in doc.bundles:
        out += [(bundle.identifier, r) for r in bundle.get_records()]
    return out


def _source_end(names: _Names, record: ProvRecord) -> str:
    for _attr, value in record.formal_attributes:
        if isinstance(value, QualifiedName):
            return names.text(value)
    raise ProvImportError(
        f"{_record_name(record)} names none of its ends: ProvKB keeps a relation on an element"
    )


def _owner(names: _Names, record: ProvRecord, pending: _Pending) -> Owner:
    """Which node or relationship represents a record (and so keeps it exactly)."""
    if _kind_of(record) is not None:
        return ("node", names.text(record.identifier))
    folded = _folded_into(names, record, pending)
    if folded is not None:
        return folded
    natural = _natural_edge(names, record, pending)
    if natural is not None:
        edge = natural[0]
        key = (edge.relation.rel_type, edge.src, edge.dst)
        if key in pending.edges:  # else e.g. a PROV-XML hadMember of several entities
            return ("edge", key)
    return ("node", _source_end(names, record))


def _natural_records(names: _Names, pending: _Pending) -> dict[Owner, set[ProvRecord]]:
    """What export makes of the pending nodes and edges, by owner (as stored: encoded)."""
    doc = ProvDocument()
    out: dict[Owner, set[ProvRecord]] = {}
    export_names = export_Names(doc, names.uri_by_prefix)
    generated = {
        n.id: n.props[Prop.GENERATED] for n in pending.nodes.values() if Prop.GENERATED in n.props
    }
    for node in [*pending.nodes.values(), *pending.implicit.values()]:
        row = {"id": node.id, "labels": [node.kind.label, *node.extra_labels]}
        row["props"] = encode_props(node.props, node.id)
        before = len(doc.get_records())
        try:
            add_node(doc, export_names, row)
        except (ProvKBError, ProvException, ValueError):
            continue  # not expressible naturally: kept exactly
        out[("node", node.id)] = set(doc.get_records()[before:])
    for key, edge in pending.edges.items():
        row = {"src": edge.src, "dst": edge.dst, "props": encode_props(edge.props)}
        before = len(doc.get_records())
        try:
            add_edge(doc, export_names, edge.relation, row, generated)
        except (ProvKBError, ProvException, ValueError):
            continue
        out[("edge", key)] = set(doc.get_records()[before:])
    return out


def keep_exact(doc: ProvDocument, pending: _Pending, names: _Names) -> int:
    """Keep the records of `doc` exactly on the nodes and relationships whose natural
    form says them otherwise (`kb.prov_exact`); returns how many keep records."""
    owned: dict[Owner, list[tuple[QualifiedName | None, ProvRecord]]] = {}
    for bundle_id, record in _placed(doc):
        owned.setdefault(_owner(names, record, pending), []).append((bundle_id, record))
    for (what, key), _records in owned.items():
        if what == "node" and key not in pending.nodes and key not in pending.implicit:
            pending.implicit[key] = Node(key, ENTITY, (), {})
    natural = _natural_records(names, pending)
    kept = 0
    targets: list[tuple[Owner, Node | Edge]] = [
        *((("node", n.id), n) for n in (*pending.nodes.values(), *pending.implicit.values())),
        *((("edge", k), e) for k, e in pending.edges.items()),
    ]
    for owner, target in targets:
        mine = owned.get(owner, [])
        exact = all(b is None for b, _ in mine) and owner in natural
        if exact and {r for _, r in mine} == natural[owner]:
            continue
        props = encode_props(target.props, owner[1] if owner[0] == "node" else "")
        prov_exact.attach(props, mine)
        target.props = props
        kept += 1
    return kept


# -- conflicts ------------------------------------------------------------------------
MAX_LISTED_CONFLICTS = 20
IMPORT_MODES = (ImportMode.REFUSE, ImportMode.SKIP, ImportMode.REPLACE)
_READ_CHUNK = 5000
_LABELS = "labels"
_RELATION = "relation"
NEVER_RELABELS = "ProvKB never relabels a node"


@dataclass(frozen=True)
class Conflict:
    """A change an import would make to what the knowledge base holds.

    `record` is a node id or `relation(src, dst)`; `property` a property name,
    `labels`, or `relation` (a new relation leaving a record of a stored run);
    `stored`/`file` the two values (None: absent).
    """

    record: str
    property: str
    stored: Any
    file: Any
    note: str = ""

    def describe(self) -> str:
        """One line: `record property: stored X, file Y (note)`."""
        text = (
            f"{self.record} {self.property}: stored {_show(self.stored)}, file {_show(self.file)}"
        )
        return f"{text} ({self.note})" if self.note else text

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (kept on the Import activity)."""
        out = {"record": self.record, "property": self.property}
        out |= {"stored": _jsonable(self.stored), "file": _jsonable(self.file)}
        return out | ({"note": self.note} if self.note else {})


def _show(value: Any, limit: int = 80) -> str:
    if value is None:
        return "(absent)"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no NaN or infinity
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _same(stored: Any, given: Any) -> bool:
    """Equal as stored values: NaN equals NaN, ISO times compare as instants."""
    if isinstance(stored, list) and isinstance(given, list):
        return len(stored) == len(given) and all(map(_same, stored, given))
    floats = isinstance(stored, float) and isinstance(given, float)
    if floats and (math.isnan(stored) or math.isnan(given)):
        return math.isnan(stored) and math.isnan(given)
    if stored == given:
        return True
    if isinstance(stored, str) and isinstance(given, str):
        a, b = prov_time(stored), prov_time(given)
        return a is not None and b is not None and a == b
    return False


def conflict_message(source: str, conflicts: list[Conflict], limit: int) -> str:
    """Why an import was refused: the first `limit` conflicts and how many more."""
    records = len({c.record for c in conflicts})
    lines = [
        f"{source} would change what the knowledge base holds ({len(conflicts)} "
        f"conflict(s) in {records} record(s)); nothing was imported:"
    ]
    lines += [f"  {c.describe()}" for c in conflicts[:limit]]
    if len(conflicts) > limit:
        lines.append(f"  ... and {len(conflicts) - limit} more")
    lines.append(
        "Use --on-conflict skip to add only the new records and keep the stored ones, or "
        "--replace to overwrite them (the previous values are kept on the Import activity)."
    )
    return "\n".join(lines)


# -- reconciling with the store -------------------------------------------------------
def _chunked(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _READ_CHUNK):
        yield items[start : start + _READ_CHUNK]


def _stored_nodes(store: Store, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{id: {labels, props}} of the nodes already stored, looked up through the id index."""
    out: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(ids))
    for kind in KINDS:
        for chunk in _chunked(wanted):
            for row in store.read(cypher.read_nodes(kind, selected=True), ids=chunk).rows:
                out[row["id"]] = row
    return out


def _stored_edges(store: Store, edges: list[Edge], present: Mapping[str, Any]) -> dict:
    """{(type, src, dst): props} of the file's relations that are already stored."""
    sources: dict[str, set[str]] = {}
    for edge in edges:
        if edge.src in present:
            sources.setdefault(edge.relation.rel_type, set()).add(edge.src)
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rel_type, ids in sources.items():
        relation = RELATION_BY_TYPE[rel_type]
        for chunk in _chunked(sorted(ids)):
            for row in store.read(cypher.read_edges(relation, True), ids=chunk).rows:
                out[(rel_type, row["src"], row["dst"])] = row["props"]
    return out


def _stored_runs(store: Store, run_ids: Iterable[str]) -> set[str]:
    """The run ids some stored record already carries."""
    wanted = sorted({r for r in run_ids if isinstance(r, str)})
    found: set[str] = set()
    for kind in KINDS:
        for chunk in _chunked(wanted):
            rows = store.read(cypher.read_present_run_ids(kind), runIds=chunk).rows
            found.update(row["runId"] for row in rows)
    return found


def _stored_kind(labels: list[str]) -> Kind | None:
    return next((KIND_BY_LABEL[label] for label in labels if label in KIND_BY_LABEL), None)


def _reconcile(node: Node, stored: Mapping[str, Any]) -> list[Conflict]:
    """A stored node's conflicts with the file's; the node gets the stored label set
    (labels never change)."""
    labels = stored["labels"]
    kinds = [label for label in labels if label in KIND_BY_LABEL]
    if kinds != [node.kind.label]:
        raise ProvImportError(
            f"{node.id} is already in the knowledge base as {'/'.join(kinds) or '?'}; "
            f"the document makes it an {node.kind.name}"
        )
    conflicts: list[Conflict] = []
    have = {label for label in labels if label in SUBTYPE_BY_LABEL}
    added = {s.label for s in node.subtypes} - have
    if added:
        conflicts.append(
            Conflict(node.id, _LABELS, sorted(labels), sorted({*labels, *added}), NEVER_RELABELS)
        )
    node.subtypes = tuple(SUBTYPE_BY_LABEL[label] for label in sorted(have))
    conflicts += _property_conflicts(node.id, stored["props"], node.props)
    return conflicts


def _property_conflicts(
    record: str, stored: Mapping[str, Any], given: Mapping[str, Any]
) -> list[Conflict]:
    """Properties the file adds to a stored record or gives another value (its exact
    records only when nothing else differs: they differ with any other property)."""
    found = [
        Conflict(record, key, stored.get(key), value)
        for key, value in sorted(encode_props(given).items())
        if key not in stored or not _same(stored[key], value)
    ]
    plain = [c for c in found if c.property not in prov_exact.EXACT_PROPS]
    return plain or found


def _check_ends(edges: list[Edge], kinds: Mapping[str, Kind]) -> None:
    for edge in edges:
        rel = edge.relation
        for node_id, key, wanted in (
            (edge.src, rel.source_key, rel.source),
            (edge.dst, rel.target_key, rel.target),
        ):
            if kinds[node_id] is not wanted:
                raise ProvImportError(
                    f"{rel.name}({edge.src}, {edge.dst}): {key} {node_id} is an "
                    f"{kinds[node_id].name}, not an {wanted.name}"
                )


def _edge_name(edge: Edge) -> str:
    return f"{edge.relation.name}({edge.src}, {edge.dst})"


# Relations that belong to the record of their target: an activity's generations and
# invalidations. Every other relation belongs to its source (what used, was derived, ...).
_OWNED_BY_TARGET = frozenset({WAS_GENERATED_BY.rel_type, WAS_INVALIDATED_BY.rel_type})


def _owning_end(edge: Edge) -> str:
    """The end whose record a relation adds to (`used(a, e)`: a's; `wasGeneratedBy(e, a)`:
    a's too, the activity's outputs)."""
    return edge.dst if edge.relation.rel_type in _OWNED_BY_TARGET else edge.src


def _demote(node: Node) -> None:
    """Keep the capture properties of a record as `imported.<name>` (never `runId` ...)."""
    node.props = {
        (imported_prop(key) if is_capture_prop(key) else key): value
        for key, value in node.props.items()
    }


@dataclass
class ImportPlan:
    """What an import writes, and what it found already stored."""

    batch: GraphBatch
    conflicts: list[Conflict]
    unchanged: int = 0
    demoted: list[str] = field(default_factory=list)
    implicit: list[str] = field(default_factory=list)
    merged: int = 0


def build_batch(
    store: Store,
    doc: ProvDocument,
    names: _Names,
    mode: str = ImportMode.REFUSE,
    original: ProvDocument | None = None,
) -> ImportPlan:
    """The document as one batch against what is stored, by `mode` (`ImportMode`).

    Stored records are compared with the file's: a property the file adds or gives
    another value, a label it adds, a new record whose `runId` names a run the
    knowledge base already has, and a new relation adding to a stored run's record
    (`_owning_end`) are conflicts. Records the file has exactly as stored are not
    written again.
    REFUSE writes only when there is no conflict; SKIP writes only new records (a new
    record claiming a stored run keeps its capture properties as `imported.<name>`);
    REPLACE writes the file's values over the stored ones (never labels).
    """
    pending = convert(doc, names)
    keep_exact(original if original is not None else doc, pending, names)
    stored = _stored_nodes(store, [*pending.nodes, *pending.implicit])
    kinds: dict[str, Kind] = {}
    conflicts: list[Conflict] = []
    changed: list[Node] = []
    new: list[Node] = []
    unchanged = 0
    for node in pending.nodes.values():
        kinds[node.id] = node.kind
        if node.id not in stored:
            new.append(node)
            continue
        found = _reconcile(node, stored[node.id])
        conflicts += found
        if found:
            changed.append(node)
        else:
            unchanged += 1
    for node_id, node in list(pending.implicit.items()):
        if node_id in stored:  # already in the store: nothing to write
            kinds[node_id] = _stored_kind(stored[node_id]["labels"]) or node.kind
            del pending.implicit[node_id]
            unchanged += 1
        else:
            kinds[node_id] = node.kind
    edges = list(pending.edges.values())
    _check_ends(edges, kinds)
    known_runs = _stored_runs(store, (r for n in new for r in as_list(n.props.get(Prop.RUN_ID))))
    claiming: list[Node] = []
    for node in new:
        claimed = [r for r in as_list(node.props.get(Prop.RUN_ID)) if r in known_runs]
        if claimed:
            claiming.append(node)
            conflicts += [
                Conflict(node.id, Prop.RUN_ID, None, run, f"a new record claiming stored run {run}")
                for run in claimed
            ]
    stored_edges = _stored_edges(store, edges, stored)
    new_edges: list[Edge] = []
    changed_edges: list[Edge] = []
    attaching: list[Edge] = []
    for edge in edges:
        key = (edge.relation.rel_type, edge.src, edge.dst)
        if key in stored_edges:
            found = _property_conflicts(_edge_name(edge), stored_edges[key], edge.props)
            conflicts += found
            if found:
                changed_edges.append(edge)
            else:
                unchanged += 1
            continue
        owner = stored.get(_owning_end(edge), {}).get("props", {}).get(Prop.RUN_ID)
        if owner is not None:
            note = f"a new relation adding to the record of stored run {owner}"
            conflicts.append(Conflict(_edge_name(edge), _RELATION, None, edge.relation.name, note))
            attaching.append(edge)
        else:
            new_edges.append(edge)
    plan = ImportPlan(GraphBatch(), conflicts, unchanged, implicit=sorted(pending.implicit))
    plan.merged = pending.merged
    implicit = list(pending.implicit.values())
    if mode == ImportMode.REPLACE:
        plan.batch = GraphBatch(
            [*new, *changed, *implicit], [*new_edges, *attaching, *changed_edges]
        )
    else:  # REFUSE (no conflicts, or the caller refuses) and SKIP
        for node in claiming:
            _demote(node)
        plan.demoted = sorted(node.id for node in claiming)
        plan.batch = GraphBatch([*new, *implicit], new_edges)
    return plan


# -- entry points ---------------------------------------------------------------------
@dataclass(frozen=True)
class ImportSource:
    """The file an import read: its name, path and the sha256 of its bytes."""

    name: str
    path: str
    sha256: str

    @classmethod
    def of(cls, path: Path, content: bytes) -> ImportSource:
        return cls(path.name, str(path.resolve()), hashlib.sha256(content).hexdigest())


def _prepare(doc: ProvDocument) -> ProvDocument:
    if not isinstance(doc, ProvDocument):
        raise ProvImportError(f"expected a prov ProvDocument, got {type(doc).__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProvFutureRejectionWarning)
        flat = doc.flattened()
        try:
            return flat.unified()
        except (ProvException, ProvWarning):
            # descriptions PROV cannot merge (two times of one usage, an id that is an
            # Entity in one bundle and an Activity in another): stored as they are, the
            # records themselves kept exactly (`keep_exact`)
            return flat


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"


def record_import(
    batch: GraphBatch,
    plan: ImportPlan,
    *,
    mode: str,
    fmt: str,
    person: str,
    started: str,
    source: ImportSource | None,
) -> str:
    """Add the import's own provenance to its batch; returns the Import activity's id.

    An `:Activity:Import` (times, format, mode, OS user, host, records written, and as
    JSON the conflicts skipped or replaced with their stored values) associated with
    the person and, for a file, using an `:Entity:ImportedFile` named by its sha256.
    """
    import_id = f"{PROVKB_PREFIX}:import/{uuid.uuid4().hex[:12]}"
    props: dict[str, Any] = {
        Prop.STARTED: started,
        Prop.ENDED: now_iso(),
        Prop.FORMAT: fmt,
        Prop.ON_CONFLICT: mode,
        Prop.OS_USER: _os_user(),
        Prop.HOSTNAME: socket.gethostname(),
        Prop.NODES_WRITTEN: len(batch.nodes),
        Prop.EDGES_WRITTEN: len(batch.edges),
    }
    if plan.conflicts:
        key = Prop.REPLACED if mode == ImportMode.REPLACE else Prop.SKIPPED
        props[key] = json.dumps([c.as_dict() for c in plan.conflicts], default=str)
    if source is not None:
        props[Prop.PATH] = source.path
    batch.add_node(import_id, ACTIVITY, IMPORT, **props)
    agent = batch.add_node(person_node_id(person), AGENT, PERSON, **{Prop.NAME: person})
    batch.add_edge(WAS_ASSOCIATED_WITH, import_id, agent)
    if source is not None:
        file_id = f"{PROVKB_PREFIX}:file/{source.sha256}"
        file_props = {Prop.NAME: source.name, Prop.PATH: source.path, Prop.SHA256: source.sha256}
        batch.add_node(file_id, ENTITY, IMPORTED_FILE, **file_props)
        batch.add_edge(USED, import_id, file_id)
    return import_id


def _check_mode(mode: str) -> str:
    if mode not in IMPORT_MODES:
        raise ProvImportError(
            f"unknown conflict mode {mode!r}; choose one of {', '.join(IMPORT_MODES)}"
        )
    return mode


def import_document(
    store: Store,
    doc: ProvDocument,
    fmt: str = "document",
    on_conflict: str = ImportMode.REFUSE,
    *,
    record: bool = False,
    person: str | None = None,
    source: ImportSource | None = None,
) -> ImportReport:
    """Write a PROV document (bundles flattened) in one transaction; all or nothing.

    Records already stored are never changed unless `on_conflict` is REPLACE (see
    `build_batch`): REFUSE raises ImportConflict listing every conflict, SKIP keeps the
    stored records. An import that writes is recorded as an Import activity (see
    `record_import`) when `record` is true, and always when it replaces anything.
    Nothing to write (the document is already stored as it is) is a no-op.
    """
    mode, started = _check_mode(on_conflict), now_iso()
    flat = _prepare(doc)
    stored = {row["prefix"]: row["uri"] for row in store.read(cypher.READ_NAMESPACES).rows}
    names = _Names(stored)
    plan = build_batch(store, flat, names, mode, original=doc)
    where = source.name if source is not None else "the document"
    if plan.conflicts and mode == ImportMode.REFUSE:
        raise ImportConflict(
            conflict_message(where, plan.conflicts, MAX_LISTED_CONFLICTS), plan.conflicts
        )
    relabel = [c for c in plan.conflicts if c.property == _LABELS]
    if relabel and mode == ImportMode.REPLACE:
        listed = "; ".join(c.describe() for c in relabel[:MAX_LISTED_CONFLICTS])
        raise ImportConflict(
            f"{where}: {NEVER_RELABELS}, not even with --replace ({listed}); nothing was imported",
            relabel,
        )
    report = ImportReport(
        format=fmt,
        nodes=len(plan.batch.nodes),
        edges=len(plan.batch.edges),
        implicit=plan.implicit,
        merged_relations=plan.merged,
        namespaces=dict(names.new) if len(plan.batch) else {},
        on_conflict=mode,
        unchanged=plan.unchanged,
        conflicts=plan.conflicts,
        demoted=plan.demoted,
        sha256=source.sha256 if source is not None else None,
    )
    if not len(plan.batch):
        return report  # already stored as it is (or every change skipped): a no-op
    if record or (mode == ImportMode.REPLACE and plan.conflicts):
        report.person = default_person(person)
        report.import_id = record_import(
            plan.batch,
            plan,
            mode=mode,
            fmt=fmt,
            person=report.person,
            started=started,
            source=source,
        )
    try:
        store.write(plan.batch)
    except QueryError as exc:
        raise ProvImportError(
            f"the knowledge base refused the import ({exc}); nothing was written"
        ) from exc
    if names.new:
        store.write_namespaces(names.new)
    return report


DEFAULT_MAX_IMPORT_MB = 256


def max_import_bytes() -> int:
    """The largest file `import_file` reads: `PROVKB_MAX_IMPORT_MB` (default 256 MB)."""
    raw = os.environ.get("PROVKB_MAX_IMPORT_MB", "")
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_IMPORT_MB
    except ValueError as exc:
        raise ProvImportError(f"PROVKB_MAX_IMPORT_MB must be a number, got {raw!r}") from exc
    return int(megabytes * 1024 * 1024)


def import_file(
    store: Store,
    path: str | Path,
    fmt: str | None = None,
    on_conflict: str = ImportMode.REFUSE,
    *,
    record: bool = False,
    person: str | None = None,
) -> ImportReport:
    """Import a PROV file; the format comes from `fmt` or the file's suffix.

    `on_conflict`, `record` and `person` as for `import_document`; the Import activity
    names the file by its sha256."""
    path = Path(path)
    fmt = normalise_format(fmt) if fmt else guess_format(path)
    _check_mode(on_conflict)
    try:
        size, limit = path.stat().st_size, max_import_bytes()
        if size > limit:
            raise ProvImportError(
                f"{path.name} is {size / 2**20:.1f} MB, over the import limit of "
                f"{limit / 2**20:.0f} MB (raise it with PROVKB_MAX_IMPORT_MB); nothing imported"
            )
        content = path.read_bytes()
    except OSError as exc:
        raise ProvImportError(f"cannot read {path}: {exc.strerror or exc}") from exc
    source = ImportSource.of(path, content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ProvWarning)
        doc = read_document(content, fmt, source=path.name)
        report = import_document(
            store, doc, fmt, on_conflict, record=record, person=person, source=source
        )
    report.path = str(path)
    report.warnings = [str(w.message) for w in caught if issubclass(w.category, ProvWarning)]
    return report
