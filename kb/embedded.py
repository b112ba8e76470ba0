"""Start, find, reuse and stop the embedded ArcadeDB server of a store folder.

The server runs as its own background process so that training processes, the CLI and
the UI share it. A second process finds it through `server.json` in the folder (or,
when that is gone, through the lock the server holds on its database: see
`embedded_discovery`); a file lock keeps two processes from starting two servers, and
no process starts a server while a live one holds the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import EmbeddedServerError
from . import embedded_discovery as discovery
from .embedded_files import DATABASE_NAME, ServerFiles, write_json_atomically
from .store_folder import PRIVATE_UMASK, private_opener, secure_store

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServerInfo:
    """A running embedded server."""

    home: Path
    pid: int
    host: str
    bolt_port: int
    http_port: int
    control_port: int
    database: str
    started_at: float
    priority: str = "normal"  # CPU priority: idle, low or normal (embedded_server)

    @property
    def uri(self) -> str:
        return f"bolt://{self.host}:{self.bolt_port}"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie child of ours does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class EmbeddedServer:
    """The embedded server of one store folder."""

    def __init__(self, home: str | os.PathLike) -> None:
        self.files = ServerFiles(Path(home).resolve())

    @property
    def home(self) -> Path:
        return self.files.home

    def status(self) -> ServerInfo | None:
        """The running server, or None when there is none (stale records are ignored;
        without a valid record, the server is looked for by its database's lock)."""
        data = self.files.read_info()
        if not data:
            return self.discover()
        try:
            info = ServerInfo(
                home=self.home,
                pid=int(data["pid"]),
                host=data["host"],
                bolt_port=int(data["bolt_port"]),
                http_port=int(data["http_port"]),
                control_port=int(data["control_port"]),
                database=data["database"],
                started_at=float(data["started_at"]),
                priority=str(data.get("priority", "normal")),
            )
        except (KeyError, TypeError, ValueError):
            return self.discover()
        if pid_alive(info.pid) and _port_open(info.host, info.bolt_port):
            return info
        return self.discover()

    @property
    def database_lock(self) -> Path:
        """The lock file ArcadeDB holds while the server has the database open."""
        return self.files.databases / "databases" / DATABASE_NAME / "database.lck"

    def holder(self) -> int | None:
        """The live process holding the database (a running or starting server)."""
        pid = discovery.lock_holder(self.database_lock)
        return pid if pid is not None and pid_alive(pid) else None

    def discover(self) -> ServerInfo | None:
        """The running server found without `server.json` (deleted, or stale): the
        holder of the database's lock, on the ports of the last start, whose control
        port answers the store's token. Rewrites `server.json` when found."""
        pid = self.holder()
        if pid is None:
            return None
        host, last = "127.0.0.1", self.files.read_ports()
        ports = discovery.listening_ports(pid)
        try:
            bolt, http = int(last["bolt_port"]), int(last["http_port"])
            token = self.files.read_credentials()["token"]
        except (KeyError, TypeError, ValueError, EmbeddedServerError):
            return None
        if bolt not in ports:
            return None
        control = next(
            (
                port
                for port in sorted(ports - {bolt, http})
                if discovery.answers_control(host, port, token)
            ),
            None,
        )
        if control is None:
            return None
        info = ServerInfo(
            home=self.home,
            pid=pid,
            host=host,
            bolt_port=bolt,
            http_port=http,
            control_port=control,
            database=DATABASE_NAME,
            started_at=discovery.started_at(pid) or time.time(),
            priority=discovery.priority_of(pid),
        )
        record = {k: v for k, v in dataclasses.asdict(info).items() if k != "home"}
        with contextlib.suppress(OSError):
            write_json_atomically(self.files.info, {**record, "engine": "arcadedb"})
        return info

    @contextmanager
    def _locked(self) -> Iterator[None]:
        secure_store(self.home)
        with open(self.files.lock, "w", opener=private_opener) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_running(self, timeout: float = START_TIMEOUT_S) -> ServerInfo:
        """Return the running server, starting one in the background if needed."""
        info = self.status()
        if info:
            return info
        with self._locked():
            info = self.status()  # another process may have started it meanwhile
            if info:
                return info
            if self.holder() is not None:  # never a second JVM on a locked database
                return self._wait_for_holder(timeout)
            return self._start(timeout)

    def _wait_for_holder(self, timeout: float) -> ServerInfo:
        """A live process holds the database but is not (yet) found as its server:
        wait for it to answer, or to let go (then start one); else say so clearly."""
        deadline = time.monotonic() + timeout
        pid = None
        while time.monotonic() < deadline:
            info = self.status()
            if info:
                return info
            pid = self.holder()
            if pid is None:
                return self._start(max(1.0, deadline - time.monotonic()))
            time.sleep(0.2)
        command = " ".join(discovery.command_line(pid or 0)) or "unknown command"
        raise EmbeddedServerError(
            f"the database of the embedded store in {self.home} is locked by process "
            f"{pid} ({command}), which does not answer as its server within "
            f"{timeout:.0f} s; no second server was started. Stop that process "
            f"(kill {pid}) or wait for it, then try again"
        )

    def _start(self, timeout: float) -> ServerInfo:
        self.files.ensure_credentials()
        previous = self.files.read_ports()
        self.files.info.unlink(missing_ok=True)
        ports = [str(previous.get(k, 0)) for k in ("bolt_port", "http_port")]
        log = open(self.files.log, "ab", opener=private_opener)  # noqa: SIM115 (for the child)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "provkb.kb.embedded_server", str(self.home), *ports],
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                umask=PRIVATE_UMASK,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedServerError(
                    f"the embedded server in {self.home} exited with code "
                    f"{process.returncode}; last log lines:\n{self._log_tail()}"
                )
            info = self.status()
            if info and info.pid == process.pid:
                return info
            time.sleep(0.1)
        process.kill()
        raise EmbeddedServerError(
            f"the embedded server in {self.home} did not start within {timeout:.0f} s; "
            f"last log lines:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.files.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop the running server; False when none was running."""
        with self._locked():
            info = self.status()
            if info is None:
                self.files.info.unlink(missing_ok=True)
                return False
            token = self.files.read_credentials()["token"]
            request = urllib.request.Request(
                f"http://{info.host}:{info.control_port}/stop",
                method="POST",
                headers={"X-ProvKB-Token": token},
                data=b"",
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    json.loads(response.read() or b"{}")
            except (urllib.error.URLError, OSError, ValueError):
                pass  # fall through to the wait; a kill is the last resort
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and pid_alive(info.pid):
                time.sleep(0.1)
            if pid_alive(info.pid):
                # The store is crash-safe (writes are durable at commit), so a kill
                # after a stop request that went unanswered loses nothing committed.
                os.kill(info.pid, signal.SIGKILL)
            self.files.info.unlink(missing_ok=True)
            return True
