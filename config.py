"""Where the knowledge base lives and how to reach it, resolved when asked (never at import).

Precedence: explicit arguments, then environment (`PROVKB_URI`, `PROVKB_USER`,
`PROVKB_PASSWORD`, `PROVKB_DATABASE`, `PROVKB_HOME`, `PROVKB_CONSOLE_TIMEOUT`,
`PROVKB_CONSOLE_ROWS`, `PROVKB_CONSOLE_USER`, `PROVKB_CONSOLE_PASSWORD`), then a TOML
config file (`PROVKB_CONFIG`, default `~/.config/provkb/config.toml`, section `[store]`;
keys without the `PROVKB_` prefix).
A config file that holds a password must not be readable by group or others.
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
    """Resolve settings from arguments, environment and config file."""
    file_cfg = _read_config(_config_file())
    env = os.environ

    def pick(arg, env_key, cfg_key):
        if arg is not None:
            return arg
        if env.get(env_key):
            return env[env_key]
        return file_cfg.get(cfg_key)

    home_value = pick(store, "PROVKB_HOME", "home") or DEFAULT_HOME
    # An explicit --store means the embedded store there, whatever the environment says.
    chosen_uri = uri if store is not None else pick(uri, "PROVKB_URI", "uri")
    return Settings(
        home=Path(home_value).expanduser().resolve(),
        uri=chosen_uri or None,
        user=pick(user, "PROVKB_USER", "user") or DEFAULT_USER,
        password=pick(password, "PROVKB_PASSWORD", "password"),
        database=pick(database, "PROVKB_DATABASE", "database"),
        console_timeout=_positive(
            pick(None, "PROVKB_CONSOLE_TIMEOUT", "console_timeout"),
            "PROVKB_CONSOLE_TIMEOUT",
            float,
            DEFAULT_CONSOLE_TIMEOUT_S,
        ),
        console_rows=_positive(
            pick(None, "PROVKB_CONSOLE_ROWS", "console_rows"),
            "PROVKB_CONSOLE_ROWS",
            int,
            DEFAULT_CONSOLE_ROWS,
        ),
        console_user=pick(None, "PROVKB_CONSOLE_USER", "console_user"),
        console_password=pick(None, "PROVKB_CONSOLE_PASSWORD", "console_password"),
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
