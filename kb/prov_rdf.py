"""PROV-O (RDF) reading and writing through prov's RDF codec and rdflib.

prov encodes a `ProvDocument` as an rdflib graph and decodes one back; this module
adds the fix-ups ProvKB needs around it: the unqualified shortcuts PROV-O users query
(`add_shortcuts`, dropped again on reading), `qualify_mixed_relations`, and instance
IRIs in a data namespace of their own (`to_data_namespace`: `provkb:run/x` is
`<https://provkb.org/data/run/x>`, not a term of the vocabulary `provkb:`).
"""

from __future__ import annotations

import rdflib
from prov.identifier import Namespace, QualifiedName
from prov.model import ProvDocument
from prov.serializers.provrdf import ProvRDFSerializer

from ..ontology import PROV_NS, PROVKB_DATA_PREFIX, PROVKB_NS, PROVKB_PREFIX
from .prov_names import data_namespace, data_namespaces
from .prov_rename import renamed

# PROV-O relations prov's decoder folds onto their `prov:qualified*` node:
# binary predicate -> (qualification predicate, class, influencer predicate).
_PROV_O = rdflib.Namespace(PROV_NS)
_QUALIFIABLE = {
    _PROV_O.wasAssociatedWith: (_PROV_O.qualifiedAssociation, _PROV_O.Association, _PROV_O.agent),
    _PROV_O.actedOnBehalfOf: (_PROV_O.qualifiedDelegation, _PROV_O.Delegation, _PROV_O.agent),
    _PROV_O.wasAttributedTo: (_PROV_O.qualifiedAttribution, _PROV_O.Attribution, _PROV_O.agent),
    _PROV_O.wasInformedBy: (
        _PROV_O.qualifiedCommunication,
        _PROV_O.Communication,
        _PROV_O.activity,
    ),
    _PROV_O.wasInfluencedBy: (_PROV_O.qualifiedInfluence, _PROV_O.Influence, _PROV_O.influencer),
}


def qualify_mixed_relations(graph: rdflib.Dataset) -> int:
    """Qualify binary relation triples whose subject also has qualified ones.

    prov 3.2's PROV-O decoder folds a binary triple (`:run prov:wasAssociatedWith
    :keras`) onto a qualified node of the same subject; when no such node cites the
    triple's object it picks the last one seen and overwrites its agent (an
    association with a plan swallows the plain ones). Giving the triple its own
    qualified node citing the object (the PROV-O qualification pattern) makes
    it decode right. Returns the nodes added.
    """
    added: list[tuple] = []
    for binary, (qualified, cls, influencer) in _QUALIFIABLE.items():
        for subject, _, obj, context in graph.quads((None, binary, None, None)):
            nodes = list(graph.objects(subject, qualified))
            if nodes and not any((n, influencer, obj) in graph for n in nodes):
                node = rdflib.BNode()
                added += [
                    (subject, qualified, node, context),
                    (node, rdflib.RDF.type, cls, context),
                    (node, influencer, obj, context),
                ]
    graph.addN(added)
    return len(added) // 3


# PROV-O: the unqualified shortcut of each qualified influence prov's encoder writes
# alone (`prov:qualifiedUsage [prov:entity :e]` -> `prov:used :e`), and the times of
# generations and invalidations on their entity (`prov:generatedAtTime`).
# qualification predicate -> (influencer predicate on the node, shortcut predicates)
_SHORTCUTS = {
    _PROV_O.qualifiedUsage: (_PROV_O.entity, (_PROV_O.used,)),
    _PROV_O.qualifiedGeneration: (_PROV_O.activity, (_PROV_O.wasGeneratedBy,)),
    _PROV_O.qualifiedInvalidation: (_PROV_O.activity, (_PROV_O.wasInvalidatedBy,)),
    _PROV_O.qualifiedDerivation: (_PROV_O.entity, (_PROV_O.wasDerivedFrom,)),
    _PROV_O.qualifiedRevision: (_PROV_O.entity, (_PROV_O.wasRevisionOf, _PROV_O.wasDerivedFrom)),
    _PROV_O.qualifiedQuotation: (_PROV_O.entity, (_PROV_O.wasQuotedFrom, _PROV_O.wasDerivedFrom)),
    _PROV_O.qualifiedPrimarySource: (
        _PROV_O.entity,
        (_PROV_O.hadPrimarySource, _PROV_O.wasDerivedFrom),
    ),
    _PROV_O.qualifiedAssociation: (_PROV_O.agent, (_PROV_O.wasAssociatedWith,)),
    _PROV_O.qualifiedStart: (_PROV_O.entity, (_PROV_O.wasStartedBy,)),
    _PROV_O.qualifiedEnd: (_PROV_O.entity, (_PROV_O.wasEndedBy,)),
}
_TIME_SHORTCUTS = {
    _PROV_O.qualifiedGeneration: _PROV_O.generatedAtTime,
    _PROV_O.qualifiedInvalidation: _PROV_O.invalidatedAtTime,
}


