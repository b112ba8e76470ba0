"""A durable local journal of provenance batches, one file per writer (process).

Every batch is appended (and flushed to the OS) before it is sent, so a store that is
down, or a training process killed with SIGKILL, loses nothing already handed over.
The writer acknowledges what the store has accepted; `provkb sync` replays the rest.
Replay is idempotent because every write is a MERGE on PROV identifiers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..ontology import Prop
from .embedded import pid_alive
from .records import GraphBatch, batch_from_dict, batch_to_dict

JOURNAL_DIR = "journal"


def journal_folder(home: Path) -> Path:
    """Where the journals of a store folder live."""
    return home / JOURNAL_DIR


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


class Journal:
    """Append-only JSON-lines journal of batches, with an acknowledgement mark.

    Each entry lists the runs its records belong to, so the backlog shows per run.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = Path(folder)
        self.name = name
        self._handle = None
        self._seq: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / f"{self.name}.jsonl"

    @property
    def ack_path(self) -> Path:
        return self.folder / f"{self.name}.ack"

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        self._seq = 0 if fresh else self._last_seq()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        if fresh:
            self._handle.write(json.dumps({"journal": self.name, "pid": os.getpid()}) + "\n")
            self._handle.flush()

    def append(self, batch: GraphBatch) -> int:
        """Append a batch; returns its sequence number."""
        if self._handle is None:
            self._open()
        assert self._seq is not None and self._handle is not None
        self._seq += 1
        runs = sorted({str(n.props[Prop.RUN_ID]) for n in batch.nodes if Prop.RUN_ID in n.props})
        line = json.dumps(
            {"seq": self._seq, "n": len(batch), "runs": runs, "batch": batch_to_dict(batch)}
        )
        self._handle.write(line + "\n")
        self._handle.flush()  # in the OS page cache: survives the process being killed
        return self._seq

    def acknowledge(self, seq: int) -> None:
        """Record that every entry up to `seq` is in the store."""
        tmp = self.ack_path.with_suffix(".ack.tmp")
        tmp.write_text(str(seq), encoding="utf-8")
        os.replace(tmp, self.ack_path)

    def acknowledged(self) -> int:
        try:
            return int(self.ack_path.read_text(encoding="utf-8").strip() or 0)
        except (OSError, ValueError):
            return 0

    def entries(self) -> Iterator[tuple[int, int, dict, list[str]]]:
        """(seq, records, batch dict, runs) of every complete entry; a torn line is skipped."""
        try:
            handle = open(self.path, encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if "seq" in data:
                    yield data["seq"], data.get("n", 0), data["batch"], data.get("runs", [])

    def pending(self) -> Iterator[tuple[int, GraphBatch]]:
        """Entries not yet acknowledged, in order."""
        done = self.acknowledged()
        for seq, _, data, _ in self.entries():
            if seq > done:
                yield seq, batch_from_dict(data)

    def _last_seq(self) -> int:
        last = 0
        for seq, *_ in self.entries():
            last = max(last, seq)
        return last

    def owner_pid(self) -> int | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return int(json.loads(handle.readline()).get("pid"))
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def status(self) -> JournalStatus:
        done = self.acknowledged()
        entries = list(self.entries())
        pid = self.owner_pid()
        by_run: dict[str, int] = {}
        for seq, n, _, runs in entries:
            if seq > done:
                for run in runs or ["(no run)"]:
                    by_run[run] = by_run.get(run, 0) + n
        return JournalStatus(
            name=self.name,
            path=self.path,
            entries=len(entries),
            acknowledged=done,
            pending_records=sum(n for seq, n, _, _ in entries if seq > done),
            pending_by_run=by_run,
            owner_pid=pid,
            owner_alive=pid is not None and pid != os.getpid() and pid_alive(pid),
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        """Delete the journal (everything in it is in the store)."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.ack_path.unlink(missing_ok=True)


def journals(folder: Path) -> list[Journal]:
    """Every journal in a folder."""
    if not folder.is_dir():
        return []
    return [Journal(folder, p.stem) for p in sorted(folder.glob("*.jsonl"))]


@dataclass
class ReplayReport:
    """What one replay sent."""

    name: str
    batches: int = 0
    records: int = 0
    removed: bool = False
    skipped_live: bool = False


def replay(
    store, journal: Journal, remove_when_done: bool = True, chunk: int = 5000
) -> ReplayReport:
    """Send a journal's unacknowledged entries to `store`, in order, merged into
    transactions of about `chunk` records, acknowledging after each."""
    report = ReplayReport(journal.name)
    merged, last = GraphBatch(), 0

    def send() -> None:
        nonlocal merged
        if len(merged):
            store.write(merged)
            journal.acknowledge(last)
            report.records += len(merged)
        merged = GraphBatch()

    for seq, batch in journal.pending():
        merged.extend(batch)
        last = seq
        report.batches += 1
        if len(merged) >= chunk:
            send()
    send()
    if remove_when_done:
        journal.remove()
        report.removed = True
    return report


def sync(store, folder: Path, include_live: bool = False) -> list[ReplayReport]:
    """Replay every journal in `folder`; journals of live training processes are left to
    their own writer unless `include_live` (replay is idempotent either way)."""
    reports = []
    for journal in journals(folder):
        status = journal.status()
        if status.owner_alive and not include_live:
            reports.append(ReplayReport(journal.name, skipped_live=True))
            continue
        reports.append(replay(store, journal, remove_when_done=not status.owner_alive))
    return reports
