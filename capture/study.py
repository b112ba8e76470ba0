"""`provkb.Study`: a steerable trial queue whose iterations are captured Keras runs.

    study = provkb.Study("digits-lr", space={"learning_rate": [0.01, 0.05, 0.01],
                                            "batch_size": [32, 64]}, gain="val_accuracy")
    summary = study.run(lambda params, callbacks: build(params).fit(..., callbacks=callbacks))

Each iteration claims the first pending item (atomically), calls
`train_fn(params, callbacks)` with a `ProvenanceCallback` for that iteration (experiment =
the study name unless given, run name `<study>-it<n>`), scores it with the gain and records
it: the run gets `study`, `iteration`, `itemId`, `gain`, is informed by the study and used
the item version it evaluated. The queue is re-read before every claim, so edits made
meanwhile (from this process or any other: `Study.open(name)`, `provkb study ...`) take
effect from the next iteration. An iteration that raises is recorded as failed (with the
error) and the study goes on.

Gain: a metric name takes the *best* value of that key over the epochs of the returned
Keras `History` (max or min by `mode`; NaN values ignored), so an iteration is scored by
its best epoch; a returned mapping or number is used as is. A callable gets whatever
`train_fn` returned (or the model's History when it returned None) and returns the gain.
See `provkb.kb.study` for the space syntax and the edit rules.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ProvKBError
from ..kb import study as kb
from ..kb.identity import default_person, now_iso
from ..kb.records import GraphBatch
from ..kb.store import Store
from ..kb.study import pruning as kb_pruning
from ..ontology import ACTIVITY, TRAINING_RUN, USED, WAS_INFORMED_BY, Prop, RunStatus, ids

log = logging.getLogger("provkb.study")

Gain = str | Callable[[Any], float]
StoreLike = Any  # a Store, an embedded store folder, or None (default settings)


@dataclass
class Iteration:
    """One finished iteration of a study."""

    iteration: int
    item_id: int
    version: int
    params: dict[str, Any]
    status: str
    gain: float | None
    moving_average: float | None
    run_id: str | None
    error: str | None = None


@dataclass
class StudySummary:
    """What `Study.run` did, and the best iteration so far."""

    study: str
    iterations: int  # evaluated by this call
    total_iterations: int  # finished, over the study's whole life
    failed: int  # failed in this call
    pending: int  # items left
    best_item: int | None
    best_params: dict[str, Any] | None
    best_gain: float | None
    best_iteration: int | None
    best_run: str | None

    def __str__(self) -> str:
        best = (
            f"best gain {self.best_gain:.4g} (item {self.best_item}, iteration "
            f"{self.best_iteration}, {self.best_params})"
            if self.best_gain is not None
            else "no gain yet"
        )
        return (
            f"study {self.study}: {self.iterations} iteration(s) run now "
            f"({self.failed} failed), {self.total_iterations} in all, {self.pending} pending; "
            f"{best}"
        )


def _as_store(store: StoreLike) -> Store:
    if isinstance(store, Store):
        return store
    from ..config import resolve_settings

    return Store(resolve_settings(store=store) if store is not None else resolve_settings())


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


class Study:
    """A steerable queue of hyperparameter combinations (see the module docstring).

    Args:
        name: the study's name (unique in the store); an existing study is resumed.
        space: hyperparameter -> `[start, end, step]`, list of values or single value.
        gain: a metric name (best value over the epochs, by `mode`) or a callable.
        mode: `max` or `min`: which gain is better.
        k: window of the moving average of gains (and of the study state edits use).
        sampler: `grid` (cartesian product) or `random` (seeded sampling).
        n_samples: with `random`, how many combinations (default all); with `grid`, the
            first ones only.
        seed: the random sampler's seed.
        experiment: experiment of the iteration runs (default: the study name).
        store: a `Store`, an embedded store folder, or None (default settings).
        person: who runs and steers it (default: the OS user).
        pruning: a `MedianPruning` rule (kb/study/pruning.py), stored with the study:
            stop a trial whose gain so far is worse than the median of the finished
            trials at the same epoch.
    """

    def __init__(
        self,
        name: str,
        space: Mapping[str, Any] | None,
        gain: Gain | None = None,
        mode: str = "max",
        k: int = 10,
        sampler: str = kb.GRID,
        n_samples: int | None = None,
        seed: int = 0,
        experiment: str | None = None,
        store: StoreLike = None,
        person: str | None = None,
        pruning: kb_pruning.MedianPruning | None = None,
    ) -> None:
        if mode not in kb.MODES:
            raise ProvKBError(f"mode is 'max' or 'min', got {mode!r}")
        if not isinstance(k, int) or k < 1:
            raise ProvKBError(f"k (moving-average window) is an integer >= 1, got {k!r}")
        if gain is not None and not (isinstance(gain, str) or callable(gain)):
            raise ProvKBError("gain is a metric name or a callable returning a number")
        self.name = name
        self.store = _as_store(store)
        self.queue = kb.StudyQueue(self.store, name)
        self.person = default_person(person)
        self.gain = gain
        self.created = False
        self.iteration: int | None = None  # the iteration being evaluated (in train_fn)
        self.current_item: kb.TrialItem | None = None
        if space is None:
            if not self.queue.exists():
                raise ProvKBError(f"no study named {name!r}; give a space to create it")
        else:
            normalized = kb.normalize_space(space)
            combos = kb.expand(normalized, sampler, n_samples, seed)
            gain_fn = None if gain is None or isinstance(gain, str) else gain
            self.created = self.queue.create(
                normalized,
                combos,
                self.person,
                **{
                    Prop.GAIN_METRIC: gain if isinstance(gain, str) else None,
                    Prop.GAIN_FUNCTION: getattr(gain_fn, "__qualname__", None) if gain_fn else None,
                    Prop.MODE: mode,
                    Prop.K: k,
                    Prop.SAMPLER: sampler,
                    Prop.N_SAMPLES: n_samples,
                    Prop.SEED: seed,
                    Prop.EXPERIMENT: experiment or name,
                    Prop.PRUNING: pruning.to_json() if pruning else None,
                },
            )
            if not self.created:
                stored = self.queue.settings()[Prop.SPACE]
                if stored != normalized:
                    log.warning(
                        "provkb: study %r exists with another space (%s); resuming it as "
                        "stored. Use respace to change it.",
                        name,
                        stored,
                    )
        settings = self.queue.settings()
        self.mode = settings.get(Prop.MODE) or mode
        self.k = int(settings.get(Prop.K) or k)
        self.experiment = settings.get(Prop.EXPERIMENT) or experiment or name
        if self.gain is None:
            self.gain = settings.get(Prop.GAIN_METRIC)
        self.pruning = kb_pruning.MedianPruning.from_json(settings.get(Prop.PRUNING))

    @classmethod
    def open(
        cls, name: str, store: StoreLike = None, person: str | None = None, gain: Gain | None = None
    ) -> Study:
        """An existing study (e.g. from another process, to edit its queue)."""
        return cls(name, None, gain=gain, store=store, person=person)

    # -- reading --------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        """The stored study: space, gainMetric, mode, k, sampler, seed, status, ..."""
        return self.queue.settings()

    def items(self, include_removed: bool = False) -> list[kb.TrialItem]:
        """The queue's current item versions (started by iteration, then pending in order)."""
        return self.queue.items(include_removed)

    def item(self, item_id: int) -> kb.TrialItem:
        return self.queue.item(item_id)

    def versions(self, item_id: int) -> list[kb.TrialItem]:
        """Every version of one item, oldest first."""
        return self.queue.versions(item_id)

    def pending(self) -> list[kb.TrialItem]:
        return [i for i in self.items() if i.status == kb.PENDING]

    def history(self) -> list[Iteration]:
        """Finished iterations in order, each with the moving average of the last k gains."""
        out: list[Iteration] = []
        gains: list[float | None] = []
        for item in self.queue.items(include_removed=True):
            if item.iteration is None or item.status not in (kb.DONE, kb.FAILED):
                continue
            gains.append(item.gain)
            out.append(
                Iteration(
                    iteration=item.iteration,
                    item_id=item.item_id,
                    version=item.version,
                    params=item.params,
                    status=item.status,
                    gain=item.gain,
                    moving_average=kb.moving_average(gains, self.k),
                    run_id=item.run_id,
                    error=item.error,
                )
            )
        return out

    def state(self) -> kb.StudyState:
        return self.queue.state()

    def edits(self) -> list[dict[str, Any]]:
        """The queue edits (SteeringActions), oldest first."""
        return self.queue.edits()

    def best(self) -> Iteration | None:
        """The iteration with the best gain (by mode)."""
        scored = [
            it for it in self.history() if it.gain is not None and not _is_nan(float(it.gain))
        ]
        if not scored:
            return None
        pick = max if self.mode == "max" else min
        return pick(scored, key=lambda it: it.gain)

    # -- editing (allowed on pending items only) ------------------------------------
    def add(
        self, params: Mapping[str, Any], position: int | None = None, reason: str | None = None
    ) -> kb.EditResult:
        """Add an item (at the end, or at 1-based place `position` among pending items)."""
        return self.queue.add(params, position, reason, self.person)

    def edit(
        self,
        item_id: int,
        params: Mapping[str, Any],
        reason: str | None = None,
        replace: bool = False,
        expected_version: int | None = None,
    ) -> kb.EditResult:
        """Change a pending item's parameters (merged into its current ones)."""
        return self.queue.edit(item_id, params, reason, self.person, replace, expected_version)

    def remove(self, item_id: int, reason: str | None = None) -> kb.EditResult:
        """Remove a pending item."""
        return self.queue.remove(item_id, reason, self.person)

    def move(self, item_id: int, position: int, reason: str | None = None) -> kb.EditResult:
        """Move a pending item to 1-based place `position` among pending items."""
        return self.queue.move(item_id, position, reason, self.person)

    def respace(
        self, space: Mapping[str, Any], reason: str | None = None, merge: bool = True
    ) -> kb.EditResult:
        """Replace all pending items by the expansion of a new space (entries merged into
        the current space unless `merge=False`)."""
        return self.queue.respace(space, reason, self.person, merge)

    # -- sessions -------------------------------------------------------------------
    def next(
        self,
        name: str,
        top: int = 10,
        narrow: Sequence[str] | None = None,
        add: Mapping[str, Any] | None = None,
        keep: Sequence[str] | None = None,
        ranges: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> Study:
        """Start study `name` as the next session: narrowed from this study's `top` best
        finished trials (kb/study/sessions.py: `narrow` names, default all but `keep`;
        `add` new hyperparameters; `ranges` given by hand). Returns the new study."""
        from ..kb.study.sessions import start_next

        start_next(self.store, self.name, name, top, narrow, keep, add, ranges, reason,
                   self.person)  # fmt: skip
        return Study.open(name, store=self.store, person=self.person, gain=self.gain)

    # -- running --------------------------------------------------------------------
    def run(
        self,
        train_fn: Callable[[dict[str, Any], list[Any]], Any],
        max_iterations: int | None = None,
    ) -> StudySummary:
        """Evaluate pending items one by one until none is left (or `max_iterations`)."""
        if self.gain is None:
            raise ProvKBError(
                f"study {self.name!r} has no gain: give a metric name or a callable "
                f"(Study.open(name, gain=...))"
            )
        done = failed = 0
        while max_iterations is None or done < max_iterations:
            outcome = self._iterate(train_fn)
            if outcome is None:
                break
            done += 1
            failed += outcome == kb.FAILED
        pending = len(self.pending())
        status = kb.COMPLETED if not pending else kb.PAUSED
        extra = {Prop.ENDED: now_iso()} if status == kb.COMPLETED else {}
        self.queue.update(**{Prop.STATUS: status, **extra})
        best = self.best()
        return StudySummary(
            study=self.name,
            iterations=done,
            total_iterations=len(self.history()),
            failed=failed,
            pending=pending,
            best_item=best.item_id if best else None,
            best_params=best.params if best else None,
            best_gain=best.gain if best else None,
            best_iteration=best.iteration if best else None,
            best_run=best.run_id if best else None,
        )

    def _iterate(self, train_fn: Callable[[dict[str, Any], list[Any]], Any]) -> str | None:
        from .callback import ProvenanceCallback

        callback = ProvenanceCallback(
            experiment=self.experiment,
            hyperparameters=None,
            person=self.person,
            store=self.store,
        )
        claim = self.queue.claim(callback.run_id)
        if claim is None:
            return None
        item, iteration = claim.item, claim.iteration
        callback.run_name = f"{self.name}-it{iteration}"
        callback.hyperparameters = dict(item.params)
        log.info("provkb: study %s iteration %d: item %d %s", self.name, iteration, item.item_id,
                 item.params)  # fmt: skip
        status, gain, error, result = kb.DONE, None, None, None
        self.iteration, self.current_item = iteration, item
        callbacks, pruner = [callback], self._pruner()
        if pruner is not None:
            callbacks.append(pruner)
        try:
            result = train_fn(dict(item.params), callbacks)
        except BaseException as exc:
            status, error = kb.FAILED, f"{type(exc).__name__}: {exc}"
            callback.record_failure(exc)
            self._record(callback, item, iteration, status, None, error, pruner)
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: stop
                raise
            log.warning("provkb: study %s iteration %d failed: %s", self.name, iteration, error)
            return status
        finally:
            self.iteration = self.current_item = None
        try:
            gain = self._gain(result, callback)
        except Exception as exc:
            status, error = kb.FAILED, f"no gain: {exc}"
            log.warning("provkb: study %s iteration %d: %s", self.name, iteration, error)
        self._record(callback, item, iteration, status, gain, error, pruner)
        return status

    def _pruner(self) -> Any:
        """The pruning callback of the next trial (None without a rule)."""
        rule = self.pruning
        if rule is None:
            return None
        metric = rule.metric or (self.gain if isinstance(self.gain, str) else None)
        if metric is None:
            raise ProvKBError(
                f"study {self.name!r}: pruning needs a metric (MedianPruning(metric=))"
            )
        medians = kb_pruning.finished_values(self.store, self.name, metric)
        return _pruning_callback(rule, medians, self.mode, metric)

    def _gain(self, result: Any, callback: Any) -> float:
        if result is None:
            model = getattr(callback, "model", None)
            result = getattr(model, "history", None)
        if callable(self.gain):
            value = self.gain(result)
        else:
            value = self._metric_gain(result, str(self.gain))
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ProvKBError(f"the gain is not a number: {value!r}") from exc

    def _metric_gain(self, result: Any, metric: str) -> float:
        if isinstance(result, int | float) and not isinstance(result, bool):
            return float(result)
        history = getattr(result, "history", result)
        if not isinstance(history, Mapping):
            raise ProvKBError(
                f"train_fn returned {type(result).__name__}; return the History of fit "
                f"(or a mapping of metrics) to score by {metric!r}"
            )
        if metric not in history:
            raise ProvKBError(
                f"metric {metric!r} not in the results (keys: {', '.join(map(str, history))})"
            )
        values = history[metric]
        if not isinstance(values, Sequence) or isinstance(values, str):
            return float(values)
        numbers = [float(v) for v in values if not _is_nan(float(v))]
        if not numbers:
            return math.nan
        return max(numbers) if self.mode == "max" else min(numbers)

    def _record(
        self,
        callback: Any,
        item: kb.TrialItem,
        iteration: int,
        status: str,
        gain: float | None,
        error: str | None,
        pruner: Any = None,
    ) -> None:
        """Link the iteration's run to the study and its item version; finish the item."""
        run_id = callback.run_id
        run_node = ids.run(run_id)
        batch = GraphBatch()
        props: dict[str, Any] = {
            Prop.STUDY: self.name,
            Prop.ITERATION: iteration,
            Prop.ITEM_ID: item.item_id,
            Prop.GAIN: gain,
        }
        if pruner is not None and pruner.pruned is not None:
            props.update(pruner.pruned)
        if callback.recorder is None or callback.recorder.run_id != run_id:
            # train_fn never trained with the callback: record the iteration as a run anyway
            props.update(
                {
                    Prop.RUN_ID: run_id,
                    Prop.NAME: callback.run_name,
                    Prop.EXPERIMENT: self.experiment,
                    Prop.STATUS: RunStatus.FAILED if status == kb.FAILED else RunStatus.COMPLETED,
                    Prop.STARTED: item.started,
                    Prop.ENDED: now_iso(),
                    Prop.ERROR: error,
                }
            )
        batch.add_node(run_node, ACTIVITY, TRAINING_RUN, **props)
        batch.add_edge(WAS_INFORMED_BY, run_node, self.queue.node_id)
        batch.add_edge(USED, run_node, item.node_id)
        try:
            writer = callback.writer
            writer.submit(batch)
            writer.flush(getattr(callback, "flush_timeout", 10.0))
        except Exception as exc:  # the queue state below still records the outcome
            log.warning("provkb: could not record study iteration %d's run: %s", iteration, exc)
        self.queue.finish(item, status, gain, run_id, error)


def _pruning_callback(
    rule: kb_pruning.MedianPruning, medians: kb_pruning.Medians, mode: str, metric: str
) -> Any:
    """A Keras callback applying `rule` at every epoch end (sets `model.stop_training`);
    `pruned` holds the run properties of its decision once it pruned."""
    import keras

    class MedianPruningCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: float | None = None
            self.pruned: dict[str, Any] | None = None

        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            value = (logs or {}).get(metric)
            try:
                value = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return
            best = self.best
            if not math.isnan(value) and (
                best is None or (value < best if mode == "min" else value > best)
            ):
                self.best = value
            median = kb_pruning.judge(rule, medians, mode, epoch + 1, self.best)
            if median is not None and self.pruned is None:
                self.pruned = {
                    Prop.PRUNED_EPOCH: epoch + 1,
                    Prop.PRUNED_VALUE: self.best,
                    Prop.PRUNE_MEDIAN: median,
                }
                self.model.stop_training = True

    return MedianPruningCallback()
