"""PROV diagrams: `prov.dot.prov_to_dot` rendered by the Graphviz `dot` binary."""

from __future__ import annotations

from typing import Any

from prov.model import Literal, ProvDocument

from ..errors import ExportError

DIAGRAM_VALUE_CHARS = 200  # longer texts are cut in diagrams (Graphviz labels: < 16 KB)


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


def write_diagram(doc: ProvDocument, output: str) -> str | bytes:
    """The document's diagram: DOT text (`dot`), SVG text or PNG bytes."""
    from prov.dot import prov_to_dot

    dot = prov_to_dot(diagram_document(doc))
    if output == "dot":
        return dot.to_string()
    try:
        data = dot.create(prog="dot", format=output)
    except FileNotFoundError as exc:
        raise ExportError("the Graphviz `dot` program is not installed") from exc
    except Exception as exc:  # pydot reports Graphviz failures as plain exceptions
        raise ExportError(f"Graphviz could not render {output}: {exc}") from exc
    return data if output == "png" else data.decode("utf-8")
