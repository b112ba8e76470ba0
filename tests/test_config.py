"""Configuration precedence (config.py): arguments, then environment, then the config file
(`PROVKB_CONFIG`, section `[store]`), then the defaults; per setting. Also through the
CLI (`--store` is an argument) in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provkb import config as config_module
from provkb.config import (
    DEFAULT_CONSOLE_ROWS,
    DEFAULT_CONSOLE_TIMEOUT_S,
    DEFAULT_HOME,
    DEFAULT_USER,
    Settings,
    resolve_settings,
)
from provkb.errors import ConfigError

# setting: (environment variable, config file key)
SOURCES = {
    "uri": ("PROVKB_URI", "uri"),
    "user": ("PROVKB_USER", "user"),
    "password": ("PROVKB_PASSWORD", "password"),
    "database": ("PROVKB_DATABASE", "database"),
    "home": ("PROVKB_HOME", "home"),
    "console_timeout": ("PROVKB_CONSOLE_TIMEOUT", "console_timeout"),
    "console_rows": ("PROVKB_CONSOLE_ROWS", "console_rows"),
    "console_user": ("PROVKB_CONSOLE_USER", "console_user"),
    "console_password": ("PROVKB_CONSOLE_PASSWORD", "console_password"),
}
FILE_TEXT = """[store]
uri = "bolt://file:7687"
user = "file-user"
password = "file-password"
database = "filedb"
home = "{home}"
console_timeout = 7.5
console_rows = 70
console_user = "file-reader"
console_password = "file-reader-password"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No PROVKB_* setting in the environment; PROVKB_CONFIG names a private file that
    sets every key (its `home` is tmp_path/file-home)."""
    for variable, _ in SOURCES.values():
        monkeypatch.delenv(variable, raising=False)
    path = tmp_path / "config.toml"
    path.write_text(FILE_TEXT.format(home=tmp_path / "file-home"))
    path.chmod(0o600)
    monkeypatch.setenv("PROVKB_CONFIG", str(path))
    return path


ENV = {
    "PROVKB_URI": "bolt://env:7687",
    "PROVKB_USER": "env-user",
    "PROVKB_PASSWORD": "env-password",
    "PROVKB_DATABASE": "envdb",
    "PROVKB_CONSOLE_TIMEOUT": "3",
    "PROVKB_CONSOLE_ROWS": "30",
    "PROVKB_CONSOLE_USER": "env-reader",
    "PROVKB_CONSOLE_PASSWORD": "env-reader-password",
}


def test_every_setting_has_its_variable_and_file_key() -> None:
    assert config_module.SOURCES == SOURCES
    assert config_module.LAYERS == ("argument", "environment", "config file", "default")


def connection(s: Settings) -> tuple[str | None, str, str | None, str | None]:
    return s.uri, s.user, s.password, s.database


def test_without_any_source_the_defaults_apply(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVKB_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.chdir(tmp_path)
    s = resolve_settings()
    assert connection(s) == (None, DEFAULT_USER, None, None)
    assert s.embedded and s.home == (tmp_path / DEFAULT_HOME).resolve()
    assert (s.console_timeout, s.console_rows) == (DEFAULT_CONSOLE_TIMEOUT_S, DEFAULT_CONSOLE_ROWS)
    assert (s.console_user, s.console_password) == (None, None)


def test_the_file_sets_what_nothing_else_does(config: Path, tmp_path: Path) -> None:
    s = resolve_settings()
    assert connection(s) == ("bolt://file:7687", "file-user", "file-password", "filedb")
    assert s.home == tmp_path / "file-home" and not s.embedded
    assert (s.console_timeout, s.console_rows) == (7.5, 70)
    assert (s.console_user, s.console_password) == ("file-reader", "file-reader-password")


def test_the_environment_overrides_the_file(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable, value in {**ENV, "PROVKB_HOME": str(tmp_path / "env-home")}.items():
        monkeypatch.setenv(variable, value)
    s = resolve_settings()
    assert connection(s) == ("bolt://env:7687", "env-user", "env-password", "envdb")
    assert s.home == tmp_path / "env-home"
    assert (s.console_timeout, s.console_rows) == (3.0, 30)
    assert (s.console_user, s.console_password) == ("env-reader", "env-reader-password")


@pytest.mark.parametrize("setting", ["uri", "user", "password", "database"])
def test_each_variable_overrides_only_its_own_setting(
    config: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    variable, _ = SOURCES[setting]
    monkeypatch.setenv(variable, ENV[variable])
    s = resolve_settings()
    from_file = {"uri": "bolt://file:7687", "user": "file-user"}
    from_file |= {"password": "file-password", "database": "filedb"}
    assert {k: getattr(s, k) for k in from_file} == {**from_file, setting: ENV[variable]}


def test_arguments_override_the_environment_and_the_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in ENV.items():
        monkeypatch.setenv(variable, value)
    s = resolve_settings(uri="bolt://arg:7687", user="arg-user", password="arg-pw", database="a")
    assert connection(s) == ("bolt://arg:7687", "arg-user", "arg-pw", "a")
    # what the arguments leave open still comes from the environment
    assert (s.console_timeout, s.console_user) == (3.0, "env-reader")


def test_an_explicit_store_is_the_embedded_store_there_whatever_else_says(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVKB_URI", ENV["PROVKB_URI"])
    monkeypatch.setenv("PROVKB_HOME", str(tmp_path / "env-home"))
    s = resolve_settings(store=tmp_path / "arg-home")
    assert s.embedded and s.uri is None and s.home == tmp_path / "arg-home"
    both = resolve_settings(store=tmp_path / "arg-home", uri="bolt://arg:7687")
    assert both.uri == "bolt://arg:7687"  # an explicit uri argument still wins


def test_an_empty_uri_argument_means_the_embedded_store(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVKB_URI", ENV["PROVKB_URI"])
    assert resolve_settings(uri="").embedded


def test_a_bad_number_names_its_setting_from_either_source(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVKB_CONSOLE_ROWS", "many")
    with pytest.raises(ConfigError, match=r"PROVKB_CONSOLE_ROWS .*positive number, got 'many'"):
        resolve_settings()
    monkeypatch.delenv("PROVKB_CONSOLE_ROWS")
    config.write_text("[store]\nconsole_timeout = -1\n")
    with pytest.raises(ConfigError, match=r"PROVKB_CONSOLE_TIMEOUT \(console_\* in the config"):
        resolve_settings()


def test_an_unreadable_file_is_a_clear_error_naming_it(config: Path) -> None:
    config.write_text("[store\nuri = ")
    with pytest.raises(ConfigError, match=f"cannot read config file {config}"):
        resolve_settings()
    config.write_text('store = "not a table"\n')
    with pytest.raises(ConfigError, match=r"\[store\] must be a table"):
        resolve_settings()


def _status(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "provkb", "status", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def test_the_cli_follows_the_same_precedence(config: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")}
    env["PROVKB_CONFIG"] = str(config)
    assert _status(env) == "knowledge base: server bolt://file:7687"
    env["PROVKB_URI"] = ENV["PROVKB_URI"]
    assert _status(env) == "knowledge base: server bolt://env:7687"
    store = tmp_path / "arg-home"
    assert _status(env, "--store", str(store)) == f"knowledge base: embedded store in {store}"
