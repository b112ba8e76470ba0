"""Shared helpers: statistics over repeats, timers, machine details, throwaway stores."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "provkb",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "neo4j",
    "neo4j-rust-ext",
    "arcadedb-embedded",
    "prov",
    "rdflib",
    "mlflow",
    "sqlalchemy",
    "psutil",
)


def stats(values: Sequence[float]) -> dict[str, Any]:
    """min / median / max (and p95, n) of some samples; None everywhere when empty."""
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return {"n": 0, "min": None, "median": None, "max": None, "p95": None, "samples": []}
    return {
        "n": len(vals),
        "min": vals[0],
        "median": statistics.median(vals),
        "max": vals[-1],
        "p95": percentile(vals, 95),
        "samples": [float(v) for v in values if v is not None],
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation between closest ranks)."""
    vals = sorted(values)
    if not vals:
        return None
    if len(vals) == 1:
        return float(vals[0])
    pos = (len(vals) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(vals) - 1)
    return float(vals[lo] + (vals[hi] - vals[lo]) * (pos - lo))


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open("/proc/meminfo", encoding="utf-8") as fh,
    ):
        for line in fh:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    try:
        import psutil

        return round(psutil.virtual_memory().total / 1024**3, 1)
    except Exception:
        return None


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, RAM, OS, Python, package versions and load, for RESULTS.md."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": {p: v for p in PACKAGES if (v := version(p)) is not None},
        "load_average_at_start": _load(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
        "server_priority": os.environ.get("PROVKB_SERVER_PRIORITY") or "idle",
    }


def load_average() -> list[float] | None:
    return _load()


# -- throwaway embedded stores -------------------------------------------------------
@dataclass
class EmbeddedHandle:
    """A fresh embedded store in its own folder; `store` is a connected `Store`."""

    home: Path
    store: Any
    engine: str
    agent: str | None
    startup_seconds: float

    @property
    def target(self) -> Any:
        """This store as an `engines.Target` (what child processes are given)."""
        from .engines import ARCADEDB, Target

        return Target(ARCADEDB, self.home)

    def stop(self) -> None:
        from provkb.kb.embedded import EmbeddedServer

        with contextlib.suppress(Exception):
            self.store.close()
        with contextlib.suppress(Exception):
            EmbeddedServer(self.home).stop()


def start_store(home: Path) -> EmbeddedHandle:
    """Start (or find) the embedded server of `home` and connect a Store to it."""
    from provkb.config import resolve_settings
    from provkb.kb.embedded import EmbeddedServer
    from provkb.kb.store import Store

    t0 = time.perf_counter()
    EmbeddedServer(home).ensure_running()
    store = Store(resolve_settings(store=home)).connect()
    startup = time.perf_counter() - t0
    agent = None
    with contextlib.suppress(Exception):
        agent = store._driver.get_server_info().agent  # noqa: SLF001 (diagnostics only)
    return EmbeddedHandle(home, store, store.engine, agent, startup)


@contextlib.contextmanager
def fresh_store(
    parent: Path | None = None, name: str = "store", keep: bool = False
) -> Iterator[EmbeddedHandle]:
    """A new embedded store in a temporary folder, stopped (and deleted unless `keep`)
    afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"provkb-bench-{name}-", dir=parent))
    handle = start_store(folder)
    try:
        yield handle
    finally:
        handle.stop()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def log(message: str) -> None:
    """Progress on stderr (stdout stays free for machine-readable output)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_worker(module: str, config: Any, timeout: float, what: str) -> dict[str, Any]:
    """Run `python -m MODULE CONFIG_JSON` in a fresh process (killed after `timeout`) and
    return the last JSON line it printed; RuntimeError with its stderr's tail if it fails."""
    import json

    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(
        [sys.executable, "-m", module, json.dumps(config)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"{what} failed:\n{tail}")
    return json.loads(lines[-1])


@contextlib.contextmanager
def environment(wanted: dict[str, str | None]) -> Iterator[None]:
    """This process's environment set to `wanted` (None: unset), restored afterwards."""
    before = {name: os.environ.get(name) for name in wanted}
    _set_environment(wanted)
    try:
        yield
    finally:
        _set_environment(before)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def worker_main(measure: Callable[[dict[str, Any]], dict[str, Any]], argv: list[str]) -> None:
    """A measuring worker's entry point: `measure(config)` of the JSON in `argv[0]`, every
    capture writer closed (journal acknowledged, as at interpreter exit), the figures as
    the last JSON line, then an exit that skips TensorFlow's slow teardown."""
    import json

    out = measure(json.loads(argv[0]))
    from provkb.capture import sink

    sink.close_all()
    print(json.dumps(out), flush=True)
    os._exit(0)
