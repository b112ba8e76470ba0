"""The engines a benchmark run measures: the embedded ArcadeDB store and a real Neo4j 5.

ArcadeDB: a fresh embedded store in a temporary folder for every benchmark, as before.
Neo4j: a Community 5.26 server started from Maven Central by `tools/neo4j/start` with
its data in the run's working folder (`NEO4J_WATCH_PID` is this process, so no server
outlives a benchmark run), emptied before each benchmark; export/import gets a second
server of its own to import into. A benchmark never touches a server it did not start.

A `Target` says where a benchmark (or one of its child processes) writes: the engine,
the store folder (embedded data, or only journals for Neo4j) and, for Neo4j, the
server's URI and folder (its `password` file, 0600, and `neo4j.pid`), so that no
password appears on a child's command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import log, start_store

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools" / "neo4j"
ARCADEDB, NEO4J = "arcadedb", "neo4j"
ENGINES = (ARCADEDB, NEO4J)
NEO4J_USER = "neo4j"
DEFAULT_HEAP = "1g"  # tools/neo4j/start's NEO4J_HEAP default


def neo4j_unavailable() -> str | None:
    """Why a Neo4j server cannot be started here, or None when it can."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return f"no {' or '.join(missing)} to start Neo4j from Maven Central"
    return None


def choose(requested: str | None) -> tuple[list[str], str]:
    """The engines to measure for `--engine` (None: both where Neo4j can start), and a
    sentence saying why Neo4j is left out (empty when it is not)."""
    why = neo4j_unavailable()
    if requested in (None, "both"):
        if why:
            return [ARCADEDB], f"Neo4j left out: {why}"
        return list(ENGINES), ""
    if requested == NEO4J and why:
        raise SystemExit(f"--engine neo4j: {why}")
    return [requested], ""


def _launcher_page_cache_mib() -> int | None:
    """The page cache tools/neo4j/Launcher.java gives the server, in MiB."""
    with contextlib.suppress(OSError):
        text = (TOOLS / "Launcher.java").read_text(encoding="utf-8")
        found = re.search(r"pagecache_memory,\s*(\d+)L\s*\*\s*1024\s*\*\s*1024", text)
        if found:
            return int(found.group(1))
    return None


def _java_version() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=30, check=False
        )
        lines = (out.stderr or out.stdout).strip().splitlines()
        return lines[0] if lines else None
    return None


def neo4j_server_settings() -> dict[str, Any]:
    """The heap, page cache and JVM the benchmark's Neo4j servers run with."""
    return {
        "heap_max": os.environ.get("NEO4J_HEAP") or DEFAULT_HEAP,
        "heap_initial": "256m",
        "page_cache_mib": _launcher_page_cache_mib(),
        "gc": "G1",
        "java": _java_version(),
        "launcher": "tools/neo4j/start (Launcher.java, Community, in-process DBMS)",
    }


