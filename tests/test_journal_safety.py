"""The journal never loses or poisons: bad entries are quarantined and the rest replayed,
old journals never take a run backwards, an unwritable journal is said so truthfully
(records kept in memory, a loss counted), concurrent syncs are safe, and every I/O
error is a clear message. Real stores, real files, real failing file systems."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import RunBuilder

from provkb import ontology as o
from provkb.config import resolve_settings
from provkb.kb.journal import Journal, journals, sync
from provkb.kb.quarantine import quarantined
from provkb.kb.records import GraphBatch
from provkb.kb.store import Store
from provkb.kb.writer import BackgroundWriter

RUN, EPOCH = o.TRAINING_RUN.label, o.EPOCH.label
MAX_VAL_ACCURACY = o.summary_prop(o.SummaryStat.MAX, "val_accuracy")


# -- records -----------------------------------------------------------------------
def _run_id() -> str:
    return uuid.uuid4().hex[:12]


def _recorded(run: str, epochs: int = 0, shared: str = "") -> RunBuilder:
    """A run as capture records it, `epochs` epochs in (project, experiment and person
    named `shared`, else `journal-safety`)."""
    names = shared or "journal-safety"
    recorded = RunBuilder(
        run, name=f"r-{run}", experiment=names, project=names, person=names, epochs_planned=40
    )
    for e in range(1, epochs + 1):
        recorded.epoch(e, {"loss": 1.0 / e, "val_accuracy": e / 100}, 1.5)
    return recorded


def _start(run: str, shared: str = "") -> GraphBatch:
    """A run's first batch."""
    return _recorded(run, shared=shared).batches[0]


def _epochs(run: str, last: int) -> list[GraphBatch]:
    """Epoch batches 1..last, each updating the run's progress and summary."""
    return _recorded(run, last).batches[1:]


def _finish(run: str, epochs: int) -> GraphBatch:
    """The run's last batch: completed after `epochs` epochs."""
    return _recorded(run, epochs).finish().batches[-1]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _journal(folder: Path, name: str, batches: list[GraphBatch], pid: int | None = None) -> Path:
    """A journal written by `Journal.append`, its owner `pid` (default: a dead process)."""
    journal = Journal(folder, name)
    for batch in batches:
        journal.append(batch)
    journal.close()
    lines = journal.path.read_bytes().split(b"\n", 1)
    header = json.dumps({"journal": name, "pid": pid or _dead_pid()}).encode()
    journal.path.write_bytes(header + b"\n" + lines[1])
    return journal.path


def _run_node(store: Store, run: str) -> dict:
    rows = store.read(f"MATCH (r:{RUN}) WHERE r.runId = $run RETURN properties(r) AS p", run=run)
    assert len(rows.rows) == 1
    return rows.rows[0]["p"]


def _epoch_count(store: Store, run: str) -> int:
    q = f"MATCH (e:{EPOCH}) WHERE e.runId = $run RETURN count(e) AS c"
    return store.read(q, run=run).rows[0]["c"]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provkb", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def child(store_env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment of a CLI child on the test store's engine, and its journal folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")}
    env.update(store_env)
    if not env.get("PROVKB_HOME"):
        env["PROVKB_HOME"] = str(tmp_path / "home")
    folder = Path(env["PROVKB_HOME"]) / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    return env, folder


