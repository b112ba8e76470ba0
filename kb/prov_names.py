"""Property and identifier names as XML NCNames and Turtle PN_LOCALs, reversibly."""

from __future__ import annotations

import re

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
