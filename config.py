"""Where the knowledge base lives and how to reach it, resolved when asked (never at import).

Every setting is taken from the first of these layers that gives it (`LAYERS`), setting
by setting:

1. an argument of `resolve_settings` (the CLI's `--store`, a `Store(...)` override);
2. the environment: `PROVKB_<NAME>` (`SOURCES` names each variable);
3. the TOML config file `PROVKB_CONFIG` (default `~/.config/provkb/config.toml`),
   table `[store]`, key `<name>`;
4. the default (`DEFAULT_*`).

An empty environment variable counts as not set. One rule crosses settings: an explicit
`store` argument means the embedded store in that folder, so `PROVKB_URI` and the file's
`uri` are ignored then (only a `uri` argument still counts). A config file that holds a
password must not be readable by group or others.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

DEFAULT_HOME = ".provkb"
DEFAULT_USER = "neo4j"
DEFAULT_CONSOLE_TIMEOUT_S = 30.0  # the read-only console's time limit per query
DEFAULT_CONSOLE_ROWS = 1000  # and the rows it returns at most

LAYERS = ("argument", "environment", "config file", "default")  # first one given wins
# setting -> (environment variable, config file key)
SOURCES: dict[str, tuple[str, str]] = {
    name: (f"PROVKB_{name.upper()}", name)
    for name in (
        "home",
        "uri",
        "user",
        "password",
        "database",
        "console_timeout",
        "console_rows",
        "console_user",
        "console_password",
    )
}


@dataclass(frozen=True)
class Settings:
    """Resolved connection settings. `uri` None means the embedded store in `home`."""

    home: Path
    uri: str | None = None
    user: str = DEFAULT_USER
    password: str | None = None
    database: str | None = None
    console_timeout: float = DEFAULT_CONSOLE_TIMEOUT_S
    console_rows: int = DEFAULT_CONSOLE_ROWS
    # A Neo4j server's account for the read-only console (Enterprise: one with only the
    # reader role); None: the console uses `user`. The embedded store has its own.
    console_user: str | None = None
    console_password: str | None = None

    @property
    def embedded(self) -> bool:
        """True when ProvKB runs its own local server in `home`."""
        return self.uri is None

    def describe(self) -> str:
        """A one-line description without credentials."""
        return f"embedded store in {self.home}" if self.embedded else f"server {self.uri}"

    def __repr__(self) -> str:  # never show the password
        return f"Settings(home={str(self.home)!r}, uri={self.uri!r}, user={self.user!r})"


def _config_file() -> Path:
    explicit = os.environ.get("PROVKB_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return Path("~/.config/provkb/config.toml").expanduser()


def _read_config(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    section = data.get("store", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [store] must be a table")
    secret = "password" in section or "console_password" in section
    if secret and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"config file {path} holds a password but is readable by others; run: chmod 600 {path}"
        )
    return section


def resolve_settings(
    store: str | os.PathLike | None = None,
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> Settings:
    """Resolve every setting from the first layer that gives it: arguments, then
    environment, then config file, then defaults (see the module docstring)."""
    file_cfg = _read_config(_config_file())
    env = os.environ
    arguments = {"home": store, "uri": uri, "user": user, "password": password}
    arguments["database"] = database

    def pick(name: str):
        """The setting `name` from the first layer that gives it (None: the default)."""
        variable, key = SOURCES[name]
        if arguments.get(name) is not None:
            return arguments[name]
        if env.get(variable):
            return env[variable]
        return file_cfg.get(key)

    home_value = pick("home") or DEFAULT_HOME
    # An explicit store means the embedded store there, whatever the environment says.
    chosen_uri = uri if store is not None else pick("uri")
    return Settings(
        home=Path(home_value).expanduser().resolve(),
        uri=chosen_uri or None,
        user=pick("user") or DEFAULT_USER,
        password=pick("password"),
        database=pick("database"),
        console_timeout=_positive(
            pick("console_timeout"), "PROVKB_CONSOLE_TIMEOUT", float, DEFAULT_CONSOLE_TIMEOUT_S
        ),
        console_rows=_positive(
            pick("console_rows"), "PROVKB_CONSOLE_ROWS", int, DEFAULT_CONSOLE_ROWS
        ),
        console_user=pick("console_user"),
        console_password=pick("console_password"),
    )


def _positive(value, name: str, kind: type, default):
    """A positive number setting (seconds, rows), or `default` when not set."""
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0 or isinstance(value, bool):
        raise ConfigError(
            f"{name} (console_* in the config file) must be a positive number, got {value!r}"
        )
    return number