# -- real failing file systems -------------------------------------------------------
def _mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def _tmpfs(path: Path, size: str = "64k") -> Iterator[bool]:
    """A tiny tmpfs on `path` (True), or False where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the file system of `folder` up; returns the filler file."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as handle:
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()
    return filler


@pytest.fixture(params=["not-a-directory", "read-only", "disk-full"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A journal folder the OS refuses to write, and the errno name it answers with.

    not-a-directory: its parent is a regular file (ENOTDIR); read-only: a read-only bind
    mount (EROFS; chmod 0500 when not root and mounts are not allowed); disk-full: a full
    tmpfs (ENOSPC; a journal file that is a symlink to /dev/full without mounts)."""
    if request.param == "not-a-directory":
        (tmp_path / "plain-file").write_text("not a folder")
        yield tmp_path / "plain-file" / "journal", "ENOTDIR"
        return
    folder = tmp_path / request.param
    folder.mkdir()
    if request.param == "read-only":
        if _mount("--bind", str(folder), str(folder)):
            try:
                assert _mount("-o", "remount,bind,ro", str(folder))
                yield folder, "EROFS"
            finally:
                subprocess.run(["umount", "-l", str(folder)], check=False)
            return
        assert os.geteuid() != 0, "as root without mounts no folder is read-only"
        folder.chmod(0o500)
        yield folder, "EACCES"
        folder.chmod(0o700)
        return
    with _tmpfs(folder, "16k") as mounted:
        if mounted:
            _fill(folder)
        else:
            (folder / "link.jsonl").symlink_to("/dev/full")  # the journal named "link"
        yield folder, "ENOSPC"


def _journal_name(folder: Path) -> str:
    return "link" if (folder / "link.jsonl").is_symlink() else f"w-{uuid.uuid4().hex[:6]}"