def _shortcuts(graph: rdflib.Dataset) -> list[tuple]:
    """The shortcut quads a PROV-O graph's qualified influences imply."""
    out: list[tuple] = []
    for qualified, (influencer, shortcuts) in _SHORTCUTS.items():
        for subject, _, node, context in graph.quads((None, qualified, None, None)):
            for obj in graph.objects(node, influencer):
                out += [(subject, shortcut, obj, context) for shortcut in shortcuts]
            time = _TIME_SHORTCUTS.get(qualified)
            if time is not None:
                out += [(subject, time, t, context) for t in graph.objects(node, _PROV_O.atTime)]
    return out


def add_shortcuts(graph: rdflib.Dataset) -> int:
    """Add the unqualified shortcuts (and entity times) of the qualified influences."""
    added = [quad for quad in _shortcuts(graph) if quad not in graph]
    graph.addN(added)
    return len(added)


def drop_shortcuts(graph: rdflib.Dataset) -> int:
    """Remove what `add_shortcuts` adds (implied by a qualified node; prov's decoder
    would read each as a relation of its own)."""
    found = [quad for quad in _shortcuts(graph) if quad in graph]
    for quad in found:
        graph.remove(quad)
    return len(found)


def to_data_namespace(doc: ProvDocument) -> ProvDocument:
    """`doc` with ProvKB's instance ids (identifiers and relation ends in the vocabulary
    namespace `provkb:`) moved to the data namespace (`data_namespace()`)."""
    data = Namespace(PROVKB_DATA_PREFIX, data_namespace())

    def rename(qn: QualifiedName) -> QualifiedName:
        return data[qn.localpart] if qn.namespace.uri == PROVKB_NS else qn

    return renamed(doc, rename, ids_only=True)


def from_data_namespace(doc: ProvDocument) -> ProvDocument:
    """The inverse of `to_data_namespace` (the configured or the default data base)."""
    vocabulary = Namespace(PROVKB_PREFIX, PROVKB_NS)
    bases = data_namespaces()

    def rename(qn: QualifiedName) -> QualifiedName:
        uri = qn.uri
        base = next((b for b in bases if uri.startswith(b) and len(uri) > len(b)), None)
        return vocabulary[uri[len(base) :]] if base is not None else qn

    return renamed(doc, rename, ids_only=True)


def prov_o_graph(doc: ProvDocument) -> rdflib.Dataset:
    """The PROV-O graph of a document (prov's encoder) with the unqualified shortcuts
    of its qualified influences and instance IRIs in the data namespace, safe to read
    back with `read_rdf`."""
    doc = to_data_namespace(doc)
    graph = ProvRDFSerializer(doc).encode_document(doc)
    qualify_mixed_relations(graph)
    add_shortcuts(graph)
    return graph


def write_rdf(doc: ProvDocument, rdf_format: str) -> str:
    """A document as PROV-O text in an rdflib format (turtle, trig, json-ld)."""
    return prov_o_graph(doc).serialize(format=rdf_format)


def read_rdf(text: str, rdf_format: str) -> ProvDocument:
    """A PROV document from PROV-O text in an rdflib format."""
    graph = rdflib.Dataset(default_union=True)
    graph.parse(data=text, format=rdf_format)
    drop_shortcuts(graph)  # implied by the qualified nodes
    qualify_mixed_relations(graph)  # see there: prov's decoder mixes them up otherwise
    doc = ProvDocument()
    ProvRDFSerializer(doc).decode_document(graph, doc)
    return from_data_namespace(doc)
