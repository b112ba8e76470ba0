"""A durable local journal of provenance batches, one file per writer (process).

Every batch is appended (and handed to the OS) before it is sent, so a store that is
down, or a training process killed with SIGKILL, loses nothing already handed over.
The writer acknowledges what the store has accepted; `provkb sync` replays the rest.
Replay is idempotent (every write is a MERGE on PROV identifiers) and never takes a
run backwards (the store writes run progress monotonically), so journals can be
replayed in any order, any number of times.

An entry that cannot be replayed (a torn or garbage line, valid JSON of the wrong
shape, a batch the store refuses) is moved to the journal's quarantine
(`kb.quarantine`) with its position and the error, and everything else is replayed.
Concurrent replays of one journal are serialised by an advisory lock on its file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import JournalError, QueryError
from ..ontology import KIND_BY_LABEL, RELATION_BY_TYPE, SUBTYPE_BY_LABEL, Prop
from .embedded import pid_alive
from .quarantine import BadEntry, Quarantine
from .records import Edge, GraphBatch, Node, batch_to_dict
from .store import DanglingRelation
from .store_folder import private_folder, private_opener

JOURNAL_DIR = "journal"
LOCK_TIMEOUT = 600.0  # seconds a sync waits for another sync replaying the same journal
DANGLING_PAUSE = 0.5  # seconds before an entry refused for missing nodes is tried again


def journal_folder(home: Path) -> Path:
    """Where the journals of a store folder live."""
    return home / JOURNAL_DIR


def describe_os_error(exc: OSError) -> str:
    """`No space left on device (ENOSPC)`: the reason of an I/O error, for people."""
    if not exc.errno:
        return str(exc)
    code = errno.errorcode.get(exc.errno)
    return f"{os.strerror(exc.errno)} ({code})" if code else os.strerror(exc.errno)


@dataclass
class Entry:
    """One replayable journal entry."""

    seq: int
    records: int
    runs: list[str]
    batch: GraphBatch
    line: int
    offset: int
    raw: bytes

    def bad(self, error: str) -> BadEntry:
        """This entry as a quarantine record (the store refused it)."""
        return BadEntry(
            self.line, self.offset, self.raw, error, self.seq, self.records, tuple(self.runs)
        )


@dataclass
class JournalStatus:
    """The backlog of one journal."""

    name: str
    path: Path
    entries: int
    acknowledged: int
    pending_records: int
    pending_by_run: dict[str, int]
    owner_pid: int | None
    owner_alive: bool
    bad_lines: int = 0  # lines sync will quarantine


class Journal:
    """Append-only JSON-lines journal of batches, with an acknowledgement mark.

    Each entry lists the runs its records belong to, so the backlog shows per run. An
    append is one `write` of the whole line; one that fails (disk full, read-only
    file system) is cut off again, so no torn line stays behind it.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = Path(folder)
        self.name = name
        self._fd: int | None = None
        self._seq: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / f"{self.name}.jsonl"

    @property
    def ack_path(self) -> Path:
        return self.folder / f"{self.name}.ack"

    # -- writing (the owner process) -----------------------------------------------
    def _open(self) -> None:
        private_folder(self.folder)  # 0700, in a store folder made private first
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fresh = os.fstat(fd).st_size == 0
            seq = 0 if fresh else self._last_seq()
            if fresh:
                _append_line(fd, {"journal": self.name, "pid": os.getpid()})
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._seq = fd, seq

    def append(self, batch: GraphBatch) -> int:
        """Append a batch; returns its sequence number. Raises OSError when the journal
        cannot be written (the journal is then as it was before the call)."""
        if self._fd is None:
            self._open()
        assert self._seq is not None and self._fd is not None
        seq = self._seq + 1
        runs = sorted({str(n.props[Prop.RUN_ID]) for n in batch.nodes if Prop.RUN_ID in n.props})
        _append_line(
            self._fd, {"seq": seq, "n": len(batch), "runs": runs, "batch": batch_to_dict(batch)}
        )
        self._seq = seq  # in the OS page cache: survives the process being killed
        return seq

    def acknowledge(self, seq: int) -> None:
        """Record that every entry up to `seq` is in the store (raises OSError)."""
        tmp = self.ack_path.with_suffix(".ack.tmp")
        try:
            with open(tmp, "w", encoding="utf-8", opener=private_opener) as handle:
                handle.write(str(seq))
            os.replace(tmp, self.ack_path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def acknowledged(self) -> int:
        try:
            return int(self.ack_path.read_text(encoding="utf-8").strip() or 0)
        except (OSError, ValueError):
            return 0

    # -- reading -----------------------------------------------------------------------
    def scan(self, torn_is_bad: bool = True) -> Iterator[Entry | BadEntry]:
        """Every entry, in order, and every line that is not one (as `BadEntry`).

        A last line without its newline is being written by a live owner, or was cut
        short by a kill: bad when `torn_is_bad`, else left alone. Raises OSError when
        the journal cannot be read (a missing journal has no entries)."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return
        with handle:
            offset = 0
            for number, raw in enumerate(handle, start=1):
                start, offset = offset, offset + len(raw)
                if not raw.endswith(b"\n"):
                    if torn_is_bad:
                        yield BadEntry(number, start, raw, "the line is cut short (no newline)")
                    return
                raw = raw[:-1]
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw.decode("utf-8"))
                    if number == 1 and _is_header(data):
                        continue
                    yield _entry(data, number, start, raw)
                except (ValueError, TypeError, KeyError) as exc:
                    yield _bad_line(raw, number, start, exc)

    def entries(self) -> Iterator[tuple[int, int, dict, list[str]]]:
        """(seq, records, batch dict, runs) of every valid, complete entry."""
        for item in self.scan(torn_is_bad=False):
            if isinstance(item, Entry):
                yield item.seq, item.records, batch_to_dict(item.batch), item.runs

    def pending(self) -> Iterator[tuple[int, GraphBatch]]:
        """Valid entries not yet acknowledged, in order."""
        done = self.acknowledged()
        for item in self.scan(torn_is_bad=False):
            if isinstance(item, Entry) and item.seq > done:
                yield item.seq, item.batch

    def _last_seq(self) -> int:
        return max((item.seq for item in self.scan(False) if isinstance(item, Entry)), default=0)

    def owner_pid(self) -> int | None:
        try:
            with open(self.path, "rb") as handle:
                return int(json.loads(handle.readline()).get("pid"))
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def owner_alive(self) -> bool:
        """Whether another process that writes this journal is still running."""
        pid = self.owner_pid()
        return pid is not None and pid != os.getpid() and pid_alive(pid)

    def status(self) -> JournalStatus:
        done = self.acknowledged()
        pid = self.owner_pid()
        alive = pid is not None and pid != os.getpid() and pid_alive(pid)
        by_run: dict[str, int] = {}
        entries = pending = bad = 0
        for item in self.scan(torn_is_bad=not alive):
            if isinstance(item, BadEntry):
                bad += 1
                continue
            entries += 1
            if item.seq > done:
                pending += item.records
                for run in item.runs or ["(no run)"]:
                    by_run[run] = by_run.get(run, 0) + item.records
        return JournalStatus(
            name=self.name,
            path=self.path,
            entries=entries,
            acknowledged=done,
            pending_records=pending,
            pending_by_run=by_run,
            owner_pid=pid,
            owner_alive=alive,
            bad_lines=bad,
        )

    # -- replay lock -------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT) -> Iterator[bool]:
        """Hold this journal's replay lock (an advisory lock on its file); yields False
        when the journal is gone (replayed by another sync meanwhile).

        Raises OSError when it cannot be opened, TimeoutError when another replay
        holds it longer than `timeout`."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            yield False
            return
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"another provkb sync is replaying {self.path}"
                        ) from None
                    time.sleep(0.05)
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            yield same
        finally:
            os.close(fd)  # releases the lock

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Delete the journal (everything in it is in the store); raises OSError."""
        self.close()
        for path in (self.path, self.ack_path):
            if os.path.lexists(path):  # one never made needs no removal (read-only disk)
                path.unlink(missing_ok=True)


def _append_line(fd: int, data: Mapping[str, Any]) -> None:
    """Write one JSON line with O_APPEND; on failure cut the file back to its size."""
    line = (json.dumps(data) + "\n").encode("utf-8")
    size = os.fstat(fd).st_size
    try:
        while line:
            line = line[os.write(fd, line) :]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def _is_header(data: Any) -> bool:
    return isinstance(data, dict) and "journal" in data and "seq" not in data


def _bad_line(raw: bytes, number: int, offset: int, exc: Exception) -> BadEntry:
    """A line that is not a valid entry; keeps its seq and runs when they are legible."""
    seq = records = None
    runs: tuple[str, ...] = ()
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        data = json.loads(raw.decode("utf-8"))
        if isinstance(data.get("seq"), int):
            seq = data["seq"]
        if isinstance(data.get("n"), int):
            records = data["n"]
        if isinstance(data.get("runs"), list):
            runs = tuple(str(r) for r in data["runs"])
    if isinstance(exc, UnicodeDecodeError):
        reason = "not UTF-8 text"
    elif isinstance(exc, json.JSONDecodeError):
        reason = f"not JSON ({exc.msg} at column {exc.colno})"
    elif isinstance(exc, KeyError):
        reason = f"unknown name {exc}"
    else:
        reason = str(exc)
    return BadEntry(number, offset, raw, f"not a journal entry: {reason}", seq, records, runs)


_PRIMITIVES = (str, int, float, bool)


def _props(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: properties are not an object")
    for key, item in value.items():
        ok = isinstance(item, _PRIMITIVES) or (
            isinstance(item, list) and all(isinstance(v, _PRIMITIVES) for v in item)
        )
        if not ok:
            raise ValueError(f"{where}: property {key!r} is not a primitive or a list of them")
    return dict(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} is not a non-empty string")
    return value


def _batch(data: Any) -> GraphBatch:
    """A batch from its journal form, every part checked (ValueError/KeyError say where)."""
    if not isinstance(data, dict):
        raise ValueError("'batch' is not an object")
    nodes, edges = data.get("nodes", []), data.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise ValueError("'nodes' and 'edges' must be lists")
    batch = GraphBatch()
    for i, node in enumerate(nodes):
        where = f"node {i}"
        if not isinstance(node, list) or len(node) != 4 or not isinstance(node[2], list):
            raise ValueError(f"{where} is not [id, kind, labels, properties]")
        node_id, kind, extra, props = node
        subtypes = tuple(SUBTYPE_BY_LABEL[_text(label, f"{where} label")] for label in extra)
        batch.nodes.append(
            Node(_text(node_id, f"{where} id"), KIND_BY_LABEL[kind], subtypes, _props(props, where))
        )
    for i, edge in enumerate(edges):
        where = f"relation {i}"
        if not isinstance(edge, list) or len(edge) != 4:
            raise ValueError(f"{where} is not [type, source, target, properties]")
        rel_type, src, dst, props = edge
        batch.edges.append(
            Edge(
                RELATION_BY_TYPE[rel_type],
                _text(src, f"{where} source"),
                _text(dst, f"{where} target"),
                _props(props, where),
            )
        )
    return batch


def _entry(data: Any, number: int, offset: int, raw: bytes) -> Entry:
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("no valid sequence number ('seq')")
    batch = _batch(data.get("batch"))
    runs = data.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        runs = sorted({str(n.props[Prop.RUN_ID]) for n in batch.nodes if Prop.RUN_ID in n.props})
    return Entry(seq, len(batch), runs, batch, number, offset, raw)


def journals(folder: Path) -> list[Journal]:
    """Every journal in a folder (raises OSError when the folder cannot be listed)."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".jsonl"))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [Journal(folder, name[: -len(".jsonl")]) for name in names]


