"""The one registry of PROV file formats, for export, import, the CLI and the app.

Like rdflib's plugin registry and prov's serializer registry: each `Format` has a
name, its file extensions, MIME type, a reader (None: export only), a writer and
the scopes it can export. Look formats up by name (`get`, `export_format`,
`import_format`) or by a file's extension (`for_path`); an unknown one raises
`UnknownFormat` naming the known ones.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path

from prov.model import ProvDocument

from ..errors import UnknownFormat
from .prov_diagram import write_diagram
from .prov_rdf import read_rdf, write_rdf
from .prov_xml import read_xml, write_xml

Reader = Callable[[str], ProvDocument]
Writer = Callable[[ProvDocument], "str | bytes"]


class Scope(StrEnum):
    """What an export covers."""

    RUN = "run"
    EXPERIMENT = "experiment"
    KNOWLEDGE_BASE = "knowledge base"


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class Format:
    """A PROV file format: how it is named, recognised, read and written."""

    name: str
    label: str  # shown to people ("PROV-JSON")
    extensions: tuple[str, ...]  # ".json", ...; the first one is written
    mime: str
    writer: Writer
    reader: Reader | None = None  # None: export only (diagrams)
    binary: bool = False
    scopes: frozenset[Scope] = ALL_SCOPES
    aliases: tuple[str, ...] = ()
    family: str = "prov"  # "prov" (prov's serializers), "rdf" (PROV-O) or "diagram"

    @property
    def suffix(self) -> str:
        """The extension an exported file gets."""
        return self.extensions[0]

    @property
    def readable(self) -> bool:
        """True if ProvKB imports this format."""
        return self.reader is not None


def _prov_writer(serializer: str, doc: ProvDocument) -> str:
    return doc.serialize(format=serializer)


def _prov_reader(serializer: str, text: str) -> ProvDocument:
    source = io.BytesIO(text.encode("utf-8"))
    return ProvDocument.deserialize(source=source, format=serializer)


def _prov(name: str, label: str, serializer: str, extensions: tuple[str, ...], mime: str, **kw):
    return Format(
        name,
        label,
        extensions,
        mime,
        writer=partial(_prov_writer, serializer),
        reader=partial(_prov_reader, serializer),
        **kw,
    )


def _rdf(name: str, label: str, rdf_format: str, extensions: tuple[str, ...], mime: str, **kw):
    return Format(
        name,
        label,
        extensions,
        mime,
        writer=partial(write_rdf, rdf_format=rdf_format),
        reader=partial(read_rdf, rdf_format=rdf_format),
        family="rdf",
        **kw,
    )


def _diagram(name: str, label: str, extensions: tuple[str, ...], mime: str, **kw):
    return Format(
        name,
        label,
        extensions,
        mime,
        writer=partial(write_diagram, output=name),
        family="diagram",
        **kw,
    )


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        _prov("provjson", "PROV-JSON", "json", (".json",), "application/json", aliases=("json",)),
        _prov("provn", "PROV-N", "provn", (".provn",), "text/provenance-notation"),
        Format(
            "provxml",
            "PROV-XML",
            (".xml", ".provx"),
            "application/provenance+xml",
            writer=write_xml,
            reader=read_xml,
            aliases=("xml",),
        ),
        _prov("provjsonld", "PROV-JSONLD", "jsonld", (".provjsonld",), "application/ld+json"),
        _rdf("turtle", "Turtle (PROV-O)", "turtle", (".ttl",), "text/turtle", aliases=("ttl",)),
        _rdf("trig", "TriG (PROV-O)", "trig", (".trig",), "application/trig"),
        _rdf(
            "jsonld",
            "JSON-LD (PROV-O)",
            "json-ld",
            (".jsonld",),
            "application/ld+json",
            aliases=("json-ld",),
        ),
        _diagram("dot", "DOT diagram (Graphviz)", (".dot", ".gv"), "text/vnd.graphviz"),
        _diagram("svg", "SVG diagram (Graphviz)", (".svg",), "image/svg+xml"),
        _diagram("png", "PNG diagram (Graphviz)", (".png",), "image/png", binary=True),
    )
}
_BY_ALIAS = {alias: f for f in FORMATS.values() for alias in (f.name, *f.aliases)}
_BY_EXTENSION = {ext: f for f in FORMATS.values() for ext in f.extensions}

EXPORT_FORMATS: tuple[str, ...] = tuple(FORMATS)
IMPORT_FORMATS: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.readable)


def get(name: str, purpose: str = "") -> Format:
    """The format named `name` (or an alias: json, ttl, xml, json-ld; any case).

    `purpose` ("export", "import" or "") only words the error."""
    found = _BY_ALIAS.get(str(name).strip().lower())
    if found is None:
        known = IMPORT_FORMATS if purpose == "import" else EXPORT_FORMATS
        what = f"{purpose} format" if purpose else "format"
        raise UnknownFormat(f"unknown {what} {name!r}; choose one of {', '.join(known)}")
    return found


def export_format(name: str) -> Format:
    """A format ProvKB writes (every registered one)."""
    return get(name, "export")


def import_format(name: str) -> Format:
    """A format ProvKB reads; UnknownFormat for export-only ones (diagrams)."""
    found = get(name, "import")
    if not found.readable:
        raise UnknownFormat(
            f"unknown import format {name!r}: {found.label} is export only; choose one "
            f"of {', '.join(IMPORT_FORMATS)}"
        )
    return found


def for_path(path: str | Path, purpose: str = "") -> Format:
    """The format of a file from its extension (for import: readable ones only)."""
    path = Path(path)
    found = _BY_EXTENSION.get(path.suffix.lower())
    readable = purpose != "import" or (found is not None and found.readable)
    if found is None or not readable:
        pool = [f for f in FORMATS.values() if purpose != "import" or f.readable]
        extensions = sorted(ext for f in pool for ext in f.extensions)
        names = ", ".join(f.name for f in pool)
        raise UnknownFormat(
            f"cannot tell the PROV format of {path.name!r} from its suffix; use one of "
            f"{', '.join(extensions)} or pass the format ({names})"
        )
    return found


__all__ = [
    "ALL_SCOPES",
    "EXPORT_FORMATS",
    "FORMATS",
    "IMPORT_FORMATS",
    "Format",
    "Scope",
    "export_format",
    "for_path",
    "get",
    "import_format",
]
