"""Study spaces typed as text (`--range`, `--values`, `--add`, the Compare page's form):
what is accepted, and every refusal names the option and the text."""

from __future__ import annotations

import pytest

from provkb.errors import ProvKBError
from provkb.kb.study.space_text import parse_added, parse_ranges


def test_ranges_values_and_added_entries() -> None:
    assert parse_ranges(["lr=0.01:0.05:0.01"], ["batch_size=16,32"]) == {
        "lr": {"range": [0.01, 0.05, 0.01]},
        "batch_size": {"values": [16, 32]},
    }
    assert parse_added(["momentum=0.5:0.9:0.1", "opt=adam,sgd"]) == {
        "momentum": {"range": [0.5, 0.9, 0.1]},
        "opt": {"values": ["adam", "sgd"]},
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_ranges(["lr=0:1:0.1"], ["lr=1,2"]), "lr is given as both --range"),
        (lambda: parse_ranges(["lr=0:1"], None), "--range lr=0:1: give start:end:step"),
        (lambda: parse_ranges(["lr=a:b:c"], None), "give start:end:step"),
        (lambda: parse_ranges(None, None), "give at least one --range"),
        (lambda: parse_added(["x="]), "--add 'x=' is not name=start:end:step"),
        (lambda: parse_added(["=1,2"]), "--add '=1,2' is not"),
        (lambda: parse_added(["x=1", "x=2"]), "--add names 'x' twice"),
        (lambda: parse_added(["x=1:2"]), "--add x=1:2: give start:end:step"),
    ],
)
def test_bad_text_is_refused_with_the_option_named(call, message: str) -> None:
    with pytest.raises(ProvKBError, match=message.replace("(", r"\(")):
        call()
