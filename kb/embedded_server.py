"""The embedded server process: ArcadeDB with its Bolt plugin, plus a control endpoint.

Run as `python -m provkb.kb.embedded_server HOME` (ProvKB does this for you; see
`provkb.kb.embedded`). Signals are unreliable for a JVM hosted in Python, so the
process serves its own stop request on a loopback control port, authenticated by
a token kept in the 0600 credentials file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import cypher
from .embedded_files import DATABASE_NAME, ROOT_USER, ServerFiles, write_json_atomically
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


WRITER_GROUP = "provkb_writer"  # records and schema of ProvKB's database; no security
READER_GROUP = "provkb_reader"  # reads records of ProvKB's database, nothing else
_GROUPS = {
    WRITER_GROUP: (
        ["updateSchema"],
        ["createRecord", "readRecord", "updateRecord", "deleteRecord"],
    ),
    READER_GROUP: ([], ["readRecord"]),
}


def set_up_accounts(server, credentials: dict) -> None:
    """Give ProvKB its own accounts in the engine's security and nobody else any.

    The writer may change the records and schema of ProvKB's database only (no users,
    no other database), the reader may only read them: the engine itself refuses
    anything else from them. Every other account but root is removed (an account a
    console user once created cannot survive a restart), and root gets a new random
    password that nobody keeps (ProvKB administers the server in-process, here).
    """
    import jpype  # the JVM's bridge, started by arcadedb_embedded

    security = server._java_server.getSecurity()  # the wrapper exposes no accessor
    json_object = jpype.JClass("com.arcadedb.serializer.json.JSONObject")
    for group, (database_access, record_access) in _GROUPS.items():
        config = {
            "access": database_access,
            "resultSetLimit": -1,
            "readTimeout": -1,
            "types": {"*": {"access": record_access}},
        }
        security.saveGroup(DATABASE_NAME, group, json_object(json.dumps(config)))
    accounts = {credentials["user"]: (credentials["password"], WRITER_GROUP)}
    if credentials.get("reader_user"):
        accounts[credentials["reader_user"]] = (credentials["reader_password"], READER_GROUP)
    for name in [str(user) for user in security.getUsers()]:
        if name != ROOT_USER:
            security.dropUser(name)
    for name, (password, group) in accounts.items():
        user = {
            "name": name,
            "password": str(security.encodePassword(password)),
            "databases": {DATABASE_NAME: [group]},
        }
        security.createUser(json_object(json.dumps(user)))
    security.setUserPassword(ROOT_USER, secrets.token_urlsafe(32))


CONSOLE_MARK = re.compile(r"/\* provkb-console-[0-9a-f]+ until=([0-9.]+) \*/")
CONSOLE_GRACE_S = 2.0  # past a console query's deadline, before the server ends it
WATCH_EVERY_S = 1.0


def watch_console(uri: str, credentials: dict, stop: threading.Event) -> None:
    """End console queries past their deadline whose client is gone (killed, or its
    own cancel failed): the engine ignores Bolt's transaction timeout. Runs as the
    console's account, which sees and may terminate only its own transactions."""
    from neo4j import GraphDatabase  # the client library, in the server process

    logging.getLogger("neo4j").setLevel(logging.CRITICAL)  # its retries are no news here
    auth = (credentials["reader_user"], credentials["reader_password"])
    with GraphDatabase.driver(uri, auth=auth, connection_timeout=10) as driver:
        while not stop.wait(WATCH_EVERY_S):
            # a busy or stopping server: next round
            with contextlib.suppress(Exception), driver.session(database=DATABASE_NAME) as s:
                late = [
                    record["transactionId"]
                    for record in s.run(cypher.SHOW_TRANSACTIONS)
                    if (mark := CONSOLE_MARK.match(str(record.get("currentQuery") or "")))
                    and time.time() > float(mark.group(1)) + CONSOLE_GRACE_S
                ]
                if late:
                    s.run(cypher.TERMINATE_TRANSACTIONS, ids=late).consume()


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def watch_owner(pid: int, stop: threading.Event) -> None:
    """Ask this server to stop once process `pid` has ended (`PROVKB_WATCH_PID`: a test
    session or a benchmark that was killed leaves no server behind)."""
    while not stop.wait(WATCH_EVERY_S):
        if not process_alive(pid):
            print(f"provkb embedded server: process {pid} ended; stopping", flush=True)
            stop.set()


def serve(home: Path, bolt_hint: int = 0, http_hint: int = 0) -> None:
    """Start ArcadeDB in `home`, publish its ports, and serve until asked to stop.

    The ports of the previous start are reused when free, so clients keep their address.
    """
    files = ServerFiles(home)
    os.umask(PRIVATE_UMASK)  # the JVM's databases and logs too: 0700 folders, 0600 files
    os.chdir(home)  # ArcadeDB writes ./log under the working directory
    credentials = files.ensure_credentials()
    import arcadedb_embedded  # heavy (starts a JVM): only in the server process

    host = "127.0.0.1"
    bolt_port, http_port = free_port(host, bolt_hint), free_port(host, http_hint)
    server = arcadedb_embedded.create_server(
        str(files.databases),
        root_password=secrets.token_urlsafe(32),  # root is not ProvKB's account
        config={
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": bolt_port,
            "http_port": http_port,
            "host": host,
        },
    )
    server.start()
    server.create_database(DATABASE_NAME)  # opens it when it exists
    set_up_accounts(server, credentials)

    stop_requested = threading.Event()
    control = ThreadingHTTPServer((host, 0), _control_handler(credentials["token"], stop_requested))
    threading.Thread(target=control.serve_forever, daemon=True).start()
    if credentials.get("reader_user"):
        watcher = (f"bolt://{host}:{bolt_port}", credentials, stop_requested)
        threading.Thread(target=watch_console, args=watcher, daemon=True).start()
    owner = os.environ.get("PROVKB_WATCH_PID", "").strip()
    if owner.isdigit():
        threading.Thread(target=watch_owner, args=(int(owner), stop_requested), daemon=True).start()
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