@dataclass
class ReplayReport:
    """What one replay sent, quarantined, or why it could not."""

    name: str
    batches: int = 0
    records: int = 0
    removed: bool = False
    skipped_live: bool = False
    quarantined: int = 0  # entries moved to the quarantine by this replay
    already_replayed: bool = False  # another sync replayed (and removed) it meanwhile
    busy: bool = False  # another sync held it longer than the lock timeout
    error: str | None = None  # an I/O error stopped this journal's replay
    quarantine_path: Path | None = None
    details: list[str] = field(default_factory=list)  # one line per quarantined entry


def replay(
    store,
    journal: Journal,
    remove_when_done: bool = True,
    chunk: int = 5000,
    lock_timeout: float = LOCK_TIMEOUT,
) -> ReplayReport:
    """Send a journal's unacknowledged entries to `store`, in order, merged into
    transactions of about `chunk` records, acknowledging after each; quarantine what
    cannot be replayed. StoreUnavailable propagates (the journal is kept); an I/O
    error on the journal or its quarantine raises JournalError."""
    report = ReplayReport(journal.name)
    try:
        with journal.locked(lock_timeout) as present:
            if not present:
                report.already_replayed = True
                return report
            _replay_locked(store, journal, report, remove_when_done, chunk)
    except TimeoutError:
        report.busy = True
    except OSError as exc:
        raise JournalError(
            f"cannot replay the journal {journal.path}: {describe_os_error(exc)}; "
            f"what was replayed is in the store, the rest stays in the journal"
        ) from exc
    return report


