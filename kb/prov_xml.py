"""PROV-XML through prov's XML serializer, with identifiers the W3C schema accepts.

PROV-XML writes identifiers and references as `xs:QName`, whose local part is an XML
NCName; ProvKB ids have `/` (`provkb:run/<id>/epoch/3`). On writing, every qualified
name whose local part is no NCName (or holds an escape) is encoded with
`kb.export.local_name` (`/` -> `_x002F_`, XML's own escape for names); on reading,
every local part holding such an escape is decoded back (`property_name`).
"""

from __future__ import annotations

import io
import re
from typing import Any

from prov.identifier import QualifiedName
from prov.model import ProvBundle, ProvDocument

from .prov_names import local_name, property_name

_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
_ESCAPED = re.compile(r"_x[0-9A-F]{4,6}_")


def _encode_name(qn: QualifiedName) -> QualifiedName:
    local = qn.localpart
    if _NCNAME.fullmatch(local) and not _ESCAPED.search(local):
        return qn
    return qn.namespace[local_name(local)]


def _decode_name(qn: QualifiedName) -> QualifiedName:
    local = qn.localpart
    return qn.namespace[property_name(local)] if _ESCAPED.search(local) else qn


def _value(value: Any, rename) -> Any:
    return rename(value) if isinstance(value, QualifiedName) else value


def _copy(source: ProvBundle, target: ProvBundle, rename) -> None:
    for namespace in source.namespaces:
        target.add_namespace(namespace)
    if source.get_default_namespace() is not None:
        target.set_default_namespace(source.get_default_namespace().uri)
    for record in source.get_records():
        identifier = record.identifier
        attributes = [(key, _value(value, rename)) for key, value in record.attributes]
        target.new_record(
            record.get_type(),
            rename(identifier) if identifier is not None else None,
            attributes,
        )


def _renamed(doc: ProvDocument, rename) -> ProvDocument:
    out = ProvDocument()
    _copy(doc, out, rename)
    for bundle in doc.bundles:
        _copy(bundle, out.bundle(rename(bundle.identifier)), rename)
    return out


def write_xml(doc: ProvDocument) -> str:
    """PROV-XML text of a document, identifiers encoded as NCName local parts."""
    return _renamed(doc, _encode_name).serialize(format="xml")


def read_xml(text: str) -> ProvDocument:
    """A PROV-XML document, encoded identifiers decoded."""
    doc = ProvDocument.deserialize(source=io.BytesIO(text.encode("utf-8")), format="xml")
    return _renamed(doc, _decode_name)