@dataclass(frozen=True)
class Target:
    """Where a benchmark writes: one engine's store, reachable from any process."""

    engine: str
    home: Path  # embedded: the store folder; Neo4j: the folder of journals
    uri: str | None = None
    server_dir: Path | None = None  # Neo4j: tools/neo4j/start's DIR
    # A server not started by tools/neo4j/start (a test session's NEO4J_URI): its
    # password, kept in this process only (never in to_json).
    password: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def settings(self):
        """ProvKB connection settings of this target."""
        from provkb.config import resolve_settings

        if self.uri is None:
            return resolve_settings(store=self.home)
        password = self.password
        if password is None and self.server_dir is None:
            # A child process of a session given NEO4J_URI: the password never travels in
            # the task (to_json), the child inherits it from the environment.
            password = os.environ.get("NEO4J_PASSWORD")
        if password is None:
            if self.server_dir is None:
                raise RuntimeError(f"no password for the Neo4j server at {self.uri}")
            password = (self.server_dir / "password").read_text(encoding="utf-8").strip()
        settings = resolve_settings(uri=self.uri, user=NEO4J_USER, password=password)
        return dataclasses.replace(settings, home=self.home.resolve(), database=None)

    def store(self):
        """A new (unconnected) `Store` of this target."""
        from provkb.kb.store import Store

        return Store(self.settings())

    def capture_store(self) -> Any:
        """What `ProvenanceCallback(store=...)` takes: the embedded folder, or one Store
        per process for a server (the callback's writer is keyed by it)."""
        if self.uri is None:
            return str(self.home)
        key = self.to_json_text()
        if key not in _SHARED_STORES:
            _SHARED_STORES[key] = self.store()
        return _SHARED_STORES[key]

    def server_pid(self) -> int | None:
        """The pid of the server process, for its CPU time."""
        if self.uri is None:
            from provkb.kb.embedded import EmbeddedServer

            info = EmbeddedServer(self.home).status()
            return None if info is None else info.pid
        with contextlib.suppress(OSError, ValueError, TypeError):
            return int((Path(self.server_dir) / "neo4j.pid").read_text().strip())
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "home": str(self.home),
            "uri": self.uri,
            "server_dir": None if self.server_dir is None else str(self.server_dir),
        }

    def to_json_text(self) -> str:
        import json

        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any] | str | os.PathLike) -> Target:
        """From `to_json()`, or a plain store folder (an embedded target)."""
        if not isinstance(data, dict):
            return cls(ARCADEDB, Path(data))
        server = data.get("server_dir")
        return cls(
            data["engine"], Path(data["home"]), data.get("uri"), Path(server) if server else None
        )


def as_target(value: Target | str | os.PathLike) -> Target:
    return value if isinstance(value, Target) else Target.from_json(value)


_SHARED_STORES: dict[str, Any] = {}  # capture_store(): one Store per server target


def clear(store: Any) -> None:
    """Delete everything, in slices the engine handles comfortably (`Store.clear`)."""
    store.clear()


