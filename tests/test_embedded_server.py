"""The embedded server's life cycle: start, reuse from another process, stop, restart."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

from builders import RunBuilder, ids

from provkb.config import resolve_settings
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.embedded_server import (
    DEFAULT_PRIORITY,
    LOW_NICENESS,
    PRIORITIES,
    process_alive,
    watch_owner,
)
from provkb.kb.store import Store


def test_start_reuse_stop_restart_keeps_data(tmp_path: Path) -> None:
    home = tmp_path / "kb"
    server = EmbeddedServer(home)
    assert server.status() is None
    info = server.ensure_running()
    try:
        assert info.host == "127.0.0.1"
        creds = home / "credentials.json"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert server.ensure_running().pid == info.pid  # reused, not started twice

        # another process finds the running server through the folder
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from provkb.kb.embedded import EmbeddedServer; "
                "print(EmbeddedServer(sys.argv[1]).ensure_running().pid)",
                str(home),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert int(out.stdout.strip()) == info.pid

        with Store(resolve_settings(store=home)) as store:
            RunBuilder("abcdef012345", name="kept").write(store)
    finally:
        assert server.stop() is True
    assert server.status() is None
    assert not _alive(info.pid)
    assert server.stop() is False  # stopping twice is harmless

    restarted = server.ensure_running()
    try:
        assert restarted.pid != info.pid
        with Store(resolve_settings(store=home)) as store:
            rows = store.read(
                "MATCH (n:Activity {id: $id}) RETURN n.name AS name", id=ids.run("abcdef012345")
            ).rows
        assert rows == [{"name": "kept"}]
    finally:
        server.stop()


def test_stale_server_record_is_ignored(tmp_path: Path) -> None:
    home = tmp_path / "kb"
    home.mkdir()
    (home / "server.json").write_text(
        '{"pid": 999999, "host": "127.0.0.1", "bolt_port": 1, "http_port": 2, '
        '"control_port": 3, "database": "provkb", "started_at": 0}'
    )
    assert EmbeddedServer(home).status() is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _expected_priority() -> str:
    """What `lower_priority` puts in force for this environment's PROVKB_SERVER_PRIORITY."""
    wanted = (os.environ.get("PROVKB_SERVER_PRIORITY") or DEFAULT_PRIORITY).lower()
    if wanted not in PRIORITIES:
        wanted = DEFAULT_PRIORITY
    return "low" if wanted == "idle" and not hasattr(os, "SCHED_IDLE") else wanted


def test_the_server_runs_below_the_training_priority(embedded_home: Path) -> None:
    """Every thread of the server has the priority it published: by default SCHED_IDLE
    and niceness +10 (whatever PROVKB_SERVER_PRIORITY asked, it is checked)."""
    info = EmbeddedServer(embedded_home).status()
    assert info is not None
    published = json.loads((embedded_home / "server.json").read_text())
    expected = _expected_priority()
    assert published["priority"] == expected
    assert info.priority == expected
    lowered = LOW_NICENESS if expected != "normal" else 0
    niceness = min(os.getpriority(os.PRIO_PROCESS, 0) + lowered, 19)
    threads = [int(t) for t in os.listdir(f"/proc/{info.pid}/task")]
    assert len(threads) > 10  # the JVM's threads, not only the main one
    for tid in threads:
        idle = hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(tid) == os.SCHED_IDLE
        assert idle == (expected == "idle"), tid
        assert os.getpriority(os.PRIO_PROCESS, tid) == niceness, tid


def test_a_server_watching_its_owner_stops_when_the_owner_ends() -> None:
    """PROVKB_WATCH_PID: a killed test session leaves no server; a zombie counts as ended."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    stop = threading.Event()
    watcher = threading.Thread(target=watch_owner, args=(owner.pid, stop), daemon=True)
    watcher.start()
    try:
        assert process_alive(owner.pid)
        watcher.join(2.5)
        assert watcher.is_alive() and not stop.is_set()  # the owner runs: the server stays
        owner.kill()  # ended, not yet reaped: a zombie
        watcher.join(30)
        assert stop.is_set() and not watcher.is_alive()
        assert not process_alive(owner.pid)
    finally:
        owner.kill()
        owner.wait()
    assert not process_alive(owner.pid)  # reaped