def _replay_locked(
    store, journal: Journal, report: ReplayReport, remove_when_done: bool, chunk: int
) -> None:
    quarantine = Quarantine(journal.folder, journal.name)
    done, seen = journal.acknowledged(), quarantine.offsets()
    merged: list[Entry] = []

    def set_aside(bad: list[BadEntry]) -> None:
        fresh = [b for b in bad if b.offset not in seen]
        quarantine.add(journal.path, fresh)  # durably, before anything moves past them
        seen.update(b.offset for b in fresh)
        report.quarantined += len(fresh)
        report.details += [f"line {b.line}: {b.error}" for b in fresh]
        if fresh:
            report.quarantine_path = quarantine.path

    def send() -> None:
        if not merged:
            return
        refused = _write_entries(store, merged)
        set_aside(refused)
        journal.acknowledge(merged[-1].seq)
        report.records += sum(e.records for e in merged) - sum(b.records or 0 for b in refused)
        merged.clear()

    size = 0
    for item in journal.scan(torn_is_bad=remove_when_done):
        if isinstance(item, BadEntry):
            if item.seq is None or item.seq > done:
                set_aside([item])
            continue
        if item.seq <= done:
            continue
        merged.append(item)
        report.batches += 1
        size += item.records
        if size >= chunk:
            send()
            size = 0
    send()
    if remove_when_done:
        journal.remove()
        report.removed = True
    elif not journal.path.exists():  # its owner removed it meanwhile: no stray mark
        journal.ack_path.unlink(missing_ok=True)


