"""The Keras callback that records a training run as W3C PROV (docs/graph-model.md).

    model.fit(x, y, callbacks=[ProvenanceCallback(experiment="digits")])

A thin layer of hooks that delegate: `run_start` (what a run records when it begins),
`tracker` (the hyperparameter watch and change attribution), `steering_session` (the
run's steering) and `run_lifecycle` (heartbeat, the end wait, the exit registry), while
`RunRecorder` builds the graph. Nothing happens in the constructor: the store is
reached from a background writer started when training begins, and no hook ever
raises into `fit` (except in strict mode, `PROVKB_STRICT=1`: see `safety`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import keras

from ..kb.records import GraphBatch
from ..kb.writer import BackgroundWriter
from ..ontology import TRAINING_RUN, Prop, RunStatus
from . import (
    attribution,
    callback_settings,
    environment,
    fit_context,
    model_info,
    model_store,
    run_lifecycle,
    run_start,
    sink,
    step_series,
)
from .facts import Role, Run, RunContext
from .fit_context import CallArgs
from .predictions import PredictionCapture
from .recorder import RunRecorder
from .run_lifecycle import DEFAULT_FINAL_WAIT as DEFAULT_FINAL_WAIT
from .run_lifecycle import RunLifecycle, new_run_id, now
from .run_start import KERAS_DEFAULT_BATCH_SIZE as KERAS_DEFAULT_BATCH_SIZE
from .safety import WarnOnce, guarded
from .steerable import Steerable
from .steering import Applied, SteeringPoller
from .steering_session import SteeringSession, steerables_of
from .tracker import HyperparameterTracker

__all__ = ["ProvenanceCallback", "callback_for", "new_run_id", "now"]

DEFAULT_PROJECT = "default"
_LAST_CALLBACK = "_provkb_last_callback"  # attribute of a model (a cycle the GC can free)


def callback_for(model: Any) -> ProvenanceCallback | None:
    """The callback that recorded the last run of `model` (used by autolog's evaluate)."""
    callback = getattr(model, _LAST_CALLBACK, None)
    return callback if isinstance(callback, ProvenanceCallback) else None


def _remember(model: Any, callback: ProvenanceCallback) -> None:
    # Not a weak mapping: its values (callbacks) hold their model, which would never die.
    # Set past Keras' attribute tracking, so the model's saving is not affected.
    with contextlib.suppress(Exception):
        object.__setattr__(model, _LAST_CALLBACK, callback)


class ProvenanceCallback(keras.callbacks.Callback):
    """Records one run per `fit` (and each later `evaluate` it is given) as PROV.

    Args:
        experiment: experiment name (the run is informed by it).
        run_name: a readable name of the run (default: `<optimizer>-lr<value>-<MMDD>-
            <HHMMSS>` of its start, `run_start.default_run_name`).
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
        log_every_n_steps: also record every N-th training step's batch logs as step
            series (`capture.step_series`: one MetricSeries per epoch and metric, typed
            arrays of steps and values); None (default): epochs only.
        reproduces: the id of the run this training reproduces (`provkb reproduce` writes
            it into the script): the run records it (`reproduces`) and its Plan
            WAS_DERIVED_FROM that run's Plan (prov:type provkb:Reproduction).
        save_model: True saves the trained model at the end of each fit as a `.keras`
            file in the store folder's artifacts area, a path saves it there (a
            `.keras` file, or a folder getting `<run id>.keras`; a `file://` URI is
            its path, other URIs raise ConfigError here), recorded as a
            StoredModel the run generated (`capture.model_store`). Default: not saved.
        prediction_sample_rows: output rows a recorded `predict` keeps on its
            Predictions entity (0: none; `capture.predictions`).

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
        reproduces: str | None = None,
        log_every_n_steps: int | None = None,
        save_model: model_store.SaveModel = False,
        prediction_sample_rows: int = 5,
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
        if reproduces is not None and (not isinstance(reproduces, str) or not reproduces.strip()):
            raise ValueError(f"reproduces must be the id of a run, got {reproduces!r}")
        self.reproduces = reproduces.strip() if reproduces else None
        self.save_model = model_store.checked(save_model)  # issue 17: the stored model
        self.stored_model_path: Path | None = None  # the file the last run saved
        self._predictions = PredictionCapture(self, prediction_sample_rows)
        self.end_wait_seconds: float | None = None  # what the last on_train_end waited
        self.final_flush_complete: bool | None = None  # whether it all got written then
        self.run_id = new_run_id()
        self.hook_seconds = 0.0
        self.steering = bool(steering)
        self.steerables = steerables_of(steerable)
        self.poll_interval = float(poll_interval)
        self.steer_every_n_batches = steer_every_n_batches
        if steer_every_n_batches is not None:
            if int(steer_every_n_batches) < 1:
                raise ValueError("steer_every_n_batches must be a positive number or None")
            self.steer_every_n_batches = int(steer_every_n_batches)
            # An instance attribute, so Keras keeps its fast asynchronous batch-end
            # dispatch for every callback list where it is not asked for.
            self.on_train_batch_end = self._steer_batch_end
        self.log_every_n_steps = step_series.check_every(log_every_n_steps)
        self._steps: step_series.StepSeries | None = None  # the run's step series
        if self.log_every_n_steps is not None:
            self.on_train_batch_end = self._step_batch_end
            # Keras may then run batch ends off the training thread (JAX): fine for the
            # step series, not for steering a batch.
            self.async_safe = self.steer_every_n_batches is None
        self.steering_log: list[Applied] = []
        self._writer: BackgroundWriter | None = None
        self._warn = WarnOnce()
        self._steer_warn = WarnOnce()
        self._in_hook = False
        self._in_fit = False
        self._runs = 0
        self._recorder: RunRecorder | None = None
        self._life: RunLifecycle | None = None
        self._tracker = HyperparameterTracker(self)
        self._session: SteeringSession | None = None
        self._pending_fit: CallArgs | None = None  # set by autolog before fit
        self._pending_eval: CallArgs | None = None  # and before evaluate
        self._eval: tuple[str, CallArgs | None] | None = None
        self._awaiting_batch = False
        self._epoch_started = ""
        self._epoch_t0 = 0.0
        self._last_epoch: int | None = None
        self._final_epoch: int | None = None  # the epoch number fit stops after
        self._batches_seen = 0

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

    @property
    def steering_poller(self) -> SteeringPoller | None:
        """The thread claiming this run's steering requests (None outside training)."""
        return self._session.poller if self._session is not None else None

    def _submit(self, batch: GraphBatch) -> None:
        if len(batch):
            self.writer.submit(batch)

    @property
    def _optimizer(self) -> Any:
        return getattr(self.model, "optimizer", None)

    @property
    def _next_epoch(self) -> int:
        if self._last_epoch is not None:
            return self._last_epoch + 1
        assert self._recorder is not None
        return self._recorder.run.first_epoch

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
        previous = callback_for(self.model)  # continued training: the model's last run
        previous_run = None
        if previous is not None and previous._recorder is not None:
            previous_run = previous._recorder.run_id if previous._recorder.has_model else None
        if self._runs:
            self.run_id = new_run_id()
        self._runs += 1
        self._start_run(args, siblings, previous_run)

    def _start_run(self, args: CallArgs, siblings: list[Any], previous_run: str | None) -> None:
        model, warn = self.model, self._warn
        epochs = args.get("epochs") or (self.params or {}).get("epochs")
        initial_epoch = int(args.get("initial_epoch") or 0)
        started = now()
        hyperparameters = run_start.hyperparameters(
            model, args, self.steerables, self.hyperparameters, self.steering, warn
        )
        run = Run(
            run_id=self.run_id,
            name=self.run_name
            or run_start.default_run_name(hyperparameters, started, self.experiment, self.run_id),
            experiment=self.experiment,
            project=self.project,
            person=environment.person_name(self.person),
            started=started,
            epochs_planned=int(epochs) - initial_epoch if epochs is not None else None,
            first_epoch=initial_epoch + 1,
            command_line=environment.command_line(),
            steerable=self.steering,
        )
        ctx = RunContext(run)
        ctx.software = run_start.fact(warn, "software", environment.software)
        ctx.machine = run_start.fact(warn, "machine", environment.machine)
        ctx.environment = run_start.fact(warn, "environment", environment.environment)
        ctx.script = run_start.fact(warn, "script", environment.script)
        ctx.plan = run_start.fact(warn, "plan", lambda: model_info.plan(model))
        ctx.model = run_start.fact(warn, "model", lambda: model_info.describe_model(model))
        ctx.hyperparameters = hyperparameters
        names = self.dataset_names
        ctx.datasets = (
            run_start.fact(
                warn, "datasets", lambda: run_start.fit_datasets(names, run.run_id, args)
            )
            or {}
        )
        recorder = RunRecorder(run)
        batch = recorder.start(ctx)
        plans = run_start.fact(warn, "callbacks", lambda: callback_settings.describe(siblings))
        batch.extend(recorder.callback_plans(plans or {}))
        if previous_run is not None:
            batch.extend(recorder.continued_from(previous_run))
        if self.reproduces:
            batch.extend(recorder.reproduces(self.reproduces))
        beats = run_lifecycle.heartbeat_settings(warn)
        batch.add_node(
            recorder.run_node,
            TRAINING_RUN.kind,
            TRAINING_RUN,
            **{Prop.HEARTBEAT_TIMEOUT: beats.timeout},
        )
        self._recorder = recorder
        self._tracker.start(recorder, siblings, self._optimizer)
        self._awaiting_batch = False
        self._last_epoch = None
        self._final_epoch = int(epochs) if epochs is not None else None
        self._batches_seen = 0
        self._in_fit = True
        run_lifecycle.training(self)
        _remember(model, self)
        self._submit(batch)
        if self.reproduces:  # its own batch: a store without the original refuses only it
            self._submit(recorder.reproduction_link(self.reproduces))
        if ctx.script is not None:  # linked to its script's Plan, if `provkb scan --record`ed
            run_start.link_plan(self.writer, recorder.run_node)
        self._life = RunLifecycle(self.writer, self.run_id, warn)
        self._life.start_heartbeat(recorder.run_node, beats.interval)
        self._steps = step_series.for_run(
            self.log_every_n_steps, self.run_id, self._submit, self.params, warn
        )
        self._session = None
        if self.steering:
            self._session = SteeringSession(
                self.writer,
                recorder,
                self.steering_log,
                self._steer_warn,
                self.poll_interval,
                pause=self._tracker.pause_schedules,
            )
            self._session.start(model, self.steerables)

    # -- epochs -----------------------------------------------------------------
    @guarded
    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._recorder is None or not self._in_fit:
            return
        self._epoch_started = now()
        self._epoch_t0 = time.monotonic()
        self._tracker.checkpoint(attribution.EPOCH_BEGIN, self._optimizer)
        self._awaiting_batch = True
        if self._steps is not None:  # step series
            self._steps.begin_epoch(epoch + 1)

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._awaiting_batch:
            self._first_batch()

    @guarded
    def _first_batch(self) -> None:
        self._awaiting_batch = False
        self._enter_epoch(attribution.FIRST_BATCH)

    def _enter_epoch(self, hook: str) -> None:
        """The epoch's values are now final: record what changed since the last epoch."""
        assert self._recorder is not None
        self._tracker.checkpoint(hook, self._optimizer)
        self._submit(self._tracker.adaptations(self._recorder, self._next_epoch, now()))

    @guarded
    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        recorder = self._recorder
        if recorder is None or not self._in_fit:
            return
        if self._awaiting_batch:  # an epoch without batches
            self._awaiting_batch = False
            self._enter_epoch(attribution.EPOCH_END)
        self._tracker.checkpoint(attribution.EPOCH_END, self._optimizer)
        n = epoch + 1
        values = dict(logs or {})
        learning_rate = recorder.ledger.current(model_info.LEARNING_RATE)
        if model_info.LEARNING_RATE not in values and learning_rate is not None:
            values[model_info.LEARNING_RATE] = learning_rate.value
        elapsed = time.monotonic() - self._epoch_t0
        self._submit(recorder.epoch(n, self._epoch_started or now(), now(), elapsed, values))
        if self._steps is not None:  # step series: the epoch's parts, generated by it
            self._steps.end_epoch(n)
        self._last_epoch = n
        self._apply_steering()

    @guarded
    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        recorder = self._recorder
        if recorder is None or not self._in_fit:
            return
        started = time.monotonic()
        try:
            self._close_steps()
            self._tracker.checkpoint(attribution.TRAIN_END, self._optimizer)
            tracker = self._tracker
            self._submit(tracker.adaptations(recorder, self._next_epoch, now(), True))
            restored = callback_settings.restored_epoch(self._tracker.siblings)
            status, stopped, at = RunStatus.COMPLETED, None, now()
            last = self._last_epoch or recorder.run.first_epoch - 1
            final = self._final_epoch
            cut_short = final is None or last < final
            by_request = self._session is not None and self._session.stopped_by_request is not None
            if by_request and cut_short:
                status, stopped = RunStatus.STOPPED, last
            elif getattr(self.model, "stop_training", False) and cut_short:
                status, stopped = RunStatus.STOPPED_EARLY, last
                self._submit(recorder.early_stop(last, self._tracker.stopper(), at, restored))
            final = callback_settings.restored_weights(self._tracker.siblings)  # (h7)
            sha = run_start.fact(
                self._warn, "model weights", lambda: model_info.weights_sha256(self.model, final)
            )
            ended = recorder.finish(status, at, stopped, None, sha, restored)
            self._submit(ended)
            self._store_model(final, sha)
        finally:
            self._end_run()
            self._wait_at_end(started)

    def _end_run(self) -> None:
        """After the final status: no more heartbeats, steering ends (its last sweep
        queued after everything this run wrote)."""
        self._in_fit = False
        run_lifecycle.done(self)
        self._tracker.resume_schedules()
        if self._life is not None:
            self._life.stop_heartbeat()
        if self._session is not None:
            self._session.end(self._next_epoch, self._last_epoch)

    def _wait_at_end(self, started: float) -> None:
        """Wait for the steering poller's end, then the writer, until `final_wait`
        seconds after `started` at most; the rest goes on in the background."""
        if self._life is None:
            return
        limit = run_lifecycle.final_wait_limit(self.final_wait, self._warn)
        session = self._session
        if session is not None:
            session.join(max(0.0, started + limit - time.monotonic()))
        self.final_flush_complete, self.end_wait_seconds = self._life.wait_at_end(started, limit)

    def record_failure(self, error: BaseException | str, flush: bool = True) -> None:
        """Mark the running run as failed (autolog calls this when fit raises)."""
        try:
            recorder = self._recorder
            if recorder is None or not self._in_fit:
                return
            started = time.monotonic()
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            self._in_fit = False
            self._close_steps()
            self._submit(recorder.finish(RunStatus.FAILED, now(), error=text))
            self._end_run()
            if flush:
                self._wait_at_end(started)
        except Exception as exc:
            self._warn("provkb: could not record the failure: %s", exc, exc=exc)

    # -- steering ---------------------------------------------------------------
    def _apply_steering(self, batch: int | None = None) -> None:
        """Apply what the poller claimed (the training thread never waits on the store)."""
        session = self._session
        if session is None:
            return
        # At an epoch end the next epoch is the first to use a change; mid-epoch, the
        # epoch being trained (from its next batch on).
        for outcome in session.apply(self.model, self._next_epoch, self._last_epoch, batch):
            changed = session.changed(outcome)
            if changed is not None:
                self._tracker.steered(*changed)

    def _step_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """`on_train_batch_end` when `log_every_n_steps` is set (step series); its time
        counts in `hook_seconds`."""
        started = time.perf_counter()
        steps = self._steps
        if steps is not None and logs:
            steps.record(batch, logs)
        self.hook_seconds += time.perf_counter() - started
        if self.steer_every_n_batches is not None:  # a guarded hook: counted by itself
            self._steer_batch_end(batch, logs)

    def _close_steps(self) -> None:
        """The step series' last flush (before the run's final status)."""
        steps, self._steps = self._steps, None
        if steps is not None and not steps.close():
            self._warn("provkb: the last per-step metrics are still being written")

    def _steer_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """`on_train_batch_end` when `steer_every_n_batches` is set."""
        self._batches_seen += 1
        n = self.steer_every_n_batches
        if n and self._batches_seen % n == 0 and self._in_fit:
            self._guarded_batch_steering(batch)

    @guarded
    def _guarded_batch_steering(self, batch: int) -> None:
        self._apply_steering(batch)

    # -- stored model and predictions (issue 17) ---------------------------------
    def _store_model(self, weights: Any, weights_sha256: str | None) -> None:
        """Save the trained model when `save_model` asks for it (its StoredModel)."""
        recorder = self._recorder
        if not self.save_model or recorder is None:
            return

        def save() -> None:
            home = self.writer.store.settings.home
            path = model_store.target_path(self.save_model, home, self.run_id)
            if path is not None:
                self._submit(
                    model_store.save(
                        self.model, path, self.run_id, weights, weights_sha256, recorder.has_model
                    )
                )
                self.stored_model_path = path

        run_start.fact(self._warn, "stored model", save)

    @property
    def predictions(self) -> PredictionCapture:
        """The predictions this callback recorded (`last`: the latest)."""
        return self._predictions

    @guarded
    def on_predict_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._predictions.begin()

    @guarded
    def on_predict_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._predictions.batch_end(batch, logs)

    @guarded
    def on_predict_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._predictions.end()

    def confusion_matrix(self, x: Any, y: Any, batch_size: int | None = None) -> Any:
        """Predict `x` once with the run's model (a recorded Prediction), compare with
        the class labels `y` and record an Evaluation that generated the confusion
        matrix; returns it (`kb.predictions.ConfusionMatrix`). PredictionError when
        there is no recorded run or `y` are not class labels."""
        return self._predictions.explicit(x, y, batch_size)

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
        if recorder is None or self._life is None:
            self._warn("provkb: evaluate without a recorded run: nothing recorded")
            return
        dataset = None
        if args is not None:
            k, names = recorder.evaluations + 1, self.dataset_names
            dataset = run_start.fact(
                self._warn,
                "test dataset",
                lambda: run_start.dataset(
                    names, self.run_id, Role.TEST, args.get("x"), args.get("y"), args, f"test/{k}"
                ),
            )
        ended = now()
        batch = recorder.evaluation(started, ended, dict(logs or {}), dataset)
        confusion = self._predictions.for_evaluation  # from a predict of x (issue 17)
        run_start.fact(self._warn, "confusion matrix", lambda: confusion(batch, args, ended))
        self._submit(batch)
        self._life.flush(self.flush_timeout)
