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
"""

from __future__ import annotations

import datetime
import io
import json
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rdflib
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
from prov.serializers.provrdf import ProvRDFSerializer

from ..errors import ProvImportError, QueryError
from ..ontology import (
    ACTIVITY,
    ENTITY,
    KIND_BY_LABEL,
    KINDS,
    PLAN,
    PROV_NS,
    PROVKB_NS,
    PROVKB_PREFIX,
    RELATIONS,
    SUBTYPE_BY_LABEL,
    Kind,
    Prop,
    Relation,
    Subtype,
)
from . import cypher
from .export import (
    DEFAULT_PREFIXES,
    JSON_DATATYPE,
    PROV_TYPE_PROP,
    RELATION_ID_PROP,
    qualify_mixed_relations,
)
from .records import Edge, GraphBatch, Node
from .store import Store


@dataclass(frozen=True)
class ImportFormat:
    """How `prov` reads a format: serializer name and extra deserialize options."""

    name: str
    serializer: str
    options: tuple[tuple[str, str], ...] = ()


IMPORT_FORMATS: dict[str, ImportFormat] = {
    f.name: f
    for f in (
        ImportFormat("provjson", "json"),
        ImportFormat("provn", "provn"),
        ImportFormat("provxml", "xml"),
        ImportFormat("provjsonld", "jsonld"),
        ImportFormat("turtle", "rdf", (("rdf_format", "turtle"),)),
        ImportFormat("trig", "rdf", (("rdf_format", "trig"),)),
        ImportFormat("jsonld", "rdf", (("rdf_format", "json-ld"),)),
    )
}
SUFFIX_FORMATS = {
    ".json": "provjson",
    ".provn": "provn",
    ".xml": "provxml",
    ".provx": "provxml",
    ".provjsonld": "provjsonld",
    ".ttl": "turtle",
    ".trig": "trig",
    ".jsonld": "jsonld",
}
FORMAT_ALIASES = {"json": "provjson", "ttl": "turtle", "xml": "provxml", "json-ld": "jsonld"}

_KIND_BY_IRI: dict[str, Kind] = {k.iri: k for k in KINDS}
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
    """What an import wrote."""

    format: str
    nodes: int = 0
    edges: int = 0
    implicit: list[str] = field(default_factory=list)  # ids created from a relation role
    merged_relations: int = 0  # relations folded into one (same type and ends)
    namespaces: dict[str, str] = field(default_factory=dict)  # bindings written
    warnings: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def records(self) -> int:
        """Nodes plus relationships written."""
        return self.nodes + self.edges


# -- reading files --------------------------------------------------------------------
def guess_format(path: Path) -> str:
    """The import format of a file from its suffix."""
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ProvImportError(
            f"cannot tell the PROV format of {path.name!r} from its suffix; use one of "
            f"{', '.join(sorted(SUFFIX_FORMATS))} or pass the format "
            f"({', '.join(IMPORT_FORMATS)})"
        )
    return fmt


def normalise_format(fmt: str) -> str:
    """An import format name (aliases `json`, `ttl`, `xml`, `json-ld` accepted)."""
    fmt = FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
    if fmt not in IMPORT_FORMATS:
        raise ProvImportError(
            f"unknown import format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}"
        )
    return fmt


def read_document(content: bytes, fmt: str, source: str = "input") -> ProvDocument:
    """Parse PROV content with the `prov` library; ProvImportError on any problem.

    Input `prov` reads today but will reject (its future-rejection warnings, e.g. a
    time that is no xsd:dateTime) is refused too.
    """
    fmt = normalise_format(fmt)
    spec = IMPORT_FORMATS[fmt]
    if not content.strip():
        raise ProvImportError(f"{source} is empty: there is no PROV document to import")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProvImportError(f"{source} is not UTF-8 text ({exc})") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProvFutureRejectionWarning)
        try:
            doc = _deserialize(text, spec)
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


def _deserialize(text: str, spec: ImportFormat) -> ProvDocument:
    options = dict(spec.options)
    if spec.serializer != "rdf":
        source = io.BytesIO(text.encode("utf-8"))
        return ProvDocument.deserialize(source=source, format=spec.serializer, **options)
    graph = rdflib.Dataset(default_union=True)
    graph.parse(data=text, format=options["rdf_format"])
    qualify_mixed_relations(graph)  # see there: prov's decoder mixes them up otherwise
    doc = ProvDocument()
    ProvRDFSerializer(doc).decode_document(graph, doc)
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
        self.new: dict[str, str] = {}

    def text(self, qn: QualifiedName) -> str:
        """`prefix:local` of a qualified name, preferring prefixes already bound."""
        uri = qn.uri
        known = [(p, u) for p, u in self.uri_by_prefix.items() if uri.startswith(u) and p]
        if known:
            prefix, base = max(known, key=lambda pu: len(pu[1]))
            return f"{prefix}:{uri[len(base) :]}"
        prefix = self._bind(qn.namespace.prefix or "ns", qn.namespace.uri)
        return f"{prefix}:{qn.localpart}"

    def _bind(self, wanted: str, uri: str) -> str:
        prefix, n = wanted, 1
        while prefix in self.uri_by_prefix or prefix in DEFAULT_PREFIXES:
            n += 1
            prefix = f"{wanted}{n}"
        self.uri_by_prefix[prefix] = uri
        self.new[prefix] = uri
        return prefix

    def property(self, attr: QualifiedName, reserved: Iterable[str]) -> str:
        """The property name of an attribute: local name for `provkb:`, else prefixed.

        A `provkb:` name is prefixed too when it is reserved or would read back as
        another namespace's attribute (`provkb:prov_x` -> `provkb_prov_x`).
        """
        prefix, local = self.text(attr).split(":", 1)
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


def _edge(names: _Names, record: ProvRecord, relation: Relation) -> tuple[Edge, dict[str, str]]:
    """The relationship of a relation record and its secondary references {key: id}."""
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
    missing = [k for k in (relation.source_key, relation.target_key) if _prov_uri(k) not in ends]
    if missing:
        raise ProvImportError(
            f"{relation.name} {_record_name(record)} has no {missing[0]}: ProvKB stores a "
            f"relation only between two elements"
        )
    src, dst = ends[_prov_uri(relation.source_key)], ends[_prov_uri(relation.target_key)]
    return Edge(relation, src, dst, props), refs


def _add_element(pending: _Pending, node: Node) -> None:
    existing = pending.nodes.get(node.id)
    if existing is None:
        pending.nodes[node.id] = node
        return
    if existing.kind is not node.kind:
        raise ProvImportError(
            f"{node.id} is declared both as {existing.kind.name} and as {node.kind.name}; "
            f"a ProvKB node has exactly one PROV kind"
        )
    existing.subtypes = tuple(dict.fromkeys((*existing.subtypes, *node.subtypes)))
    for key, value in node.props.items():
        _collect(existing.props, key, value)


def _add_relation(pending: _Pending, edge: Edge, refs: dict[str, str]) -> None:
    for node_id, kind, subtypes in (
        (edge.src, edge.relation.source, ()),
        (edge.dst, edge.relation.target, ()),
        *((ref, *_EXTRA_KINDS[key]) for key, ref in refs.items() if key in _EXTRA_KINDS),
    ):
        if node_id not in pending.nodes and node_id not in pending.implicit:
            pending.implicit[node_id] = Node(node_id, kind, tuple(subtypes), {})
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
    for record in relations:
        _add_relation(pending, *_edge(names, record, _relation_of(record)))
    return pending


# -- reconciling with the store -------------------------------------------------------
def _stored_labels(store: Store, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        for row in store.read(cypher.read_node_labels(kind), ids=ids).rows:
            out[row["id"]] = row["labels"]
    return out


def _stored_kind(labels: list[str]) -> Kind | None:
    return next((KIND_BY_LABEL[label] for label in labels if label in KIND_BY_LABEL), None)


def _reconcile(node: Node, labels: list[str] | None) -> None:
    """Give a node the label set it already has in the store (labels never change)."""
    if labels is None:
        return
    kinds = [label for label in labels if label in KIND_BY_LABEL]
    if kinds != [node.kind.label]:
        raise ProvImportError(
            f"{node.id} is already in the knowledge base as {'/'.join(kinds) or '?'}; "
            f"the document makes it an {node.kind.name}"
        )
    stored = {label for label in labels if label in SUBTYPE_BY_LABEL}
    added = {s.label for s in node.subtypes} - stored
    if added:
        raise ProvImportError(
            f"{node.id} is already in the knowledge base as :{':'.join(sorted(labels))}; "
            f"the document adds {', '.join(sorted(added))}, and ProvKB never relabels a node"
        )
    node.subtypes = tuple(SUBTYPE_BY_LABEL[label] for label in sorted(stored))


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


def build_batch(store: Store, doc: ProvDocument, names: _Names) -> tuple[GraphBatch, _Pending]:
    """The document as one batch consistent with the nodes already stored.

    Declared nodes keep the label set they already have in the store; implicit
    nodes that already exist are not written again (and leave `pending.implicit`).
    """
    pending = convert(doc, names)
    stored = _stored_labels(store, [*pending.nodes, *pending.implicit])
    kinds: dict[str, Kind] = {}
    for node in pending.nodes.values():
        _reconcile(node, stored.get(node.id))
        kinds[node.id] = node.kind
    for node_id, node in list(pending.implicit.items()):
        labels = stored.get(node_id)
        if labels is None:
            kinds[node_id] = node.kind
        else:  # already in the store: nothing to write
            kinds[node_id] = _stored_kind(labels) or node.kind
            del pending.implicit[node_id]
    edges = list(pending.edges.values())
    _check_ends(edges, kinds)
    nodes = [*pending.nodes.values(), *pending.implicit.values()]
    return GraphBatch(nodes, edges), pending


# -- entry points ---------------------------------------------------------------------
def _prepare(doc: ProvDocument) -> ProvDocument:
    if not isinstance(doc, ProvDocument):
        raise ProvImportError(f"expected a prov ProvDocument, got {type(doc).__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProvFutureRejectionWarning)
        try:
            return doc.flattened().unified()
        except (ProvException, ProvWarning) as exc:
            raise ProvImportError(f"inconsistent PROV document: {_short(exc)}") from exc


def import_document(store: Store, doc: ProvDocument, fmt: str = "document") -> ImportReport:
    """Write a PROV document (bundles flattened) in one transaction; all or nothing."""
    flat = _prepare(doc)
    stored = {row["prefix"]: row["uri"] for row in store.read(cypher.READ_NAMESPACES).rows}
    names = _Names(stored)
    batch, pending = build_batch(store, flat, names)
    try:
        store.write(batch)
    except QueryError as exc:
        raise ProvImportError(
            f"the knowledge base refused the import ({exc}); nothing was written"
        ) from exc
    if names.new:
        store.write_namespaces(names.new)
    return ImportReport(
        format=fmt,
        nodes=len(batch.nodes),
        edges=len(batch.edges),
        implicit=sorted(pending.implicit),
        merged_relations=pending.merged,
        namespaces=dict(names.new),
    )


DEFAULT_MAX_IMPORT_MB = 256


def max_import_bytes() -> int:
    """The largest file `import_file` reads: `PROVKB_MAX_IMPORT_MB` (default 256 MB)."""
    raw = os.environ.get("PROVKB_MAX_IMPORT_MB", "")
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_IMPORT_MB
    except ValueError as exc:
        raise ProvImportError(f"PROVKB_MAX_IMPORT_MB must be a number, got {raw!r}") from exc
    return int(megabytes * 1024 * 1024)


def import_file(store: Store, path: str | Path, fmt: str | None = None) -> ImportReport:
    """Import a PROV file; the format comes from `fmt` or the file's suffix."""
    path = Path(path)
    fmt = normalise_format(fmt) if fmt else guess_format(path)
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ProvWarning)
        doc = read_document(content, fmt, source=path.name)
        report = import_document(store, doc, fmt)
    report.path = str(path)
    report.warnings = [str(w.message) for w in caught if issubclass(w.category, ProvWarning)]
    return report