# -- quarantine ----------------------------------------------------------------------
def test_bad_entries_are_quarantined_and_everything_else_replayed(
    store: Store, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    folder = home / "journal"
    first, second = _run_id(), _run_id()
    path = _journal(folder, "a-first", [_start(first), *_epochs(first, 3)])
    dangling = GraphBatch()  # valid shape, but its relation's ends are nowhere
    dangling.add_edge(o.WAS_INFORMED_BY, f"provkb:run/{first}/epoch/404", f"provkb:run/{first}")
    wrong_shape = {"seq": 90, "n": 1, "runs": [first], "batch": {"nodes": [["x", "Nope", [], {}]]}}
    with open(path, "ab") as handle:
        handle.write(b'{"seq": 5, "n": 3, "batch": {"nodes": [[garbage\n')  # garbage
        handle.write(json.dumps(wrong_shape).encode() + b"\n")  # valid JSON, wrong shape
        handle.write(b"\xff\xfe not text at all\n")  # not UTF-8
        handle.write(b"[1, 2, 3]\n")  # JSON, not an object
    later = Journal(folder, "a-first")  # the owner goes on appending after the bad lines
    later.append(dangling)
    for batch in _epochs(first, 6)[3:]:
        later.append(batch)
    later.close()
    with open(path, "ab") as handle:
        handle.write(b'{"seq": 99, "n": 2, "batch": {"nod')  # cut short by a kill
    _journal(folder, "b-second", [_start(second), *_epochs(second, 4), _finish(second, 4)])

    reports = {r.name: r for r in sync(store, folder)}
    assert reports["a-first"].quarantined == 6 and reports["a-first"].removed
    assert reports["b-second"].quarantined == 0 and reports["b-second"].removed
    assert journals(folder) == []
    # everything else of both journals is in the store
    assert _epoch_count(store, first) == 6 and _epoch_count(store, second) == 4
    assert _run_node(store, first)["epochsCompleted"] == 6
    assert _run_node(store, second)["status"] == o.RunStatus.COMPLETED

    entries = quarantined(folder)
    assert [e.line for e in entries] == [6, 7, 8, 9, 10, 14]
    assert {e.journal for e in entries} == {"a-first"} and {e.source for e in entries} == {
        str(path)
    }
    errors = [e.error for e in entries]
    assert "not JSON" in errors[0] and "'Nope'" in errors[1] and "UTF-8" in errors[2]
    assert "not an object" in errors[3]
    assert "refused by the store" in errors[4] and entries[4].seq == 5
    assert "cut short" in errors[5]
    assert entries[2].raw == b"\xff\xfe not text at all"  # kept byte for byte

    status = _cli({**os.environ, "PROVKB_URI": ""}, "status", "--store", str(home))
    assert status.returncode == 0, status.stderr
    assert "quarantined journal entries (6)" in status.stdout
    assert "refused by the store" in status.stdout and "cut short" in status.stdout

    assert sync(store, folder) == []  # a second sync is a no-op
    assert len(quarantined(folder)) == 6


def test_a_live_journal_is_quarantined_once_and_its_last_line_left_to_its_writer(
    store: Store, tmp_path: Path
) -> None:
    run = _run_id()
    folder = tmp_path / "journal"
    path = _journal(folder, "live", [_start(run), *_epochs(run, 2)], pid=os.getppid())
    with open(path, "ab") as handle:
        handle.write(b"garbage\n")
        handle.write(b'{"seq": 4, "n": 1, "batch": {"nodes": [')  # being written
    for _ in range(2):
        reports = sync(store, folder, include_live=True)
        assert not reports[0].removed
    assert [e.line for e in quarantined(folder)] == [5]  # once, not per sync
    assert _epoch_count(store, run) == 2


# -- monotone run progress -------------------------------------------------------------
def _comparable(props: dict) -> dict:
    return {k: v for k, v in props.items() if k not in (o.Prop.ID, o.Prop.RUN_ID, o.Prop.NAME)}


@pytest.mark.parametrize("order", ["new-then-old", "old-then-new"])
def test_replaying_an_old_journal_never_takes_a_run_backwards(
    store: Store, tmp_path: Path, order: str
) -> None:
    run, reference = _run_id(), _run_id()
    folder = tmp_path / "journal"
    new = [_start(run), *_epochs(run, 40), _finish(run, 40)]
    old = [_start(run), *_epochs(run, 17)]  # a stale journal of the same run
    journals_in_order = [("new", new), ("old", old)]
    if order == "old-then-new":
        journals_in_order.reverse()
    for name, batches in journals_in_order:
        _journal(folder, name, batches)
        assert sync(store, folder)[0].removed

    for batch in [_start(reference), *_epochs(reference, 40), _finish(reference, 40)]:
        store.write(batch)  # the same run, written once in capture order
    node = _run_node(store, run)
    assert node["epochsCompleted"] == 40 and node["status"] == o.RunStatus.COMPLETED
    assert node[MAX_VAL_ACCURACY] == 0.4 and node[o.summary_prop("count", "loss")] == 40
    assert node[o.Prop.EPOCH_SECONDS] == 60.0
    assert _comparable(node) == _comparable(_run_node(store, reference))
    assert _epoch_count(store, run) == 40


def test_one_batch_holding_old_after_new_keeps_the_newer_run(store: Store) -> None:
    run = _run_id()
    newer = GraphBatch.concat([_start(run), *_epochs(run, 40), _finish(run, 40)])
    older = GraphBatch.concat([_start(run), *_epochs(run, 17)])
    store.write(GraphBatch.concat([newer, older]))  # one transaction, old laid over new
    node = _run_node(store, run)
    assert node["epochsCompleted"] == 40 and node[MAX_VAL_ACCURACY] == 0.4
    assert node["status"] == o.RunStatus.COMPLETED


def test_a_full_disk_mid_run_leaves_nothing_that_can_take_the_run_back(
    store: Store, tmp_path: Path
) -> None:
    """The journal's disk fills after a few epochs while the store is up: the run is
    complete in the store; its stale journal, replayed later, changes nothing."""
    run = _run_id()
    folder = tmp_path / "small"
    with _tmpfs(folder, "8k") as mounted:
        journal = Journal(folder, "full" if mounted else "link")
        if not mounted:  # the journal's file is /dev/full: its first write fails
            journal.path.symlink_to("/dev/full")
        writer = BackgroundWriter(store, journal=journal, linger=0)
        for batch in [_start(run), *_epochs(run, 40)]:
            writer.submit(batch)
        assert writer.flush(timeout=60)
        stale = journal.path.read_bytes() if mounted else b""
        writer.submit(_finish(run, 40))
        assert writer.close(timeout=60) is True
        assert writer.stats.unjournaled > 0 and writer.stats.lost == 0
    assert _run_node(store, run)["epochsCompleted"] == 40
    if stale:  # the journal as the full disk left it, found later by `provkb sync`
        (tmp_path / "later").mkdir()
        (tmp_path / "later" / "stale.jsonl").write_bytes(stale)
        assert sync(store, tmp_path / "later")[0].records > 0
    node = _run_node(store, run)
    assert node["epochsCompleted"] == 40 and node[MAX_VAL_ACCURACY] == 0.4
    assert node["status"] == o.RunStatus.COMPLETED


# -- an unwritable journal --------------------------------------------------------------
def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("provkb")]


