"""Property and identifier names as XML NCNames and Turtle PN_LOCALs, reversibly, and
the data namespace of exported instance IRIs."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..ontology import PROV_NS, PROVKB_DATA_NS, PROVKB_NS

DATA_NAMESPACE_VARIABLE = "PROVKB_DATA_NAMESPACE"

# Property names are data (`metric.<any Keras key>`), but an attribute's local part must
# be an XML NCName (PROV-XML element names) and a Turtle PN_LOCAL. `local_name` keeps
# ASCII letters, digits, `_`, `-` and inner dots and writes any other character as
# `_xHHHH_` (its code point in hex, XML's own escape for names); a `_` followed by `x`
# is escaped itself, so `property_name` always gives the name back.
_ESCAPE = re.compile(r"_x([0-9A-F]{4,6})_")
_KEPT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def local_name(name: str) -> str:
    """A property name as the local part of its attribute's qualified name."""
    out: list[str] = []
    last = len(name) - 1
    for i, char in enumerate(name):
        plain = (
            char in _KEPT
            and not (
                (char == "." and i == last)  # a PN_LOCAL never ends with a dot
                or (i == 0 and not (char.isalpha() or char == "_"))  # an NCName's first
                or (char == "_" and name[i + 1 : i + 2] == "x")
            )
        )
        out.append(char if plain else f"_x{ord(char):04X}_")
    return "".join(out)


def property_name(local: str) -> str:
    """The property name of an attribute's local part (the inverse of `local_name`)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), local)


def data_namespace() -> str:
    """The IRI base of exported instance ids (`provkb:run/x` -> `<base>run/x`).

    `PROVKB_DATA_NAMESPACE` (read when asked) or `PROVKB_DATA_NS`; an absolute IRI
    ending in `/` or `#`, distinct from the vocabulary namespaces (else ConfigError).
    """
    base = os.environ.get(DATA_NAMESPACE_VARIABLE, "").strip() or PROVKB_DATA_NS
    parts = urlsplit(base)
    if not (parts.scheme and base.endswith(("/", "#"))) or " " in base:
        raise ConfigError(
            f"{DATA_NAMESPACE_VARIABLE} must be an absolute IRI ending in / or #, got {base!r}"
        )
    if base in (PROVKB_NS, PROV_NS):
        raise ConfigError(
            f"{DATA_NAMESPACE_VARIABLE} must differ from the vocabulary namespace {base!r}"
        )
    return base


def data_namespaces() -> tuple[str, ...]:
    """The bases import maps back to `provkb:` ids: the configured one and the default."""
    return tuple(dict.fromkeys((data_namespace(), PROVKB_DATA_NS)))
