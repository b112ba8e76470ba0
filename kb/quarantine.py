"""Journal entries `provkb sync` could not replay, moved aside with why and where from.

One JSON-lines file per source journal in `<journal folder>/quarantine/`. Each line
keeps the entry exactly as it was in the journal (its text, or base64 of its bytes
when they are not UTF-8), the journal it came from, its line number and byte offset,
its sequence number when it has one, and the error. Nothing in a quarantine is
replayed again by itself; `provkb status` lists it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True)
class BadEntry:
    """A journal line that cannot be replayed: where it is, what it holds, why."""

    line: int  # 1-based line number in the journal
    offset: int  # byte offset of the line in the journal
    raw: bytes  # the line as written, without its newline
    error: str
    seq: int | None = None
    records: int | None = None
    runs: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuarantinedEntry:
    """One line of a quarantine file."""

    journal: str
    source: str  # the journal's path
    line: int
    offset: int
    seq: int | None
    records: int | None
    runs: list[str]
    error: str
    quarantined_at: str
    path: Path  # the quarantine file
    raw: bytes  # the journal line as it was


def quarantine_folder(journal_folder: Path) -> Path:
    """Where the quarantines of a journal folder live."""
    return Path(journal_folder) / QUARANTINE_DIR


class Quarantine:
    """The quarantine file of one journal."""

    def __init__(self, journal_folder: Path, journal_name: str) -> None:
        self.folder = quarantine_folder(journal_folder)
        self.journal_name = journal_name

    @property
    def path(self) -> Path:
        return self.folder / f"{self.journal_name}.jsonl"

    def offsets(self) -> set[int]:
        """Offsets of the lines of this journal already quarantined."""
        return {entry.offset for entry in read_file(self.path)}

    def add(self, source: Path, entries: list[BadEntry]) -> None:
        """Append `entries` durably (fsync): the journal may drop them afterwards.

        Raises OSError when the quarantine cannot be written."""
        if not entries:
            return
        now = datetime.now(UTC).isoformat()
        lines = [_record(self.journal_name, source, entry, now) for entry in entries]
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                data = "".join(line + "\n" for line in lines).encode("utf-8")
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)  # no half-written record left behind
                raise
        finally:
            os.close(fd)


def _record(journal: str, source: Path, entry: BadEntry, now: str) -> str:
    data: dict = {
        "journal": journal,
        "source": str(source),
        "line": entry.line,
        "offset": entry.offset,
        "seq": entry.seq,
        "records": entry.records,
        "runs": list(entry.runs),
        "error": entry.error,
        "quarantinedAt": now,
    }
    try:
        data["entry"] = entry.raw.decode("utf-8")
    except UnicodeDecodeError:
        data["entryBase64"] = base64.b64encode(entry.raw).decode("ascii")
    return json.dumps(data)


def _raw(data: dict) -> bytes:
    if "entryBase64" in data:
        return base64.b64decode(data["entryBase64"])
    return str(data.get("entry", "")).encode("utf-8")


def read_file(path: Path) -> Iterator[QuarantinedEntry]:
    """The entries of one quarantine file (an unreadable line is skipped; a file that
    cannot be opened raises OSError)."""
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except FileNotFoundError:
        return
    with handle:
        for text in handle:
            try:
                data = json.loads(text)
                yield QuarantinedEntry(
                    journal=str(data["journal"]),
                    source=str(data.get("source", "")),
                    line=int(data["line"]),
                    offset=int(data["offset"]),
                    seq=data.get("seq"),
                    records=data.get("records"),
                    runs=list(data.get("runs") or []),
                    error=str(data.get("error", "")),
                    quarantined_at=str(data.get("quarantinedAt", "")),
                    path=Path(path),
                    raw=_raw(data),
                )
            except (ValueError, KeyError, TypeError):
                continue


def quarantined(journal_folder: Path) -> list[QuarantinedEntry]:
    """Every quarantined entry of a journal folder, by file then line."""
    folder = quarantine_folder(journal_folder)
    if not folder.is_dir():
        return []
    entries = [entry for path in sorted(folder.glob("*.jsonl")) for entry in read_file(path)]
    return sorted(entries, key=lambda e: (str(e.path), e.line))
