"""The format registry (kb/formats.py): one table for export, import, the CLI and the app."""

from __future__ import annotations

import pytest
from prov.model import ProvDocument

from provkb.errors import ExportError, ProvImportError, UnknownFormat
from provkb.kb import formats


def test_every_format_is_found_by_name_alias_and_extension() -> None:
    for fmt in formats.FORMATS.values():
        assert formats.get(fmt.name) is fmt
        assert formats.get(fmt.name.upper()) is fmt
        for alias in fmt.aliases:
            assert formats.get(alias) is fmt
        for ext in fmt.extensions:
            assert formats.for_path(f"some/file{ext.upper()}") is fmt
        assert fmt.mime and fmt.label and fmt.scopes == formats.ALL_SCOPES
    assert formats.for_path("kb.provjsonld").name == "provjsonld"
    assert formats.for_path("kb.provx", "import").name == "provxml"


def test_unknown_names_and_extensions_name_the_known_ones() -> None:
    with pytest.raises(UnknownFormat, match="unknown export format 'rtf'.*provjsonld"):
        formats.export_format("rtf")
    with pytest.raises(UnknownFormat, match="unknown import format 'svg'.*export only"):
        formats.import_format("svg")
    with pytest.raises(UnknownFormat, match=r"from its suffix.*\.ttl.*\(provjson"):
        formats.for_path("notes.txt")
    with pytest.raises(UnknownFormat, match="from its suffix") as caught:
        formats.for_path("diagram.png", "import")
    assert ", .png" not in str(caught.value) and ".svg" not in str(caught.value)
    # callers of export and of import catch their own error types
    assert issubclass(UnknownFormat, ExportError) and issubclass(UnknownFormat, ProvImportError)


def test_every_readable_format_reads_what_it_writes() -> None:
    doc = ProvDocument()
    doc.set_default_namespace("https://example.org/")
    doc.wasGeneratedBy("e", "a", "2024-01-02T03:04:05+00:00")
    assert set(formats.IMPORT_FORMATS) == {n for n, f in formats.FORMATS.items() if f.readable}
    for name in formats.IMPORT_FORMATS:
        fmt = formats.FORMATS[name]
        assert fmt.reader(fmt.writer(doc)) == doc, name
    for name in ("dot", "svg"):
        assert formats.FORMATS[name].writer(doc)
    assert formats.FORMATS["png"].writer(doc).startswith(b"\x89PNG")
