"""Find a store folder's running embedded server without its `server.json` (Linux).

The server process holds the lock of its database (`database.lck`, taken by ArcadeDB
for as long as the database is open): `/proc/locks` names the holder. Its Bolt and
HTTP ports are those of the last start (`ports.json`, written by every start); its
control port is the one of its listening sockets that answers the store's token (from
the credentials file). Elsewhere (no `/proc`) nothing is found.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def lock_holder(path: Path) -> int | None:
    """The pid of the process holding a lock on `path` (None: unlocked or unknown)."""
    try:
        st = path.stat()
        lines = (PROC / "locks").read_text().splitlines()
    except OSError:
        return None
    wanted = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or "->" in fields:  # a process waiting for a lock, not holding it
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == wanted:
                return int(fields[4])
        except ValueError:
            continue
    return None


def command_line(pid: int) -> list[str]:
    """The command line of process `pid` ([] when unknown)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on."""
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return set()
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def answers_control(host: str, port: int, token: str) -> bool:
    """Whether `host:port` is an embedded server's control endpoint that knows `token`."""
    request = urllib.request.Request(f"http://{host}:{port}/", headers={"X-ProvKB-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=1.0) as response:
            return response.status == 200 and json.loads(response.read()) == {"status": "running"}
    except (urllib.error.URLError, OSError, ValueError):
        return False


def started_at(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from /proc."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in (PROC / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = float(stat.rsplit(")", 1)[1].split()[19])  # field 22: start time
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def priority_of(pid: int) -> str:
    """The CPU priority of process `pid` as `embedded_server.lower_priority` names it."""
    try:
        if hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(pid) == os.SCHED_IDLE:
            return "idle"
        return "low" if os.getpriority(os.PRIO_PROCESS, pid) > 0 else "normal"
    except OSError:
        return "normal"
