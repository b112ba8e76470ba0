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
        """Read the credentials, generating them (mode 0600) on first use."""
        secure_store(self.home)
        if not self.credentials.exists():
            write_json_atomically(
                self.credentials,
                {
                    "user": ROOT_USER,
                    "password": secrets.token_urlsafe(24),
                    "token": secrets.token_urlsafe(24),
                },
                mode=0o600,
            )
        return self.read_credentials()

    def read_credentials(self) -> dict:
        """The stored credentials; a clear error when missing or unreadable."""
        try:
            data = json.loads(self.credentials.read_text(encoding="utf-8"))
            return {"user": data["user"], "password": data["password"], "token": data["token"]}
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
