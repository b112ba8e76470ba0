"""Copies of a PROV document with some qualified names renamed (kb.prov_xml, kb.prov_rdf)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prov.identifier import QualifiedName
from prov.model import ProvBundle, ProvDocument, ProvRecord

Rename = Callable[[QualifiedName], QualifiedName]
Attribute = tuple[QualifiedName, Any]
Recode = Callable[[Attribute], Attribute]


def _same(attribute: Attribute) -> Attribute:
    return attribute


def _value(record: ProvRecord, key: QualifiedName, value: Any, rename: Rename, ids: bool) -> Any:
    if not isinstance(value, QualifiedName):
        return value
    if ids and key not in record.FORMAL_ATTRIBUTES:
        return value  # e.g. a prov:type value: vocabulary, not an instance
    return rename(value)


def _copy(
    source: ProvBundle, target: ProvBundle, rename: Rename, ids: bool, recode: Recode
) -> None:
    for namespace in source.namespaces:
        target.add_namespace(namespace)
    if source.get_default_namespace() is not None:
        target.set_default_namespace(source.get_default_namespace().uri)
    for record in source.get_records():
        identifier = record.identifier
        attributes = [recode((k, _value(record, k, v, rename, ids))) for k, v in record.attributes]
        target.new_record(
            record.get_type(),
            rename(identifier) if identifier is not None else None,
            attributes,
        )


def renamed(
    doc: ProvDocument, rename: Rename, ids_only: bool = False, recode: Recode = _same
) -> ProvDocument:
    """A copy of `doc` with identifiers and qualified-name values passed through `rename`.

    `ids_only`: only identifiers and the references of relations (formal attributes),
    not other attribute values (`prov:type` names vocabulary). `recode` then maps each
    (attribute, value) pair."""
    out = ProvDocument()
    _copy(doc, out, rename, ids_only, recode)
    for bundle in doc.bundles:
        _copy(bundle, out.bundle(rename(bundle.identifier)), rename, ids_only, recode)
    return out
