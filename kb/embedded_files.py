"""The files of an embedded store folder, shared by the server process and its clients."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import EmbeddedServerError
from .store_folder import FILE_MODE, secure_store

DATABASE_NAME = "provkb"
ROOT_USER = "root"
# ProvKB's own accounts (kb.embedded_server sets them up): a writer, and a reader for the
# console. Their names are random so that no other local process can name them, and so
# cannot lock them out (the engine locks an account for 30 s after 5 wrong passwords).
WRITER_PREFIX = "provkb_"
READER_PREFIX = "provkb_reader_"


def new_accounts() -> dict:
    """Fresh names and passwords for ProvKB's writer and reader accounts."""
    return {
        "user": WRITER_PREFIX + secrets.token_hex(8),
        "password": secrets.token_urlsafe(24),
        "reader_user": READER_PREFIX + secrets.token_hex(8),
        "reader_password": secrets.token_urlsafe(24),
    }


def write_json_atomically(path: Path, data: dict, mode: int = FILE_MODE) -> None:
    """Write JSON to `path` via a temporary file and rename, with file mode `mode`."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@dataclass(frozen=True)
class ServerFiles:
    """Paths inside a store folder (`home`)."""

    home: Path

    @property
    def credentials(self) -> Path:
        return self.home / "credentials.json"

    @property
    def info(self) -> Path:
        return self.home / "server.json"

    @property
    def lock(self) -> Path:
        return self.home / "server.lock"

    @property
    def ports(self) -> Path:
        """The ports of the last start (kept after a stop, to reuse them)."""
        return self.home / "ports.json"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def databases(self) -> Path:
        return self.home / "databases"

    def ensure_credentials(self) -> dict:
        """Read the credentials, generating them (mode 0600) on first use; a folder
        that still uses the engine's root gets ProvKB's own accounts instead."""
        secure_store(self.home)
        if not self.credentials.exists():
            data = {**new_accounts(), "token": secrets.token_urlsafe(24)}
            write_json_atomically(self.credentials, data, mode=0o600)
        credentials = self.read_credentials()
        if credentials["user"] == ROOT_USER or not credentials["reader_user"]:
            credentials = {**new_accounts(), "token": credentials["token"]}
            write_json_atomically(self.credentials, credentials, mode=0o600)
        return credentials

    def read_credentials(self) -> dict:
        """The stored credentials; a clear error when missing or unreadable."""
        try:
            data = json.loads(self.credentials.read_text(encoding="utf-8"))
            return {
                "user": data["user"],
                "password": data["password"],
                "token": data["token"],
                # None in a folder set up before the reader account existed
                "reader_user": data.get("reader_user"),
                "reader_password": data.get("reader_password"),
            }
        except (OSError, ValueError, KeyError) as exc:
            raise EmbeddedServerError(
                f"cannot read the store's credentials {self.credentials}: {exc}"
            ) from exc

    def read_info(self) -> dict | None:
        """What the running server published (ports, pid), or None."""
        return _read_json(self.info)

    def read_ports(self) -> dict:
        """The ports of the last start, or {}."""
        return _read_json(self.ports) or {}


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
