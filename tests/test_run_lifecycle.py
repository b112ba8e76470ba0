"""Runs and requests that always finish (issue 10, section 5) and who really steered (6).

- a training process keeps a heartbeat on its run from the writer's thread; killed, its
  run shows `interrupted`, `provkb sync` records it so (with its last epoch) and
  steering it is refused at once;
- requests racing the end of a run are all applied or rejected, none stays pending;
- the embedded server is found by its database lock when `server.json` is gone, and no
  client starts a second server on a locked database;
- `fit` returns after a bounded final wait when the store dies at the end;
- every steering request records the OS account and host beside the claimed person.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keras
import numpy as np
import pytest

from provkb import ontology as o
from provkb.capture import ids
from provkb.capture.callback import ProvenanceCallback
from provkb.capture.facts import Hyperparameter, Run, RunContext, Source
from provkb.capture.recorder import RunRecorder
from provkb.config import resolve_settings
from provkb.errors import ConfigError, EmbeddedServerError, SteeringRejected
from provkb.kb import lifecycle
from provkb.kb.embedded import EmbeddedServer, pid_alive
from provkb.kb.journal import journal_folder, journals
from provkb.kb.records import GraphBatch
from provkb.kb.steering import APPLIED, CLAIMED, FINAL, NOTE, PENDING, REJECTED, SET, Steering
from provkb.kb.store import Store
from provkb.queries import registry

CHILD = Path(__file__).with_name("fault_child.py")
RUN = o.TRAINING_RUN.label
BEAT_ENV = {"PROVKB_HEARTBEAT_INTERVAL": "1", "PROVKB_HEARTBEAT_TIMEOUT": "3"}


# -- helpers ------------------------------------------------------------------------
def _iso(delta_seconds: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_seconds)).isoformat()


def _run_node(
    store: Store,
    status: str = "running",
    heartbeat: str | None = None,
    timeout: float | None = 600.0,
    started: str | None = None,
    epochs: int = 0,
) -> str:
    """A run as capture writes it (status, start, heartbeat), with `epochs` epochs."""
    run = uuid.uuid4().hex[:12]
    batch = GraphBatch()
    node = batch.add_node(
        f"provkb:run/{run}",
        o.ACTIVITY,
        o.TRAINING_RUN,
        runId=run,
        name=f"life-{run}",
        experiment="lifecycle",
        status=status,
        startedAtTime=started or _iso(),
        heartbeat=heartbeat,
        heartbeatTimeout=timeout,
        epochsCompleted=epochs,
    )
    batch.add_node(
        f"provkb:run/{run}/hp/learning_rate/v1",
        o.ENTITY,
        o.HYPERPARAMETER,
        runId=run,
        name="learning_rate",
        value=0.01,
        version=1,
        fromEpoch=1,
        steerable=True,
    )
    for n in range(1, epochs + 1):
        epoch = batch.add_node(
            f"provkb:run/{run}/epoch/{n}", o.ACTIVITY, o.EPOCH, runId=run, epoch=n
        )
        batch.add_edge(o.WAS_INFORMED_BY, epoch, node)
    store.write(batch)
    return run


def _fall_silent(store: Store, run: str) -> None:
    """As if the run's process died a minute ago (its last beat then; 3 s timeout)."""
    batch = GraphBatch()
    batch.add_node(
        f"provkb:run/{run}", o.ACTIVITY, o.TRAINING_RUN, heartbeat=_iso(-60), heartbeatTimeout=3.0
    )
    store.write(batch)


def _stored(store: Store, run: str) -> dict:
    rows = store.read(
        f"MATCH (r:{RUN}) WHERE r.runId = $run RETURN properties(r) AS p", run=run
    ).rows
    return rows[0]["p"] if rows else {}


def _shown(store: Store, run: str, experiment: str = "lifecycle") -> str | None:
    rows = registry.run(store, "runs", experiment=experiment, limit=1000).rows
    return next((r["status"] for r in rows if r["runId"] == run), None)


def _cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provkb", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        input="",
    )


