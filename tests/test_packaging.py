"""The distribution ships every subpackage: pyproject's package list is complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["tool"]["setuptools"]


def test_every_subpackage_folder_is_listed() -> None:
    config = _config()
    listed = set(config["packages"])
    mapped = {name: ROOT / folder for name, folder in config["package-dir"].items()}
    found = set()
    for name, folder in mapped.items():
        if name == "provkb":
            continue
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    missing = sorted(found - listed)
    assert not missing, f"subpackages missing from pyproject's packages: {missing}"
    assert all(pkg in found or pkg == "provkb" for pkg in listed), sorted(listed - found)
