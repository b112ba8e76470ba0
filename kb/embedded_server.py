"""The embedded server process: ArcadeDB with its Bolt plugin, plus a control endpoint.

Run as `python -m provkb.kb.embedded_server HOME` (ProvKB does this for you; see
`provkb.kb.embedded`). Signals are unreliable for a JVM hosted in Python, so the
process serves its own stop request on a loopback control port, authenticated by
a token kept in the 0600 credentials file.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .embedded_files import DATABASE_NAME, ServerFiles, write_json_atomically
from .store_folder import PRIVATE_UMASK


def free_port(host: str = "127.0.0.1", preferred: int = 0) -> int:
    """A TCP port free on `host` right now: `preferred` (the last one used) when it is."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            # as the server will: a port left in TIME_WAIT by the last run is reusable
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError(f"no free port on {host}")


def _control_handler(token: str, stop_requested: threading.Event):
    class Handler(BaseHTTPRequestHandler):
        def _authorised(self) -> bool:
            return self.headers.get("X-ProvKB-Token") == token

        def do_GET(self):  # noqa: N802 (http.server API)
            status = 200 if self._authorised() else 403
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"status": "running"}' if status == 200 else b"{}")

        def do_POST(self):  # noqa: N802
            if self.path != "/stop" or not self._authorised():
                self.send_response(403)
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status": "stopping"}')
            stop_requested.set()

        def log_message(self, format, *args):  # keep the server log clean
            return

    return Handler


PRIORITIES = ("idle", "low", "normal")
DEFAULT_PRIORITY = "idle"
LOW_NICENESS = 10


def _thread_ids() -> list[int]:
    """This process's threads (Linux), else [] (the priority is then per process)."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except (OSError, ValueError):
        return []


def lower_priority(requested: str | None = None) -> str:
    """Put this process below training, once the server is up (so a busy machine
    never starves its start-up); threads the JVM starts later inherit the priority.

    `requested` (default: `PROVKB_SERVER_PRIORITY`, else `idle`): `idle` is Linux's
    SCHED_IDLE (the server runs only on CPU time nothing else wants, and yields at
    once when training needs a core) plus niceness 10, `low` is niceness 10, `normal`
    changes nothing. Returns what is in force."""
    wanted = (requested or os.environ.get("PROVKB_SERVER_PRIORITY") or DEFAULT_PRIORITY).lower()
    if wanted not in PRIORITIES:
        print(f"unknown PROVKB_SERVER_PRIORITY {wanted!r}; using {DEFAULT_PRIORITY}", flush=True)
        wanted = DEFAULT_PRIORITY
    if wanted == "normal":
        return wanted
    tids = _thread_ids()
    if not tids:  # no per-thread control here: the whole process
        try:
            os.nice(LOW_NICENESS)
        except OSError:
            return "normal"
        return "low"
    niceness = min(os.getpriority(os.PRIO_PROCESS, 0) + LOW_NICENESS, 19)
    applied = "idle" if wanted == "idle" and hasattr(os, "SCHED_IDLE") else "low"
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
            if applied == "idle":
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (OSError, ProcessLookupError):  # not permitted, or the thread just ended
            continue
    return applied


def serve(home: Path, bolt_hint: int = 0, http_hint: int = 0) -> None:
    """Start ArcadeDB in `home`, publish its ports, and serve until asked to stop.

    The ports of the previous start are reused when free, so clients keep their address.
    """
    files = ServerFiles(home)
    os.umask(PRIVATE_UMASK)  # the JVM's databases and logs too: 0700 folders, 0600 files
    os.chdir(home)  # ArcadeDB writes ./log under the working directory
    credentials = files.read_credentials()
    import arcadedb_embedded  # heavy (starts a JVM): only in the server process

    host = "127.0.0.1"
    bolt_port, http_port = free_port(host, bolt_hint), free_port(host, http_hint)
    server = arcadedb_embedded.create_server(
        str(files.databases),
        root_password=credentials["password"],
        config={
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": bolt_port,
            "http_port": http_port,
            "host": host,
        },
    )
    server.start()
    server.create_database(DATABASE_NAME)  # opens it when it exists

    stop_requested = threading.Event()
    control = ThreadingHTTPServer((host, 0), _control_handler(credentials["token"], stop_requested))
    threading.Thread(target=control.serve_forever, daemon=True).start()
    priority = lower_priority()
    write_json_atomically(
        files.info,
        {
            "pid": os.getpid(),
            "host": host,
            "bolt_port": bolt_port,
            "http_port": http_port,
            "control_port": control.server_address[1],
            "database": DATABASE_NAME,
            "started_at": time.time(),
            "engine": "arcadedb",
            "priority": priority,
        },
    )
    write_json_atomically(files.ports, {"bolt_port": bolt_port, "http_port": http_port})
    print(f"provkb embedded server ready on bolt://{host}:{bolt_port}", flush=True)
    stop_requested.wait()
    try:
        files.info.unlink(missing_ok=True)
        server.stop()
    finally:
        print("provkb embedded server stopped", flush=True)
        sys.stdout.flush()
        os._exit(0)  # the JVM keeps non-daemon threads; leave for sure


def main(argv: list[str] | None = None) -> None:
    """Entry point: `python -m provkb.kb.embedded_server HOME`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 3):
        print(
            "usage: python -m provkb.kb.embedded_server HOME [BOLT_PORT HTTP_PORT]", file=sys.stderr
        )
        raise SystemExit(2)
    try:
        hints = [int(a) for a in args[1:]] or [0, 0]
        serve(Path(args[0]).resolve(), *hints)
    except Exception as exc:  # report to the log the client shows, then fail
        print(f"provkb embedded server failed: {exc!r}", file=sys.stderr, flush=True)
        sys.stderr.write(json.dumps({"error": str(exc)}) + "\n")
        os._exit(1)


if __name__ == "__main__":
    main()
