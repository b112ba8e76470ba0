"""PROV-XML through prov's XML serializer, with identifiers the W3C schema accepts.

PROV-XML writes identifiers and references as `xs:QName`, whose local part is an XML
NCName; ProvKB ids have `/` (`provkb:run/<id>/epoch/3`). On writing, every qualified
name whose local part is no NCName (or holds an escape) is encoded with
`kb.export.local_name` (`/` -> `_x002F_`, XML's own escape for names); on reading,
every local part holding such an escape is decoded back (`property_name`).

The W3C schema knows only XSD datatypes, so an attribute of ProvKB's own datatype
`provkb:json` (the JSON text of a list property) is written as a plain string under
its name with the suffix `_xjson` (`provkb:shape_xjson`: a suffix `local_name` never
makes, as it escapes every `_x`), and read back as the `provkb:json` literal of
`provkb:shape`; prov's own reader sees the string.
"""

from __future__ import annotations

import io
import re
from typing import Any

from prov.identifier import Namespace, QualifiedName
from prov.model import Literal, ProvDocument

from ..ontology import PROV_NS, PROVKB_NS, PROVKB_PREFIX
from .prov_names import local_name, property_name
from .prov_rename import renamed

_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
_ESCAPED = re.compile(r"_x[0-9A-F]{4,6}_")
JSON_DATATYPE_URI = PROVKB_NS + "json"


def _encode_name(qn: QualifiedName) -> QualifiedName:
    local = qn.localpart
    if _NCNAME.fullmatch(local) and not _ESCAPED.search(local):
        return qn
    return qn.namespace[local_name(local)]


def _decode_name(qn: QualifiedName) -> QualifiedName:
    local = qn.localpart
    return qn.namespace[property_name(local)] if _ESCAPED.search(local) else qn


_JSON_SUFFIX = "_xjson"  # never made by local_name: it escapes every `_x` it is given


def _is_json(value: Any) -> bool:
    datatype = getattr(value, "datatype", None) if isinstance(value, Literal) else None
    return datatype is not None and datatype.uri == JSON_DATATYPE_URI


def _mark_json(attribute: tuple[QualifiedName, Any]) -> tuple[QualifiedName, Any]:
    """`provkb:shape` typed `provkb:json` -> `provkb:shape_xjson`, a plain string."""
    key, value = attribute
    if _is_json(value) and key.namespace.uri != PROV_NS:
        return key.namespace[key.localpart + _JSON_SUFFIX], value.value
    return attribute


def _unmark_json(attribute: tuple[QualifiedName, Any]) -> tuple[QualifiedName, Any]:
    """The inverse of `_mark_json`."""
    key, value = attribute
    local = key.localpart
    if local.endswith(_JSON_SUFFIX) and len(local) > len(_JSON_SUFFIX) and isinstance(value, str):
        datatype = QualifiedName(Namespace(PROVKB_PREFIX, PROVKB_NS), "json")
        return key.namespace[local[: -len(_JSON_SUFFIX)]], Literal(value, datatype)
    return attribute


def write_xml(doc: ProvDocument) -> str:
    """PROV-XML text of a document, identifiers encoded as NCName local parts and
    `provkb:json` values marked (valid against the W3C PROV-XML schema alone)."""
    return renamed(doc, _encode_name, recode=_mark_json).serialize(format="xml")


def read_xml(text: str) -> ProvDocument:
    """A PROV-XML document, encoded identifiers decoded, marked `provkb:json` restored."""
    doc = ProvDocument.deserialize(source=io.BytesIO(text.encode("utf-8")), format="xml")
    return renamed(doc, _decode_name, recode=_unmark_json)