def test_unwritable_journal_with_the_store_down_keeps_records_in_memory_and_says_so(
    store: Store, unwritable: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, code = unwritable
    run = _run_id()
    journal = Journal(folder, _journal_name(folder))
    down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    writer = BackgroundWriter(down, journal=journal, linger=0)
    batches = [_start(run), *_epochs(run, 10)]
    for batch in batches:
        writer.submit(batch)
    assert writer.flush(timeout=10) is False
    total = sum(len(b) for b in batches)
    assert writer.stats.unjournaled == total and writer.backlog == total
    said = " | ".join(_messages(caplog))
    assert f"cannot write the journal {journal.path}" in said and f"({code})" in said
    assert "in memory only" in said
    assert "provkb sync" not in said  # no file to sync from is promised

    writer.store = store  # the store is back
    assert writer.close(timeout=60) is True
    assert writer.stats.lost == 0 and writer.stats.written == total
    assert _epoch_count(store, run) == 10 and _run_node(store, run)["epochsCompleted"] == 10
    assert "provkb sync" not in " | ".join(_messages(caplog))


def test_a_journal_that_fills_mid_run_loses_nothing_when_the_store_returns(
    store: Store, tmp_path: Path
) -> None:
    """The store is down, the journal's disk fills after some epochs, memory overflows:
    the journaled batches are let go from memory (replayed from the journal later), the
    others are kept; when the store returns, the whole run is there."""
    run = _run_id()
    folder = tmp_path / "small"
    with _tmpfs(folder, "16k") as mounted:
        if not mounted:
            pytest.skip("needs a tmpfs mount to fill a journal's disk part way")
        down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
        writer = BackgroundWriter(down, journal=Journal(folder, "fills"), linger=0)
        batches = [_start(run), *_epochs(run, 60)]
        for batch in batches[:-1]:
            writer.submit(batch)
        assert 0 < writer.stats.unjournaled < writer.stats.submitted  # the disk filled
        writer.flush(timeout=10)
        writer.max_backlog = writer.stats.unjournaled + len(batches[-1])
        writer.submit(batches[-1])  # overflow: only journaled batches may go
        writer.flush(timeout=10)
        assert writer.backlog <= writer.max_backlog and writer.stats.lost == 0
        writer.store = store  # the store is back
        assert writer.close(timeout=60) is True
    assert writer.stats.lost == 0
    assert _epoch_count(store, run) == 60 and _run_node(store, run)["epochsCompleted"] == 60


def test_a_loss_beyond_the_memory_bound_is_counted_and_reported(
    unwritable: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, _ = unwritable
    run = _run_id()
    down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    writer = BackgroundWriter(
        down, journal=Journal(folder, _journal_name(folder)), max_backlog=12, linger=0
    )
    batches = _epochs(run, 10)
    records = sum(map(len, batches))
    assert records == 5 + 9 * 6  # epoch 2 on is also informed by the epoch before
    for batch in batches:
        writer.submit(batch)
    writer.flush(timeout=10)
    assert writer.backlog <= 12 and writer.stats.lost >= records - 12
    assert writer.close(timeout=1) is False
    assert writer.stats.lost == records  # the store never came back: all of it, counted
    said = _messages(caplog)
    assert sum("are being lost" in m for m in said) == 1
    assert any(f"{records} provenance records were lost" in m for m in said)
    assert not any("run `provkb sync`" in m for m in said)


# -- I/O errors in sync ------------------------------------------------------------------
def test_sync_on_a_full_disk_is_a_clear_error_and_loses_nothing(
    store: Store, child: tuple[dict[str, str], Path]
) -> None:
    env, folder = child
    run, name = _run_id(), f"full-{uuid.uuid4().hex[:6]}"
    with _tmpfs(folder, "64k") as mounted:
        _journal(folder, name, [_start(run), *_epochs(run, 3)])
        if mounted:
            filler = _fill(folder)
        else:  # the acknowledgement's file is /dev/full
            filler = folder / f"{name}.ack.tmp"
            filler.symlink_to("/dev/full")
        done = _cli(env, "sync")
        assert done.returncode != 0
        assert "No space left on device (ENOSPC)" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        assert (folder / f"{name}.jsonl").exists()  # kept
        filler.unlink(missing_ok=True)
        again = _cli(env, "sync")
        assert again.returncode == 0, again.stderr
        assert not (folder / f"{name}.jsonl").exists()
    assert _epoch_count(store, run) == 3


def test_sync_of_an_unreadable_journal_names_it_and_replays_the_others(
    store: Store, child: tuple[dict[str, str], Path]
) -> None:
    env, folder = child
    run = _run_id()
    broken = folder / f"a-dir-{uuid.uuid4().hex[:6]}.jsonl"  # a folder named like a journal
    broken.mkdir()
    name = f"b-{uuid.uuid4().hex[:6]}"
    _journal(folder, name, [_start(run), *_epochs(run, 2)])
    try:
        done = _cli(env, "sync")
        assert done.returncode != 0
        assert f"cannot replay the journal {broken}" in done.stderr
        assert "Is a directory (EISDIR)" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        assert _epoch_count(store, run) == 2 and not (folder / f"{name}.jsonl").exists()
    finally:
        broken.rmdir()


# -- concurrency ---------------------------------------------------------------------
def test_concurrent_syncs_are_safe_and_quiet(
    store: Store, child: tuple[dict[str, str], Path]
) -> None:
    env, folder = child
    shared = f"shared-{uuid.uuid4().hex[:8]}"  # project, experiment, person: new, in all
    runs = [_run_id() for _ in range(6)]
    for i, run in enumerate(runs):
        _journal(folder, f"c{i}-{run}", [_start(run, shared), *_epochs(run, 20)])
    syncs = [
        subprocess.Popen(
            [sys.executable, "-m", "provkb", "sync"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in syncs]
    for p, (out, err) in zip(syncs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "Duplicated key" not in out + err and "error" not in err.lower()
    for run in runs:
        assert _epoch_count(store, run) == 20
        assert _run_node(store, run)["epochsCompleted"] == 20
    for kind, node in (
        (o.ACTIVITY, f"provkb:project/{shared}"),
        (o.AGENT, f"provkb:person/{shared}"),
    ):
        q = f"MATCH (n:{kind.label} {{id: $id}}) RETURN count(n) AS c"
        assert store.read(q, id=node).rows == [{"c": 1}]
    edges = store.read(
        f"MATCH (r:{RUN})-[e:{o.WAS_INFORMED_BY.rel_type}]->(x) WHERE r.runId IN $runs "
        f"RETURN count(e) AS c",
        runs=runs,
    ).rows
    assert edges == [{"c": 6}]
    assert not any(f"c{i}-{run}" in j.name for i, run in enumerate(runs) for j in journals(folder))


def test_two_writers_creating_the_same_new_nodes_both_succeed(store: Store) -> None:
    """Engine difference: ArcadeDB refuses the second of two concurrent creates of one
    id ("Duplicated key"); the store retries it as an update."""
    tag = uuid.uuid4().hex[:8]
    stores = [Store(store.settings) for _ in range(2)]
    failures: list[Exception] = []

    def write(s: Store) -> None:
        for i in range(15):
            batch = GraphBatch()
            for k in range(20):
                batch.add_node(f"provkb:person/{tag}-{i}-{k}", o.AGENT, o.PERSON, name=tag)
            try:
                s.write(batch)
            except Exception as exc:
                failures.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert failures == []
    rows = store.read("MATCH (p:Person) WHERE p.name = $tag RETURN count(p) AS c", tag=tag).rows
    assert rows == [{"c": 300}]
