"""The Keras callback that records a training run as W3C PROV (docs/graph-model.md).

    model.fit(x, y, callbacks=[ProvenanceCallback(experiment="digits")])

Nothing happens in the constructor: the store is reached from a background writer
started when training begins, and no hook ever raises into `fit`.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import keras

from ..errors import ConfigError
from ..kb import lifecycle
from ..kb.records import GraphBatch
from ..kb.steering import APPLIED, NOTE, SET, STOP, Steering, SteeringRequest
from ..kb.writer import BackgroundWriter
from ..ontology import TRAINING_RUN, Prop, RunStatus
from . import attribution, datasets, environment, fit_context, model_info, sink
from .facts import GENERIC_CALLBACK, Dataset, Hyperparameter, Role, Run, RunContext, Source
from .fit_context import CallArgs
from .recorder import RunRecorder, same_value
from .safety import WarnOnce, guarded
from .steerable import Steerable
from .steering import RUN_ENDED, Applied, SteeringApplier, SteeringPoller

DEFAULT_PROJECT = "default"
DEFAULT_FINAL_WAIT = 2.0  # seconds on_train_end waits for the store at most
KERAS_DEFAULT_BATCH_SIZE = 32
_FIT_HYPERPARAMETERS = (
    "epochs",
    "batch_size",
    "validation_split",
    "shuffle",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)

_LAST_CALLBACK = "_provkb_last_callback"  # attribute of a model (a cycle the GC can free)
_training: weakref.WeakSet[ProvenanceCallback] = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


def now() -> str:
    """The current time as ISO 8601 UTC text."""
    return datetime.now(UTC).isoformat()


def new_run_id() -> str:
    """12 hex characters of a uuid4."""
    return uuid.uuid4().hex[:12]


def callback_for(model: Any) -> ProvenanceCallback | None:
    """The callback that recorded the last run of `model` (used by autolog's evaluate)."""
    callback = getattr(model, _LAST_CALLBACK, None)
    return callback if isinstance(callback, ProvenanceCallback) else None


def _remember(model: Any, callback: ProvenanceCallback) -> None:
    # Not a weak mapping: its values (callbacks) hold their model, which would never die.
    # Set past Keras' attribute tracking, so the model's saving is not affected.
    with contextlib.suppress(Exception):
        object.__setattr__(model, _LAST_CALLBACK, callback)


def _at_exit() -> None:
    for callback in list(_training):
        callback.record_failure("the process exited before training ended", flush=False)
    sink.close_all()


def _ensure_atexit() -> None:
    global _atexit_registered
    with _atexit_lock:
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True


class ProvenanceCallback(keras.callbacks.Callback):
    """Records one run per `fit` (and each later `evaluate` it is given) as PROV.

    Args:
        experiment: experiment name (the run is informed by it).
        run_name: a readable name of the run (default: its id).
        hyperparameters: extra values to record (source `user`).
        person: who runs the training (default: the OS user).
        store: a `Store`, an embedded store folder, or None for the default settings.
        project: project name (default `default`).
        datasets: names of the datasets by role, e.g. `{"train": "digits"}`.
        flush_timeout: seconds `evaluate` (and the steering clean-up, in the
            background) wait for the writer at most.
        final_wait: seconds `on_train_end` waits for the store at most (default
            `PROVKB_FINAL_WAIT`, else 2): `fit` returns by then whatever the store
            does; what is not written yet stays in the journal and is sent later.
        steerable: values of the script a person may set while training runs: a
            mapping name -> `provkb.Steerable` (or a list of them), recorded as
            hyperparameters (source `user`, `steerable: true`).
        poll_interval: seconds between two checks for steering requests (a
            background thread also checks right after each epoch end).
        steer_every_n_batches: also apply requests every N training batches (stop
            requests still wait for the end of the epoch); None: at epoch ends only.
        steering: False switches steering off (the run is recorded as not steerable).

    `run_id` is the id of the current (or next) run; `writer` the background writer;
    `steering_log` lists every steering request this callback applied or rejected;
    `hook_seconds` is the time its hooks took in the training thread so far.
    Requests (`provkb steer`, `provkb.steer`) are applied at the next epoch end:
    optimizer hyperparameters on the optimizer (the train function is rebuilt for
    those Keras compiles in), `Steerable`s get their new value, stop ends training
    after the current epoch (status `stopped`), notes are recorded.
    """

    def __init__(
        self,
        experiment: str = "default",
        run_name: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        person: str | None = None,
        store: sink.StoreLike = None,
        project: str | None = None,
        datasets: Mapping[str, str] | None = None,
        flush_timeout: float = 10.0,
        steerable: Mapping[str, Steerable] | Iterable[Steerable] | None = None,
        poll_interval: float = 1.0,
        steer_every_n_batches: int | None = None,
        steering: bool = True,
        final_wait: float | None = None,
    ) -> None:
        super().__init__()
        environment.prefetch()  # read the installed packages off the training thread
        self.experiment = experiment
        self.project = project or DEFAULT_PROJECT
        self.run_name = run_name
        self.hyperparameters = dict(hyperparameters or {})
        self.person = person
        self.store = store
        self.dataset_names = dict(datasets or {})
        self.flush_timeout = flush_timeout
        self.final_wait = final_wait
        self.end_wait_seconds: float | None = None  # what the last on_train_end waited
        self.final_flush_complete: bool | None = None  # whether it all got written then
        self.run_id = new_run_id()
        self._writer: BackgroundWriter | None = None
        self._warn = WarnOnce()
        self._recorder: RunRecorder | None = None
        self._runs = 0
        self.hook_seconds = 0.0
        self._in_hook = False
        self._in_fit = False
        self._pending_fit: CallArgs | None = None
        self._pending_eval: CallArgs | None = None
        self._eval: tuple[str, CallArgs | None] | None = None
        # Tracking of mutable hyperparameters (see `attribution`).
        self._siblings: list[Any] = []
        self._tracked: list[str] = []
        self._seen: dict[str, Any] = {}
        self._changed_by: dict[str, str] = {}
        self._hook = attribution.TRAIN_BEGIN
        self._awaiting_batch = False
        self._epoch_started = ""
        self._epoch_t0 = 0.0
        self._last_epoch: int | None = None
        self._final_epoch: int | None = None  # the epoch number fit stops after
        # Steering (see `steering`): nothing runs before training begins.
        self.steering = bool(steering)
        self.steerables = _steerables(steerable)
        self.poll_interval = float(poll_interval)
        self.steer_every_n_batches = steer_every_n_batches
        if steer_every_n_batches is not None:
            if int(steer_every_n_batches) < 1:
                raise ValueError("steer_every_n_batches must be a positive number or None")
            self.steer_every_n_batches = int(steer_every_n_batches)
            # An instance attribute, so Keras keeps its fast asynchronous batch-end
            # dispatch for every callback list where it is not asked for.
            self.on_train_batch_end = self._steer_batch_end
        self.steering_log: list[Applied] = []
        self._steer_warn = WarnOnce()
        self._poller: SteeringPoller | None = None
        self._applier: SteeringApplier | None = None
        self._deferred: list[SteeringRequest] = []
        self._steered: dict[str, tuple[Any, Any]] = {}  # name -> (live value, recorded)
        self._stopped_by_request: int | None = None
        self._batches_seen = 0
        self._ending_poller: SteeringPoller | None = None

    # -- plumbing ---------------------------------------------------------------
    @property
    def writer(self) -> BackgroundWriter:
        """The background writer of this callback's store (created on first use)."""
        if self._writer is None:
            self._writer = sink.writer_for(self.store)
        return self._writer

    @property
    def recorder(self) -> RunRecorder | None:
        """The graph builder of the current run (None before training)."""
        return self._recorder

    def _submit(self, batch: GraphBatch) -> None:
        if len(batch):
            self.writer.submit(batch)

    def _flush(self, timeout: float | None = None) -> bool:
        if self.writer.flush(self.flush_timeout if timeout is None else timeout):
            return True
        self._warn(
            "provkb: provenance of run %s is not written yet (%s); it is kept in "
            "memory and retried in the background",
            self.run_id,
            self.writer.stats.last_error or "store busy",
        )
        return False

    def _wait_at_end(self, started: float) -> None:
        """Wait for the store (the writer, then the steering clean-up) until
        `final_wait` seconds after `started` at most; the rest goes on in the background."""
        limit = self._final_wait_limit()
        self.final_flush_complete = self._flush(max(0.0, started + limit - time.monotonic()))
        self._join_poller(max(0.0, started + limit - time.monotonic()))
        self.end_wait_seconds = time.monotonic() - started

    def _final_wait_limit(self) -> float:
        if self.final_wait is not None:
            return max(0.0, float(self.final_wait))
        text = os.environ.get("PROVKB_FINAL_WAIT")
        try:
            return max(0.0, float(text)) if text else DEFAULT_FINAL_WAIT
        except ValueError:
            self._warn("provkb: PROVKB_FINAL_WAIT must be a number of seconds, got %r", text)
            return DEFAULT_FINAL_WAIT

    # -- heartbeat --------------------------------------------------------------
    def _heartbeat_settings(self) -> lifecycle.HeartbeatSettings:
        try:
            return lifecycle.HeartbeatSettings.from_env()
        except ConfigError as exc:
            self._warn("provkb: %s; using the default heartbeat", exc)
            return lifecycle.HeartbeatSettings()

    @property
    def _heartbeat_key(self) -> str:
        return f"heartbeat:{self.run_id}"

    def _start_heartbeat(self, run_node: str, interval: float) -> None:
        """The writer's thread says every `interval` seconds that this run lives."""
        self.writer.every(self._heartbeat_key, interval, lambda s: lifecycle.beat(s, run_node))

    def _stop_heartbeat(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.every(self._heartbeat_key, 0, None)

    def _fact(self, what: str, fn: Any) -> Any:
        """Compute one fact; a failure loses that fact only."""
        try:
            return fn()
        except Exception as exc:
            self._warn("provkb: could not capture the %s: %s", what, exc, exc=exc)
            return None

    @property
    def _optimizer(self) -> Any:
        return getattr(self.model, "optimizer", None)

    # -- training ---------------------------------------------------------------
    @guarded
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._in_fit:
            self.record_failure("training ended without on_train_end", flush=False)
        args = self._pending_fit or fit_context.fit_from_frames(self.model)
        self._pending_fit = None
        if args is None:
            args = CallArgs({"epochs": (self.params or {}).get("epochs")})
        siblings = args.callbacks or fit_context.sibling_callbacks(self) or []
        if not any(c is self for c in siblings):
            siblings = [*siblings, self]
        if self._runs:
            self.run_id = new_run_id()
        self._runs += 1
        self._start_run(args, siblings)

    def _start_run(self, args: CallArgs, siblings: list[Any]) -> None:
        model = self.model
        epochs = args.get("epochs") or (self.params or {}).get("epochs")
        initial_epoch = int(args.get("initial_epoch") or 0)
        run = Run(
            run_id=self.run_id,
            name=self.run_name or self.run_id,
            experiment=self.experiment,
            project=self.project,
            person=environment.person_name(self.person),
            started=now(),
            epochs_planned=int(epochs) - initial_epoch if epochs is not None else None,
            first_epoch=initial_epoch + 1,
            command_line=environment.command_line(),
            steerable=self.steering,
        )
        ctx = RunContext(run)
        ctx.software = self._fact("software", environment.software)
        ctx.machine = self._fact("machine", environment.machine)
        ctx.environment = self._fact("environment", environment.environment)
        ctx.script = self._fact("script", environment.script)
        ctx.plan = self._fact("plan", lambda: model_info.plan(model))
        ctx.model = self._fact("model", lambda: model_info.describe_model(model))
        ctx.hyperparameters = self._hyperparameters(args)
        ctx.datasets = self._fact("datasets", lambda: self._fit_datasets(args)) or {}
        recorder = RunRecorder(run)
        batch = recorder.start(ctx)
        beats = self._heartbeat_settings()
        batch.add_node(
            recorder.run_node,
            TRAINING_RUN.kind,
            TRAINING_RUN,
            **{Prop.HEARTBEAT_TIMEOUT: beats.timeout},
        )
        self._recorder = recorder
        self._siblings = siblings
        self._tracked = recorder.ledger.tracked_names()
        self._seen = model_info.read_tracked(self._optimizer, self._tracked)
        self._changed_by = {}
        self._hook = attribution.TRAIN_BEGIN
        self._awaiting_batch = False
        self._last_epoch = None
        self._final_epoch = int(epochs) if epochs is not None else None
        self._in_fit = True
        _training.add(self)
        _remember(model, self)
        _ensure_atexit()
        self._submit(batch)
        self._start_heartbeat(recorder.run_node, beats.interval)
        self._start_steering()

    def _hyperparameters(self, args: CallArgs) -> list[Hyperparameter]:
        out: list[Hyperparameter] = []
        optimizer = self._optimizer
        if optimizer is not None:
            out += (
                self._fact("optimizer", lambda: model_info.optimizer_hyperparameters(optimizer))
                or []
            )
        out += self._fact("fit arguments", lambda: self._fit_hyperparameters(args)) or []
        out += (
            self._fact("compile arguments", lambda: model_info.compile_hyperparameters(self.model))
            or []
        )
        known = {hp.name for hp in out}
        for name, steerable in self.steerables.items():
            if name in known:
                self._warn(
                    "provkb: the steerable %r has the name of a hyperparameter ProvKB "
                    "records itself; rename it to make it steerable",
                    name,
                )
                continue
            out.append(Hyperparameter(name, steerable.value, Source.USER, steerable=True))
            known.add(name)
        out += [
            Hyperparameter(str(k), v, Source.USER)
            for k, v in self.hyperparameters.items()
            if str(k) not in known
        ]
        if not self.steering:
            out = [dataclasses.replace(hp, steerable=False) for hp in out]
        return out

    @staticmethod
    def _fit_hyperparameters(args: CallArgs) -> list[Hyperparameter]:
        values = {k: args.get(k) for k in _FIT_HYPERPARAMETERS}
        x = args.get("x")
        if values["batch_size"] is None and hasattr(x, "shape"):
            values["batch_size"] = KERAS_DEFAULT_BATCH_SIZE  # what Keras uses for arrays
        given = args.get("validation_data") is not None
        if args.split_done and args.get("validation_split"):
            given = False  # Keras made validation_data from validation_split
        values["validation_data"] = given
        if args.get("class_weight") is not None:
            values["class_weight"] = {str(k): v for k, v in args.get("class_weight").items()}
        return [Hyperparameter(k, v, Source.FIT) for k, v in values.items() if v is not None]

    def _dataset(self, role: str, x: Any, y: Any, args: CallArgs, salt: str) -> Dataset | None:
        name = self.dataset_names.get(role) or args.name_of(x)
        return datasets.describe(x, y, name=name, salt=f"{self.run_id}/{salt}")

    def _fit_datasets(self, args: CallArgs) -> dict[str, Dataset]:
        x, y = args.get("x"), args.get("y")
        validation = args.get("validation_data")
        split = args.get("validation_split") or 0.0
        if validation is not None:
            vx, vy = datasets.unpack(validation)
        elif split and not args.split_done:
            (x, y), (vx, vy) = datasets.split(x, y, split)
        else:
            vx = vy = None
        out = {}
        for role, (dx, dy) in ((Role.TRAIN, (x, y)), (Role.VALIDATION, (vx, vy))):
            described = self._dataset(role, dx, dy, args, role)
            if described is not None:
                out[role] = described
        return out

    # -- epochs -----------------------------------------------------------------
    @guarded
    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._recorder is None or not self._in_fit:
            return
        self._epoch_started = now()
        self._epoch_t0 = time.monotonic()
        self._checkpoint(attribution.EPOCH_BEGIN)
        self._awaiting_batch = True

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._awaiting_batch:
            self._first_batch()

    @guarded
    def _first_batch(self) -> None:
        self._awaiting_batch = False
        self._enter_epoch(attribution.FIRST_BATCH)

    def _enter_epoch(self, hook: str) -> None:
        """The epoch's values are now final: record what changed since the last epoch."""
        self._checkpoint(hook)
        self._commit(self._next_epoch)

    @property
    def _next_epoch(self) -> int:
        if self._last_epoch is not None:
            return self._last_epoch + 1
        assert self._recorder is not None
        return self._recorder.run.first_epoch

    def _checkpoint(self, hook: str) -> None:
        """Read the tracked values; attribute each change to the callbacks that ran."""
        values = model_info.read_tracked(self._optimizer, self._tracked)
        for name, value in list(values.items()):
            steered = self._steered.get(name)
            if steered is not None:  # a value steering set: seen as it was recorded
                if same_value(value, steered[0]):
                    values[name] = steered[1]
                else:
                    del self._steered[name]
        for name, value in values.items():
            if name in self._seen and not same_value(value, self._seen[name]):
                found = attribution.candidates(self._siblings, self, self._hook, hook, name)
                self._changed_by[name] = attribution.responsible(
                    found, name, self._seen[name], value, self._optimizer
                )
        self._seen.update(values)
        self._hook = hook

    def _commit(self, from_epoch: int) -> None:
        """Record an adaptation for each tracked value that differs from its version."""
        recorder = self._recorder
        assert recorder is not None
        batch, at = GraphBatch(), now()
        for name in self._tracked:
            current = recorder.ledger.current(name)
            if current is None or name not in self._seen:
                continue
            value = self._seen[name]
            if not same_value(value, current.value):
                callback = self._changed_by.get(name, GENERIC_CALLBACK)
                batch.extend(recorder.adaptation(name, value, from_epoch, callback, at))
        self._changed_by.clear()
        self._submit(batch)

    @guarded
    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        recorder = self._recorder
        if recorder is None or not self._in_fit:
            return
        if self._awaiting_batch:  # an epoch without batches
            self._awaiting_batch = False
            self._enter_epoch(attribution.EPOCH_END)
        self._checkpoint(attribution.EPOCH_END)
        n = epoch + 1
        values = dict(logs or {})
        learning_rate = recorder.ledger.current(model_info.LEARNING_RATE)
        if model_info.LEARNING_RATE not in values and learning_rate is not None:
            values[model_info.LEARNING_RATE] = learning_rate.value
        elapsed = time.monotonic() - self._epoch_t0
        self._submit(recorder.epoch(n, self._epoch_started or now(), now(), elapsed, values))
        self._last_epoch = n
        self._apply_steering()

    @guarded
    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        recorder = self._recorder
        if recorder is None or not self._in_fit:
            return
        started = time.monotonic()
        try:
            self._checkpoint(attribution.TRAIN_END)
            self._commit(self._next_epoch)
            status, stopped, at = RunStatus.COMPLETED, None, now()
            last = self._last_epoch or recorder.run.first_epoch - 1
            final = self._final_epoch
            cut_short = final is None or last < final
            if self._stopped_by_request is not None and cut_short:
                status, stopped = RunStatus.STOPPED, last
            elif getattr(self.model, "stop_training", False) and cut_short:
                status, stopped = RunStatus.STOPPED_EARLY, last
                self._submit(recorder.early_stop(last, self._stopper(), at))
            sha = self._fact("model weights", lambda: model_info.weights_sha256(self.model))
            self._submit(recorder.finish(status, at, stopped, weights_sha256=sha))
        finally:
            self._in_fit = False
            _training.discard(self)
            self._stop_heartbeat()
            # After the final status: the poller's last sweep runs once it is written.
            self._end_steering()
            self._wait_at_end(started)

    def _stopper(self) -> str:
        """Class name of the callback that stopped training."""
        names = [type(c).__name__ for c in self._siblings]
        for c in self._siblings:
            if type(c).__name__ == "EarlyStopping" and getattr(c, "stopped_epoch", 0):
                return "EarlyStopping"
        for name in ("EarlyStopping", "TerminateOnNaN"):
            if name in names:
                return name
        return GENERIC_CALLBACK

    def record_failure(self, error: BaseException | str, flush: bool = True) -> None:
        """Mark the running run as failed (autolog calls this when fit raises)."""
        try:
            recorder = self._recorder
            if recorder is None or not self._in_fit:
                return
            started = time.monotonic()
            self._in_fit = False
            _training.discard(self)
            self._stop_heartbeat()
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            self._submit(recorder.finish(RunStatus.FAILED, now(), error=text))
            self._end_steering()  # after the final status (see on_train_end)
            if flush:
                self._wait_at_end(started)
        except Exception as exc:
            self._warn("provkb: could not record the failure: %s", exc, exc=exc)

    # -- steering ---------------------------------------------------------------
    @property
    def steering_poller(self) -> SteeringPoller | None:
        """The thread claiming this run's steering requests (None outside training)."""
        return self._poller

    def _start_steering(self) -> None:
        """Start claiming requests for the new run (never raises)."""
        self._poller, self._applier, self._deferred = None, None, []
        self._steered, self._stopped_by_request, self._batches_seen = {}, None, 0
        if not self.steering or self._recorder is None:
            return
        try:
            ledger = self._recorder.ledger
            recorded = {  # those recorded as user values (not shadowed by Keras' own)
                name: s
                for name, s in self.steerables.items()
                if (v := ledger.current(name)) is not None and v.source == Source.USER
            }
            self._applier = SteeringApplier(self.model, self._recorder, recorded)
            self._poller = SteeringPoller(
                self.writer.store, self.run_id, self.poll_interval, warn=self._steer_warn
            ).start()
        except Exception as exc:
            self._poller = None
            self._steer_warn("provkb: steering is unavailable: %s", exc, exc=exc)

    def _apply_steering(self, batch: int | None = None) -> None:
        """Apply what the poller claimed (the training thread never waits on the store).

        At an epoch end (`batch` None) changes take effect from the next epoch; every
        N batches (`steer_every_n_batches`) from the next batch, stop requests then
        waiting for the epoch end.
        """
        poller, applier = self._poller, self._applier
        if poller is None or applier is None:
            return
        requests, self._deferred = [*self._deferred, *poller.drain()], []
        if not requests:
            if batch is None:
                poller.wake()
            return
        # JAX: reading `self.model` attaches the training state to the model first
        # (mid-epoch it lives apart), so the next step starts from what we change.
        applier.model = self.model
        out = GraphBatch()
        # At an epoch end the next epoch is the first to use a change; mid-epoch, the
        # epoch being trained (from its next batch on).
        at, next_epoch, last = now(), self._next_epoch, self._last_epoch
        for request in requests:
            if batch is not None and request.action == STOP:
                self._deferred.append(request)
                continue
            try:
                record, outcome = applier.apply(request, next_epoch, last, at, batch)
            except Exception as exc:  # a bug, not a refusal: reject, keep training
                record, outcome = applier.reject(request, f"could not be applied: {exc}")
                self._steer_warn("provkb: a steering request failed: %s", exc, exc=exc)
            out.extend(record)
            self.steering_log.append(outcome)
            if outcome.status == APPLIED:
                self._steered_effect(request, outcome)
        self._submit(out)
        if batch is None:
            poller.wake()

    def _steered_effect(self, request: SteeringRequest, outcome: Applied) -> None:
        if request.action == SET and outcome.hyperparameter in self._tracked:
            name = outcome.hyperparameter
            self._seen[name] = outcome.new_value
            self._steered[name] = (outcome.live_value, outcome.new_value)
            self._changed_by.pop(name, None)
        elif request.action == STOP:
            self._stopped_by_request = outcome.epoch

    def _steer_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """`on_train_batch_end` when `steer_every_n_batches` is set."""
        self._batches_seen += 1
        n = self.steer_every_n_batches
        if n and self._batches_seen % n == 0 and self._in_fit:
            self._guarded_batch_steering(batch)

    @guarded
    def _guarded_batch_steering(self, batch: int) -> None:
        self._apply_steering(batch)

    def _end_steering(self) -> None:
        """Stop claiming. What was claimed but not applied: notes are recorded, the
        rest rejected; the poller thread then rejects whatever is left in the store."""
        poller, applier = self._poller, self._applier
        if poller is None:
            return
        self._poller = None
        try:
            requests = [*self._deferred, *poller.drain()]
            self._deferred = []
            out = GraphBatch()
            for request in requests:
                if request.action == NOTE and applier is not None:
                    record, outcome = applier.apply(
                        request, self._next_epoch, self._last_epoch, now()
                    )
                elif applier is not None:
                    record, outcome = applier.reject(request, RUN_ENDED)
                else:
                    continue
                out.extend(record)
                self.steering_log.append(outcome)
            self._submit(out)
        except Exception as exc:
            self._steer_warn("provkb: steering clean-up failed: %s", exc, exc=exc)
        writer, run_id, timeout = self.writer, self.run_id, self.flush_timeout

        def finish() -> None:
            # Only once our own resolutions and the run's final status are written, so
            # none is overwritten and a request submitted later is refused by its
            # submitter (`Steering.submit_request` checks again after writing it).
            if writer.flush(timeout, wait_while_unreachable=True):
                Steering(writer.store).reject_unapplied(run_id, RUN_ENDED)

        self._ending_poller = poller
        poller.stop(finish)

    def _join_poller(self, timeout: float) -> None:
        poller = getattr(self, "_ending_poller", None)
        if poller is not None and poller.join(timeout):
            self._ending_poller = None

    # -- evaluation -------------------------------------------------------------
    @guarded
    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._in_fit:  # validation inside fit: part of the epoch's metrics
            return
        args = self._pending_eval or fit_context.evaluate_from_frames(self.model)
        self._pending_eval = None
        self._eval = (now(), args)

    @guarded
    def on_test_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._in_fit or self._eval is None:
            return
        started, args = self._eval
        self._eval = None
        recorder = self._recorder
        if recorder is None:
            self._warn("provkb: evaluate without a recorded run: nothing recorded")
            return
        dataset = None
        if args is not None:
            k = recorder.evaluations + 1
            dataset = self._fact(
                "test dataset",
                lambda: self._dataset(Role.TEST, args.get("x"), args.get("y"), args, f"test/{k}"),
            )
        self._submit(recorder.evaluation(started, now(), dict(logs or {}), dataset))
        self._flush()


def _steerables(
    given: Mapping[str, Steerable] | Iterable[Steerable] | None,
) -> dict[str, Steerable]:
    """name -> Steerable, from a mapping or a list of `Steerable`s."""
    if given is None:
        return {}
    items = given.items() if isinstance(given, Mapping) else ((s.name, s) for s in given)
    out: dict[str, Steerable] = {}
    for name, steerable in items:
        if not isinstance(steerable, Steerable):
            raise TypeError(
                f"steerable {name!r} must be a provkb.Steerable, got {type(steerable).__name__}"
            )
        out[str(name)] = steerable
    return out
