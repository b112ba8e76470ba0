"""Fault injection on the real engines: nothing handed to ProvKB is lost.

- the server stopped and restarted in the middle of a training;
- training while the store is unreachable, then `provkb sync`;
- a training process killed with SIGKILL mid-epoch, then `provkb sync`: only the
  epoch in progress is missing;
- eight training processes writing to one store at once while the CLI reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import neo4j_control

from provkb import ontology as o
from provkb.capture.callback import ProvenanceCallback
from provkb.config import resolve_settings
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.journal import journal_folder, journals, sync
from provkb.kb.store import Store

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("fault_child.py")
EPOCH, METRICS, RUN = o.EPOCH.label, o.METRICS.label, o.TRAINING_RUN.label


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def _model() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _epochs(store: Store, run_id: str) -> list[int]:
    rows = store.read(
        f"MATCH (m:{METRICS}) WHERE m.runId = $run AND m.epoch IS NOT NULL "
        f"AND m.kind = 'epoch' RETURN m.epoch AS e ORDER BY e",
        run=run_id,
    ).rows
    return [r["e"] for r in rows]


def _assert_complete(store: Store, run_id: str, epochs: int) -> None:
    """Every epoch of the run is stored and the run ended as completed."""
    assert _epochs(store, run_id) == list(range(1, epochs + 1))
    status = store.read(f"MATCH (r:{RUN}) WHERE r.runId = $run RETURN r.status AS s", run=run_id)
    assert status.rows == [{"s": "completed"}]


def _child_env(home: Path, uri: str | None = None, **store_env: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")}
    env["PROVKB_HOME"] = str(home)
    env.update(store_env)
    if uri:
        env["PROVKB_URI"] = uri
    return env


def test_neo4j_stopped_and_restarted_mid_training_loses_nothing(
    neo4j_server: dict[str, str], tmp_path: Path
) -> None:
    """The Neo4j server goes away after epoch 1 and comes back (same port) while the
    training goes on: every epoch is there in the end."""
    store = Store(
        resolve_settings(
            uri=neo4j_server["NEO4J_URI"],
            user=neo4j_server["NEO4J_USER"],
            password=neo4j_server["NEO4J_PASSWORD"],
        )
    )
    capture = ProvenanceCallback(experiment="faults", store=store)
    restarted: list[threading.Thread] = []

    class Chaos(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                neo4j_control(neo4j_server, "stop")
                back = threading.Thread(target=neo4j_control, args=(neo4j_server, "start"))
                back.start()
                restarted.append(back)

    x, y = _data()
    try:
        _model().fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[capture, Chaos()])
        restarted[0].join(timeout=300)
        assert capture.writer.flush(timeout=120, wait_while_unreachable=True)
        _assert_complete(store, capture.run_id, epochs=6)
    finally:
        capture.writer.close(timeout=5)
        store.close()


def test_server_stopped_and_restarted_mid_training_loses_nothing(tmp_path: Path) -> None:
    home = tmp_path / "kb"
    server = EmbeddedServer(home)
    first = server.ensure_running()
    store = Store(resolve_settings(store=home))
    capture = ProvenanceCallback(experiment="faults", store=store)
    outage: list[int] = []

    class Chaos(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                server.stop()
                outage.append(epoch)

    x, y = _data()
    try:
        _model().fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[capture, Chaos()])
        assert capture.writer.flush(timeout=120, wait_while_unreachable=True)
        assert outage == [1]
        restarted = server.status()
        assert restarted is not None and restarted.pid != first.pid
        assert restarted.bolt_port == first.bolt_port  # clients keep their address
        _assert_complete(store, capture.run_id, epochs=6)
    finally:
        capture.writer.close(timeout=5)
        store.close()
        server.stop()


def test_training_with_store_down_then_sync_recovers_everything(
    store: Store, embedded_home: Path
) -> None:
    down = Store(resolve_settings(uri="bolt://127.0.0.1:1"))
    capture = ProvenanceCallback(experiment="faults", store=down)
    x, y = _data()
    _model().fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[capture])
    assert _epochs(store, capture.run_id) == []  # nothing reached the store

    folder = journal_folder(down.settings.home)
    pending = {j.name: j.status().pending_by_run.get(capture.run_id, 0) for j in journals(folder)}
    assert sum(pending.values()) > 0
    capture.writer.close(timeout=1)  # the process would end here; the journal stays
    reports = sync(store, folder, include_live=True)
    assert sum(r.records for r in reports) >= sum(pending.values())
    assert _epochs(store, capture.run_id) == [1, 2, 3, 4, 5]
    again = sync(store, folder, include_live=True)  # idempotent, nothing left
    assert sum(r.records for r in again) == 0


def test_sigkill_mid_epoch_loses_only_the_epoch_in_progress(
    store: Store, store_env: dict[str, str], tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    home = tmp_path / "journal-home"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "kill", "8", str(markers)],
        env=_child_env(home, uri="bolt://127.0.0.1:1"),  # the store is down for the child
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not (markers / "epoch-3").exists():
            assert child.poll() is None, "the training process died on its own"
            assert time.monotonic() < deadline, "the training process never reached epoch 3"
            time.sleep(0.1)
        time.sleep(0.5)  # well inside epoch 4 now
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    run_id = next(markers.glob("run-*")).name.removeprefix("run-")
    assert child.returncode == -signal.SIGKILL

    # `provkb sync` replays the dead process's journal into the real store
    sync_home = tmp_path / "sync-home"
    result = subprocess.run(
        [sys.executable, "-m", "provkb", "sync"],
        env=_child_env(sync_home, **store_env),
        capture_output=True,
        text=True,
        timeout=180,
        input="",
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 0 records" in result.stdout  # that store's own journal folder is empty

    reports = sync(store, journal_folder(home))
    assert sum(r.records for r in reports) > 0
    assert _epochs(store, run_id) == [1, 2, 3]  # epoch 4 was in progress: only it is lost
    run = store.read(f"MATCH (r:{RUN}) WHERE r.runId = $run RETURN r.status AS s", run=run_id)
    assert run.rows == [{"s": "running"}]  # it never ended


def test_eight_concurrent_training_processes_lose_and_duplicate_nothing(
    store: Store, store_env: dict[str, str], tmp_path: Path
) -> None:
    env = _child_env(tmp_path / "home", **store_env)
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), "plain", "3", str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(8)
    ]
    reads = 0
    while any(c.poll() is None for c in children):
        # the CLI reads while they write
        out = subprocess.run(
            [sys.executable, "-m", "provkb", "query", "runs", "-f", "json"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        reads += 1
    run_ids = []
    for child in children:
        stdout, _ = child.communicate(timeout=300)
        assert child.returncode == 0
        run_ids.append(stdout.strip().splitlines()[0])
    assert len(set(run_ids)) == 8 and reads >= 1
    # a child whose writer did not finish within its exit flush leaves the rest in its
    # journal (a loaded machine); `provkb sync` is how a user gets it into the store
    synced = subprocess.run(
        [sys.executable, "-m", "provkb", "sync"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    for run_id in run_ids:
        assert _epochs(store, run_id) == [1, 2, 3]
    per_run = store.read(
        "MATCH (n) WHERE n.runId IN $runs RETURN n.runId AS run, count(n) AS nodes ORDER BY run",
        runs=run_ids,
    ).rows
    assert len({r["nodes"] for r in per_run}) == 1  # every run is equally complete
    duplicates = store.read(
        "MATCH (n) WHERE n.runId IN $runs WITH n.id AS id, count(*) AS c WHERE c > 1 "
        "RETURN count(id) AS dup",
        runs=run_ids,
    ).rows
    assert duplicates == [{"dup": 0}]
