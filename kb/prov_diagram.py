"""PROV diagrams: `prov.dot.prov_to_dot` rendered by the Graphviz `dot` binary, with
short captions (kind and name; the full id is the node's tooltip and link)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prov.constants import PROV_TYPE
from prov.model import Literal, ProvDocument, ProvElement, QualifiedName

from ..errors import ExportError

if TYPE_CHECKING:
    import pydot

DIAGRAM_VALUE_CHARS = 200  # longer texts are cut in diagrams (Graphviz labels: < 16 KB)
CAPTION_CHARS = 30  # a node's caption line: kind, then name
NAME_ATTRIBUTES = ("name", "hostname", "path")  # local names that say what an element is
ID_TAIL_CHARS = 10  # an element without a name: the last characters of its id
# PROV relations point from effect to cause: ranked right to left, causes come first.
TIME_LEFT_TO_RIGHT = "RL"


def _diagram_value(value: Any) -> Any:
    text = value.value if isinstance(value, Literal) else value
    if isinstance(text, str) and len(text) > DIAGRAM_VALUE_CHARS:
        return text[:DIAGRAM_VALUE_CHARS] + "…"
    return value


def diagram_document(doc: ProvDocument) -> ProvDocument:
    """`doc` with long text values cut to `DIAGRAM_VALUE_CHARS`: a diagram shows every
    attribute in its node's label, and Graphviz refuses labels over 16 KB."""
    out = ProvDocument()
    for namespace in doc.namespaces:
        out.add_namespace(namespace)
    for record in doc.get_records():
        attributes = [(key, _diagram_value(value)) for key, value in record.attributes]
        out.new_record(record.get_type(), record.identifier, attributes)
    return out


def _local(value: Any) -> str:
    return value.localpart if isinstance(value, QualifiedName) else str(value)


def caption(element: ProvElement) -> str:
    """Two short lines (DOT's `\\n`) for an element: its kind (its first `prov:type`, else entity /
    activity / agent) and its name (a name-like attribute, the epoch, else its id's tail)."""
    attributes = {(_local(k), _local(v)) for k, v in element.attributes}
    types = [_local(v).rsplit(":", 1)[-1] for v in element.get_attribute(PROV_TYPE)]
    kind = sorted(types)[0] if types else element.get_type().localpart.lower()
    values = {key: value for key, value in sorted(attributes)}
    name = next((values[a] for a in NAME_ATTRIBUTES if a in values), None)
    if name is None and "epoch" in values:
        name = f"epoch {values['epoch']}"
    if name is None:
        tail = _local(element.identifier).rstrip("/").rsplit("/", 1)[-1]
        name = tail if len(tail) <= ID_TAIL_CHARS else tail[:ID_TAIL_CHARS] + "…"
    name = name.rsplit("/", 1)[-1] if "/" in name else name
    if "value" in values and any(a in values for a in NAME_ATTRIBUTES):
        name = f"{name} = {values['value']}"
    lines = [kind, name]
    return "\\n".join(t if len(t) <= CAPTION_CHARS else t[: CAPTION_CHARS - 1] + "…" for t in lines)


def _short_captions(dot: pydot.Dot, doc: ProvDocument) -> None:
    """Replace each element node's label (its full id) by `caption`, the id its tooltip."""
    by_uri = {
        record.identifier.uri: record
        for record in doc.get_records(ProvElement)
        if record.identifier is not None
    }
    for node in dot.get_nodes():
        uri = (node.get("URL") or "").strip('"')
        record = by_uri.get(uri)
        if record is not None:
            node.set("label", '"' + caption(record).replace('"', "'") + '"')
            node.set("tooltip", '"' + str(record.identifier).replace('"', "'") + '"')


def diagram_dot(
    doc: ProvDocument, attributes: bool = False, direction: str = TIME_LEFT_TO_RIGHT
) -> pydot.Dot:
    """The document as a `prov.dot` graph with short captions, time left to right;
    `attributes`: each element's and relation's attributes as notes (much larger)."""
    from prov.dot import prov_to_dot

    source = diagram_document(doc)
    dot = prov_to_dot(
        source,
        direction=direction,
        show_element_attributes=attributes,
        show_relation_attributes=attributes,
    )
    _short_captions(dot, source)
    return dot


def write_diagram(
    doc: ProvDocument, output: str, attributes: bool = False, direction: str = TIME_LEFT_TO_RIGHT
) -> str | bytes:
    """The document's diagram: DOT text (`dot`), SVG text or PNG bytes."""
    dot = diagram_dot(doc, attributes=attributes, direction=direction)
    if output == "dot":
        return dot.to_string()
    try:
        data = dot.create(prog="dot", format=output)
    except FileNotFoundError as exc:
        raise ExportError("the Graphviz `dot` program is not installed") from exc
    except Exception as exc:  # pydot reports Graphviz failures as plain exceptions
        raise ExportError(f"Graphviz could not render {output}: {exc}") from exc
    return data if output == "png" else data.decode("utf-8")
