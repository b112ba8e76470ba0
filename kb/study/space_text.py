"""Study spaces written as text: `NAME=start:end:step` ranges and `NAME=v1,v2` values.

The CLI's `study start --range/--values`, `study next --add` and the Compare page's
next-session form read them here, so they accept the same text."""

from __future__ import annotations

from typing import Any

from ...errors import ProvKBError
from ...typed_text import json_or_text, parse_pairs


def listed(text: str) -> list[Any]:
    """`v1,v2,...` as values (each JSON when it parses)."""
    return [json_or_text(v.strip()) for v in text.split(",")]


def parse_ranges(
    ranges: list[str] | None, values: list[str] | None, option: str = "--range"
) -> dict[str, Any]:
    """A space from `name=start:end:step` ranges and `name=v1,v2` value lists."""
    space: dict[str, Any] = {}
    for name, text in parse_pairs(ranges, option, example="name=start:end:step").items():
        parts = text.split(":")
        numbers = [json_or_text(p) for p in parts]
        if len(parts) != 3 or not all(
            isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
        ):
            raise ProvKBError(f"{option} {name}={text}: give start:end:step, e.g. 0.03:0.07:0.01")
        space[name] = {"range": numbers}
    given = parse_pairs(
        values, "--values", convert=listed, example="name=v1,v2,...", need_value=True
    )
    both = sorted(set(space) & set(given))
    if both:
        raise ProvKBError(f"{both[0]} is given as both {option} and --values: give one")
    space.update({name: {"values": values_} for name, values_ in given.items()})
    if not space:
        raise ProvKBError("give at least one --range name=start:end:step or --values name=a,b")
    return space


def parse_added(pairs: list[str] | None) -> dict[str, Any]:
    """`--add NAME=start:end:step` (a range) or `NAME=v1,v2,...` (values)."""
    out: dict[str, Any] = {}
    pairs_ = parse_pairs(pairs, "--add", example="name=start:end:step", need_value=True)
    for name, text in pairs_.items():
        if ":" in text:
            out.update(parse_ranges([f"{name}={text}"], None, option="--add"))
        else:
            out[name] = {"values": listed(text)}
    return out
