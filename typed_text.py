"""What people type: `name=value` pairs and values that are JSON when they parse.

Shared by the CLI's options and the app's forms, so both accept and refuse the same
text with the same messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .errors import ProvKBError


def parse_pairs(
    pairs: list[str] | None,
    option: str = "--param",
    convert: Callable[[str], Any] = str,
    example: str = "name=value",
    need_value: bool = False,
) -> dict[str, Any]:
    """`name=value` options as a dict (values through `convert`); ProvKBError naming
    the option when one is not `name=value` (`need_value`: with a value) or a name
    comes twice."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name or (need_value and not text.strip()):
            raise ProvKBError(f"{option} {pair!r} is not {example}")
        if name in out:
            raise ProvKBError(f"{option} names {name!r} twice")
        out[name] = convert(text if convert is str else text.strip())
    return out


def json_or_text(text: str) -> Any:
    """A value given as text: JSON when it parses (0.01, true, [1, 2]), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text