# -- a Neo4j server of the run --------------------------------------------------------
class Neo4jServer:
    """One Neo4j server with its data in `folder`, started by tools/neo4j/start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uri: str | None = None
        self.startup_seconds: float | None = None

    def launch(self) -> Neo4jServer:
        """Begin starting the server (`wait()` for it): two servers can start at once."""
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "NEO4J_WATCH_PID": str(os.getpid()),  # gone with this benchmark process
            "NEO4J_HEAP": os.environ.get("NEO4J_HEAP") or DEFAULT_HEAP,
        }
        self._t0 = time.perf_counter()
        self._proc = subprocess.Popen(
            ["bash", str(TOOLS / "start"), str(self.folder / "server")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        return self

    def wait(self) -> Neo4jServer:
        """Wait until the launched server answers; RuntimeError when it could not start."""
        if self.uri is not None:
            return self
        stdout, stderr = self._proc.communicate()
        if self._proc.returncode != 0:
            raise RuntimeError(f"Neo4j could not start: {stderr.strip()[-1500:]}")
        found = dict(line.split("=", 1) for line in stdout.split() if "=" in line)
        self.uri = found["NEO4J_URI"]
        self.startup_seconds = time.perf_counter() - self._t0
        return self

    def start(self) -> Neo4jServer:
        return self.launch().wait()

    def stop(self) -> None:
        self.stopping().wait()

    def stopping(self) -> subprocess.Popen[bytes]:
        """Begin stopping the server (`wait()` on the result): two can stop at once."""
        return subprocess.Popen(
            ["bash", str(TOOLS / "stop"), str(self.folder / "server")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def target(self) -> Target:
        assert self.uri is not None, "start() first"
        journals = self.folder / "provkb-home"
        journals.mkdir(parents=True, exist_ok=True)
        return Target(NEO4J, journals, self.uri, self.folder / "server")


# -- handles: a connected store of a target -------------------------------------------
@dataclass
class Handle:
    """A connected `Store` of `target`, and what RESULTS.md says about its engine."""

    target: Target
    store: Any
    engine: str
    agent: str | None
    startup_seconds: float | None

    @property
    def home(self) -> Path:
        return self.target.home

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.store.close()


def connect(target: Target, startup_seconds: float | None = None) -> Handle:
    store = target.store().connect()
    agent = None
    with contextlib.suppress(Exception):
        agent = store._driver.get_server_info().agent  # noqa: SLF001 (diagnostics only)
    return Handle(target, store, target.engine, agent, startup_seconds)


class Session:
    """The stores of one engine for a benchmark run: `fresh(name)` gives each benchmark
    an empty one, `import_targets(folder)` the empty stores export/import imports into."""

    def __init__(
        self, engine: str, work: Path, keep: bool = False, import_server: bool = False
    ) -> None:
        """`import_server`: on Neo4j, start the server to import into at once too (both
        start together, before anything is measured)."""
        self.engine = engine
        self.work = work
        self.keep = keep
        self.server: Neo4jServer | None = None
        self.importer: Neo4jServer | None = None
        self.import_server = import_server

    def __enter__(self) -> Session:
        self.work.mkdir(mode=0o700, parents=True, exist_ok=True)  # stores are private
        if self.engine == NEO4J:
            log("starting Neo4j (tools/neo4j/start) ...")
            self.server = Neo4jServer(self.work / "neo4j").launch()
            if self.import_server:
                self.importer = Neo4jServer(self.work / "import-neo4j").launch()
            try:
                self.server.wait()
                if self.importer is not None:
                    self.importer.wait()
            except Exception:
                self.__exit__(None, None, None)
                raise
            log(f"Neo4j ready in {self.server.startup_seconds:.0f} s at {self.server.uri}")
        return self

    def __exit__(self, *exc: object) -> None:
        stops = [s.stopping() for s in (self.server, self.importer) if s is not None]
        for stop in stops:  # both shut down together
            stop.wait()

    @contextlib.contextmanager
    def fresh(self, name: str) -> Iterator[Any]:
        """An empty store of this engine for one benchmark."""
        if self.engine == ARCADEDB:
            from .common import fresh_store

            with fresh_store(self.work, name, self.keep) as handle:
                yield handle
            return
        assert self.server is not None
        handle = connect(self.server.target(), self.server.startup_seconds)
        try:
            clear(handle.store)
            yield handle
        finally:
            handle.stop()

    def import_targets(self, folder: Path) -> Any:
        if self.engine == ARCADEDB:
            return EmbeddedTargets(folder)
        return Neo4jTargets(folder, self.importer)


class EmbeddedTargets:
    """Empty embedded stores to import into: small imports reuse one store, emptied
    between imports (untimed); a large one gets a fresh store (emptying it would take
    longer than starting another)."""

    REUSE_BELOW = 60_000  # records

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handle: Any = None

    def fresh(self, records: int | None) -> Target:
        if self.handle is not None and records is not None and records < self.REUSE_BELOW:
            self.handle.store.connect()
            clear(self.handle.store)
            self.handle.store.close()
            return self.handle.target
        self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="provkb-bench-import-", dir=self.folder))
        self.handle = start_store(home)
        self.handle.store.close()
        return self.handle.target

    def close(self) -> None:
        if self.handle is not None:
            self.handle.stop()
            shutil.rmtree(self.handle.home, ignore_errors=True)
            self.handle = None


class Neo4jTargets:
    """A second Neo4j server to import into (the first holds the knowledge base being
    exported), started on first use and emptied (untimed) before every import."""

    def __init__(self, folder: Path, server: Neo4jServer | None = None) -> None:
        """`server`: one already started (its owner stops it); else one of our own."""
        self.own = server is None
        self.server = server or Neo4jServer(folder / "import-neo4j")
        self.started = server is not None

    def fresh(self, records: int | None) -> Target:
        if not self.started:
            log("  starting a second Neo4j to import into ...")
            self.server.start()
            self.started = True
        target = self.server.target()
        store = target.store().connect()
        try:
            clear(store)
        finally:
            store.close()
        return target

    def close(self) -> None:
        if self.started and self.own:
            self.server.stop()
        self.started = False