def _write_entries(store, entries: list[Entry]) -> list[BadEntry]:
    """Write entries in one transaction; if the store refuses it, one by one. Returns
    the entries the store refused (StoreUnavailable propagates)."""
    try:
        store.write(GraphBatch.concat(e.batch for e in entries))
        return []
    except QueryError as exc:
        if len(entries) == 1:
            bad = _retried(store, entries[0], exc)
            return [bad] if bad is not None else []
    return [bad for entry in entries for bad in _write_entries(store, [entry])]


def _retried(store, entry: Entry, exc: QueryError) -> BadEntry | None:
    """A refused entry whose relations missed their nodes gets one more try (a store
    that has just restarted can answer so for a valid batch); None when it then went in."""
    if isinstance(exc, DanglingRelation):
        time.sleep(DANGLING_PAUSE)
        try:
            store.write(entry.batch)
            return None
        except QueryError as again:
            exc = again
    return entry.bad(f"refused by the store: {exc}")


def sync(
    store, folder: Path, include_live: bool = False, lock_timeout: float = LOCK_TIMEOUT
) -> list[ReplayReport]:
    """Replay every journal in `folder`; journals of live training processes are left to
    their own writer unless `include_live` (replay is idempotent either way).

    Journals another sync is replaying are skipped at first and waited for at the end,
    so concurrent syncs share the work. A journal that cannot be read or updated gets
    its `error` and the others are still replayed; a store that cannot be reached
    stops the sync (StoreUnavailable)."""
    reports: dict[str, ReplayReport] = {}
    busy: list[tuple[Journal, bool]] = []
    found = journals(folder)
    for journal in found:
        alive = journal.owner_alive()
        if alive and not include_live:
            reports[journal.name] = ReplayReport(journal.name, skipped_live=True)
            continue
        reports[journal.name] = _replay_reported(store, journal, not alive, 0.0)
        if reports[journal.name].busy:
            busy.append((journal, alive))
    for journal, alive in busy:
        reports[journal.name] = _replay_reported(store, journal, not alive, lock_timeout)
    return [reports[journal.name] for journal in found]


def _replay_reported(store, journal: Journal, remove: bool, lock_timeout: float) -> ReplayReport:
    try:
        return replay(store, journal, remove, lock_timeout=lock_timeout)
    except JournalError as exc:
        return ReplayReport(journal.name, error=str(exc))