def _child_env(store_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A child process on the test's engine (journals of a Neo4j child in tmp_path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")}
    env["PROVKB_HOME"] = str(tmp_path / "child-home")
    env.update(store_env)
    return env


def _wait_for(what: str, check, timeout: float = 120.0, every: float = 0.2):
    """Poll `check()` until it returns something truthy (a wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(every)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def _model() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


# -- heartbeat and interrupted runs --------------------------------------------------------
def test_shown_status_follows_the_heartbeat(store: Store) -> None:
    fresh = _run_node(store, heartbeat=_iso())
    silent = _run_node(store, heartbeat=_iso(-60), timeout=3.0)
    never_beat = _run_node(store, started=_iso(-60), timeout=3.0)  # died before its first beat
    legacy = _run_node(store, started=_iso(-3600), timeout=None)  # recorded before heartbeats
    done = _run_node(store, status="completed", heartbeat=_iso(-60))
    assert _shown(store, fresh) == "running"
    assert _shown(store, silent) == o.RunStatus.INTERRUPTED
    assert _shown(store, never_beat) == o.RunStatus.INTERRUPTED
    assert _shown(store, legacy) == "running"
    assert _shown(store, done) == "completed"
    # a beat is proof of life; an ended run takes none
    assert lifecycle.beat(store, f"provkb:run/{silent}")
    assert _shown(store, silent) == "running"
    assert not lifecycle.beat(store, f"provkb:run/{done}")
    assert _stored(store, done)["heartbeat"] < _iso(-30)


def test_steering_a_silent_run_is_refused_at_once(store: Store) -> None:
    run = _run_node(store, heartbeat=_iso(-60), timeout=3.0)
    with pytest.raises(SteeringRejected, match="interrupted"):
        Steering(store).submit(run, SET, "learning_rate", 0.001)
    rows = registry.run(store, "steering-history", run=run).rows
    assert [r["status"] for r in rows] == [REJECTED]
    assert "not been heard from" in rows[0]["statusReason"]


def test_a_request_waited_on_is_rejected_when_its_run_goes_silent(store: Store) -> None:
    run = _run_node(store, heartbeat=_iso())
    steering = Steering(store)
    request = steering.submit(run, NOTE, note="still there?")
    assert request.status == PENDING
    threading.Timer(1.0, _fall_silent, (store, run)).start()
    final = steering.wait(request.request_id, timeout=120, poll=0.2)
    assert final.status == REJECTED and "interrupted" in (final.status_reason or "")


def test_sync_records_silent_runs_interrupted_and_rejects_their_requests(
    store: Store, store_env: dict[str, str], tmp_path: Path
) -> None:
    run = _run_node(store, heartbeat=_iso(), epochs=3)
    request = Steering(store).submit(run, NOTE, note="left behind")
    _fall_silent(store, run)
    assert _shown(store, run) == "interrupted"
    done = _cli(_child_env(store_env, tmp_path), "sync")
    assert done.returncode == 0, done.stderr
    assert f"run {run}" in done.stdout and "interrupted after epoch 3" in done.stdout
    stored = _stored(store, run)
    assert stored["status"] == o.RunStatus.INTERRUPTED and stored["stoppedEpoch"] == 3
    assert stored["endedAtTime"] == stored["heartbeat"]
    assert Steering(store).get(request.request_id).status == REJECTED


def test_a_request_outcome_is_written_once_and_only_by_its_claimer(store: Store) -> None:
    """One path changes a request's state: guarded statements, never a blind overwrite
    (an outcome stays whatever is written after it)."""
    run = _run_node(store, heartbeat=_iso())
    steering = Steering(store)
    request = steering.submit(run, NOTE, note="once")
    [claimed] = steering.claim(run, "trainer-a")
    stranger = Steering(store).get(request.request_id)
    stranger.extra["claimedBy"] = "trainer-b"
    assert steering.resolve(stranger, REJECTED, "not mine") is False
    assert steering.get(request.request_id).status == CLAIMED
    assert steering.resolve(claimed, APPLIED, appliedEpoch=3, actionId="a-1") is True
    assert steering.reject_unapplied(run, lifecycle.RUN_ENDED) == 0  # the end sweep
    assert steering.resolve(claimed, REJECTED, "too late") is False  # a second outcome
    final = steering.get(request.request_id)
    assert final.status == APPLIED and final.status_reason is None
    assert final.extra["appliedEpoch"] == 3 and final.extra["actionId"] == "a-1"


def test_sync_applies_a_claimed_request_whose_action_was_recorded(store: Store) -> None:
    """A training that recorded an action but ended before the store took the request's
    outcome: `sync` records the request applied (as its action says), not rejected."""
    run_id = uuid.uuid4().hex[:12]
    recorder = RunRecorder(Run(run_id, "r", "lifecycle", "proj", "ada", _iso(), 3))
    ctx = RunContext(recorder.run)
    ctx.hyperparameters = [Hyperparameter("learning_rate", 0.01, Source.OPTIMIZER, steerable=True)]
    store.write(recorder.start(ctx))
    steering = Steering(store)
    applied = steering.submit(run_id, NOTE, note="recorded, outcome lost")
    left = steering.submit(run_id, NOTE, note="never applied")
    claimed = {r.request_id: r for r in steering.claim(run_id, "trainer")}
    assert set(claimed) == {applied.request_id, left.request_id}
    action = recorder.steering(
        applied.request_id, NOTE, "ada", 2, _iso(), note=applied.note,
        request_node=applied.node_id,
    )  # fmt: skip
    store.write(action)
    store.write(recorder.finish(o.RunStatus.COMPLETED, _iso()))
    assert lifecycle.reject_orphaned(store) == 1
    done = steering.get(applied.request_id)
    assert done.status == APPLIED and done.extra["appliedEpoch"] == 2
    assert done.extra["actionId"] == ids.steering_action(run_id, applied.request_id)
    rejected = steering.get(left.request_id)
    assert rejected.status == REJECTED and rejected.status_reason == lifecycle.RUN_ENDED


def test_heartbeat_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVKB_HEARTBEAT_INTERVAL", "2")
    monkeypatch.delenv("PROVKB_HEARTBEAT_TIMEOUT", raising=False)
    assert lifecycle.HeartbeatSettings.from_env() == lifecycle.HeartbeatSettings(2.0, 6.0)
    monkeypatch.setenv("PROVKB_HEARTBEAT_TIMEOUT", "1")
    with pytest.raises(ConfigError, match="longer than the heartbeat interval"):
        lifecycle.HeartbeatSettings.from_env()
    monkeypatch.setenv("PROVKB_HEARTBEAT_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="PROVKB_HEARTBEAT_INTERVAL"):
        lifecycle.HeartbeatSettings.from_env()


@pytest.mark.slow
def test_sigkilled_training_is_interrupted_synced_and_refuses_steering(
    store: Store, store_env: dict[str, str], tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**_child_env(store_env, tmp_path), **BEAT_ENV}
    log = (tmp_path / "child.log").open("w")
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "kill", "8", str(markers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        _wait_for("epoch 3", lambda: (markers / "epoch-3").exists() or child.poll(), 240)
        assert child.poll() is None, "the training process died on its own"
        run = next(markers.glob("run-*")).name.removeprefix("run-")
        silent_since = datetime.now(UTC)  # the training thread now sleeps in epoch 4
        beats: set[str] = set()

        def beating_while_stuck() -> bool:
            # beats keep coming while the training thread is stuck in its epoch: the
            # writer's thread beats, not the training thread
            beat = _stored(store, run).get("heartbeat")
            if beat and datetime.fromisoformat(beat) > silent_since:
                beats.add(beat)
            return len(beats) >= 3

        _wait_for("heartbeats while the training thread is stuck", beating_while_stuck, 150)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        log.close()
    assert child.returncode == -signal.SIGKILL

    _wait_for("the run to show interrupted", lambda: _shown(store, run, "faults") == "interrupted")
    assert _stored(store, run)["status"] == "running"  # only shown so, until sync records it

    steer = _cli(env, "steer", run, "--set", "learning_rate=0.001", "--timeout", "600")
    assert steer.returncode == 1, steer.stdout + steer.stderr
    assert "interrupted" in steer.stderr and "not been heard from" in steer.stderr
    history = registry.run(store, "steering-history", run=run).rows
    assert [r["status"] for r in history] == [REJECTED]  # refused at once, not pending

    synced = _cli(env, "sync")
    assert synced.returncode == 0, synced.stderr
    assert f"run {run}" in synced.stdout and "interrupted after epoch 3" in synced.stdout
    stored = _stored(store, run)
    assert stored["status"] == o.RunStatus.INTERRUPTED
    assert stored["stoppedEpoch"] == 3 and stored["epochsCompleted"] == 3
    assert _shown(store, run, "faults") == o.RunStatus.INTERRUPTED


# -- requests racing the end of a run ------------------------------------------------------
@pytest.mark.slow
def test_requests_racing_the_end_of_a_run_are_all_resolved(store: Store) -> None:
    submitters = 50
    go = threading.Barrier(submitters + 1)
    submitted: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    capture = ProvenanceCallback(
        experiment="lifecycle", store=store, poll_interval=0.05, run_name="race"
    )

    def submit(i: int) -> None:
        try:
            go.wait()
            steering = Steering(store)
            if i % 2:
                request = steering.submit_request(capture.run_id, NOTE, note=f"n{i}")
            else:
                request = steering.submit_request(capture.run_id, SET, "learning_rate", 0.001)
            with lock:
                submitted.append(request.request_id)
        except BaseException as exc:
            errors.append(exc)

    class Release(keras.callbacks.Callback):
        def on_train_end(self, logs=None):  # runs just before the capture's on_train_end
            _wait_for("the run in the store", lambda: Steering(store).run_state(capture.run_id))
            go.wait()

    threads = [threading.Thread(target=submit, args=(i,), daemon=True) for i in range(submitters)]
    for t in threads:
        t.start()
    x, y = _data()
    _model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[Release(), capture])
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(submitted) == submitters
    steering = Steering(store)

    def all_resolved() -> list:
        states = [steering.get(r) for r in submitted]
        return states if all(s.status in FINAL for s in states) else []

    states = _wait_for("every request to be applied or rejected", all_resolved, 120)
    assert {s.status for s in states} <= {APPLIED, REJECTED}
    assert steering.pending_count(capture.run_id) == 0
    assert _stored(store, capture.run_id)["status"] == "completed"


# -- the embedded server without server.json ------------------------------------------------
def _ready_lines(home: Path) -> int:
    log = home / "server.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return text.count("provkb embedded server ready")


def test_server_found_without_its_record(tmp_path: Path) -> None:
    home = tmp_path / "kb"
    server = EmbeddedServer(home)
    first = server.ensure_running()
    try:
        (home / "server.json").unlink()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")}
        status = _cli(env, "server", "status", "--store", str(home))
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"pid: {first.pid}" in status.stdout
        assert (home / "server.json").exists()  # written again

        (home / "server.json").unlink()
        with Store(resolve_settings(store=home)) as store:  # connects, no second JVM
            assert store.counts()["nodes"] >= 0
        assert server.status().pid == first.pid
        assert _ready_lines(home) == 1

        (home / "server.json").unlink()
        stop = _cli(env, "server", "stop", "--store", str(home))
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout + stop.stderr
    finally:
        server.stop()
    assert not pid_alive(first.pid)
    assert server.status() is None


def test_no_second_server_on_a_database_a_live_process_holds(tmp_path: Path) -> None:
    home = tmp_path / "kb"
    server = EmbeddedServer(home)
    server.database_lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(300)",
            str(server.database_lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert server.holder() == holder.pid
        with pytest.raises(EmbeddedServerError, match=f"locked by process {holder.pid}"):
            server.ensure_running(timeout=1.0)
        assert not (home / "server.log").exists()  # no JVM was started
    finally:
        holder.kill()
        holder.wait()
    assert server.holder() is None


# -- a bounded final wait -------------------------------------------------------------------
@pytest.mark.slow
def test_fit_returns_after_a_bounded_wait_when_the_server_dies_at_the_end(
    tmp_path: Path,
) -> None:
    home = tmp_path / "kb"
    server = EmbeddedServer(home)
    first = server.ensure_running()
    store = Store(resolve_settings(store=home))
    capture = ProvenanceCallback(experiment="lifecycle", store=store, final_wait=0.5)
    last_epoch_end: list[float] = []

    class KillServer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:  # the last one
                os.kill(first.pid, signal.SIGKILL)
                last_epoch_end.append(time.monotonic())

    x, y = _data()
    try:
        _model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[capture, KillServer()])
        returned = time.monotonic()
        # the mechanism: on_train_end stopped waiting at `final_wait`, with records unsent
        assert capture.final_flush_complete is False
        pending = sum(
            j.status().pending_by_run.get(capture.run_id, 0) for j in journals(journal_folder(home))
        )
        assert pending > 0  # what is not committed is in the journal
        print(
            f"\nfit returned {returned - last_epoch_end[0]:.2f} s after its last epoch "
            f"(final_wait {capture.final_wait} s, on_train_end waited "
            f"{capture.end_wait_seconds:.2f} s)"
        )
        # and it all arrives once the (restarted) server is back
        assert capture.writer.flush(timeout=180, wait_while_unreachable=True)
        assert _stored(store, capture.run_id)["status"] == "completed"
    finally:
        capture.writer.close(timeout=5)
        store.close()
        server.stop()


def test_final_wait_zero_returns_at_once_without_a_false_alarm(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """`final_wait=0` asks `fit` not to wait for the store: no "not written yet"
    warning for what the person chose, and the whole run still arrives."""
    capture = ProvenanceCallback(experiment="lifecycle", store=store, final_wait=0)
    x, y = _data()
    with caplog.at_level(logging.WARNING, logger="provkb"):
        _model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[capture])
    assert not [r for r in caplog.records if "not written yet" in r.getMessage()]
    assert capture.writer.flush(timeout=60)
    assert _stored(store, capture.run_id)["status"] == "completed"


# -- who really asked -----------------------------------------------------------------------
def test_steering_requests_record_the_os_account_and_host(
    store: Store, store_env: dict[str, str], tmp_path: Path
) -> None:
    run = _run_node(store, heartbeat=_iso())
    me, host = pwd.getpwuid(os.getuid()).pw_name, socket.gethostname()
    api = Steering(store).submit(run, NOTE, note="from python", person="mallory")
    env = {**_child_env(store_env, tmp_path), "USER": "eve", "LOGNAME": "eve"}
    cli = _cli(env, "steer", run, "--note", "from the shell", "--person", "eve", "--no-wait")
    assert cli.returncode == 0, cli.stderr
    rows = {r["note"]: r for r in registry.run(store, "steering-history", run=run).rows}
    assert rows["from python"]["person"] == "mallory"
    assert rows["from the shell"]["person"] == "eve"  # the claim, as made
    for row in rows.values():  # beside the real account and machine ($USER lied)
        assert (row["osUser"], row["host"]) == (me, host)
    assert Steering(store).get(api.request_id).os_user == me


def test_the_app_shows_a_silent_run_as_interrupted(store: Store) -> None:
    """The Overview's counts, filter and pages and the run pickers show the shown status."""
    from provkb.ui import data

    silent = _run_node(store, heartbeat=_iso(-60), timeout=3.0)
    page = data.runs_page(store, search=silent)
    assert [r["status"] for r in page] == [o.RunStatus.INTERRUPTED]
    interrupted = data.runs_page(store, statuses=[o.RunStatus.INTERRUPTED], limit=10_000)
    assert silent in {r["runId"] for r in interrupted}
    running = data.runs_page(store, statuses=[o.RunStatus.RUNNING], limit=10_000)
    assert silent not in {r["runId"] for r in running}
    assert data.status_counts(store).get(o.RunStatus.INTERRUPTED, 0) >= 1
    lifecycle_row = next(e for e in data.experiments(store) if e["experiment"] == "lifecycle")
    assert lifecycle_row[o.RunStatus.INTERRUPTED] >= 1
