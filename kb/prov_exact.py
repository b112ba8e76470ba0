"""Exact PROV records beside the natural graph shape (lossless import, see
docs/graph-model.md, "Exact records").

The natural mapping (kb/export.py, kb/provimport.py) turns an element into a node and
a relation into a relationship with plain property values. Where that cannot say a
record exactly (datatypes, language tags, several values, qualified-name values,
bundles, an identifier that is both an Entity and an Agent, relations with an absent
end or of a kind ProvKB has no relationship type for, several relations between the
same ends), the node or relationship that represents it keeps its records as
PROV-JSON text written by prov (`Prop.PROV_RECORDS`), with a digest of its other
properties (`Prop.PROV_RECORDS_OF`). Export uses the records while the digest still
matches, so a later change of the properties is never hidden by a stale copy.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from prov.identifier import QualifiedName
from prov.model import ProvBundle, ProvDocument, ProvRecord

from ..ontology import Prop

EXACT_PROPS = frozenset({Prop.PROV_RECORDS, Prop.PROV_RECORDS_OF})
_NOT_DIGESTED = EXACT_PROPS | {Prop.ID}  # the id is the node's key, not a property of it

Placed = tuple[QualifiedName | None, ProvRecord]  # (bundle id or None, record)


def digest(props: Mapping[str, Any]) -> str:
    """A digest of stored properties (the id and the exact-record properties left out)."""
    plain = {k: v for k, v in props.items() if k not in _NOT_DIGESTED and v is not None}
    text = json.dumps(plain, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _copy_into(bundle: ProvBundle, record: ProvRecord) -> None:
    for namespace in record.bundle.namespaces:
        bundle.add_namespace(namespace)
    if record.bundle.get_default_namespace() is not None:
        bundle.set_default_namespace(record.bundle.get_default_namespace().uri)
    bundle.new_record(record.get_type(), record.identifier, list(record.attributes))


def fragment(records: Iterable[Placed]) -> str:
    """PROV-JSON text of some records, each in its bundle (None: the document)."""
    doc = ProvDocument()
    bundles: dict[QualifiedName, ProvBundle] = {}
    for bundle_id, record in records:
        target: ProvBundle = doc
        if bundle_id is not None:
            if bundle_id not in bundles:
                bundles[bundle_id] = doc.bundle(bundle_id)
            target = bundles[bundle_id]
        _copy_into(target, record)
    return doc.serialize(format="json")


def read_fragment(text: str) -> ProvDocument:
    """The records of `fragment` text."""
    return ProvDocument.deserialize(source=io.BytesIO(text.encode("utf-8")), format="json")


def exact_records(props: Mapping[str, Any]) -> ProvDocument | None:
    """The exact records kept on a node or relationship, if still valid for its props."""
    text = props.get(Prop.PROV_RECORDS)
    if not isinstance(text, str) or props.get(Prop.PROV_RECORDS_OF) != digest(props):
        return None
    try:
        return read_fragment(text)
    except Exception:  # noqa: BLE001 - e.g. cut by the value size limit: the natural form
        return None


def attach(props: dict[str, Any], records: Iterable[Placed]) -> None:
    """Keep `records` on a record's (encoded) properties, with their digest."""
    props[Prop.PROV_RECORDS_OF] = digest(props)
    props[Prop.PROV_RECORDS] = fragment(records)


class Merger:
    """Adds kept records to an export document, restoring their bundles."""

    def __init__(self, doc: ProvDocument) -> None:
        self.doc = doc
        self.bundles: dict[QualifiedName, ProvBundle] = {}

    def _bundle(self, identifier: QualifiedName) -> ProvBundle:
        if identifier not in self.bundles:
            self.bundles[identifier] = self.doc.bundle(identifier)
        return self.bundles[identifier]

    def add(self, kept: ProvDocument) -> None:
        """Every record of `kept` (and of its bundles) into the document."""
        for record in kept.get_records():
            _copy_into(self.doc, record)
        for bundle in kept.bundles:
            target = self._bundle(bundle.identifier)
            for record in bundle.get_records():
                _copy_into(target, record)
