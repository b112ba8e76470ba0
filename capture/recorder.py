"""Pure graph building: turn facts about a run into `GraphBatch`es (no Keras, no I/O).

`RunRecorder` knows the ids of one run and the versions of its hyperparameter values,
so anything that changes a hyperparameter mid-run (a callback, a steering action) can
record the change as a new revision through `HyperparameterLedger`.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kb.records import GraphBatch, Node
from ..ontology import (
    ADAPTATION,
    DATASET,
    ENVIRONMENT,
    EPOCH,
    EVALUATION,
    EXPERIMENT,
    HAD_MEMBER,
    HYPERPARAMETER,
    LAYER,
    MACHINE,
    METRICS,
    MODEL,
    PERSON,
    PLAN,
    PROJECT,
    REPRODUCTION_TYPE,
    SCRIPT,
    SOFTWARE_AGENT,
    STEERING_ACTION,
    TRAINING_RUN,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_ATTRIBUTED_TO,
    WAS_DERIVED_FROM,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    WAS_REVISION_OF,
    Prop,
    RunStatus,
    Subtype,
    long_names,
    metric_prop,
)
from . import ids
from .facts import (
    AdaptationKind,
    Dataset,
    Environment,
    Hyperparameter,
    Machine,
    MetricsKind,
    Role,
    Run,
    RunContext,
    Script,
    Software,
    Source,
    float32_raw,
)
from .run_summary import RunSummary

STEERABLE = "steerable"  # on hyperparameter values and runs: may a person steer it


def value_type(value: Any) -> str:
    """The `valueType` of a hyperparameter value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "dict"
    return type(value).__name__


def same_value(a: Any, b: Any) -> bool:
    """Equality of hyperparameter values (NaN equals NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def metric_props(logs: Mapping[str, Any]) -> dict[str, Any]:
    """Every key of Keras logs as a `metric_prop` (`metric.<key>`: no key can be one of
    ProvKB's own properties), its value as float when it is a number; the full names of
    shortened long keys beside (`long_names`)."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        if not isinstance(value, str | bool | None):  # numbers, NumPy and tensor scalars
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                value = float(value)
        out[metric_prop(str(key))] = value
    out.update(long_names(*(str(key) for key in logs)))
    return out


@dataclass(frozen=True)
class HpVersion:
    """One version of a hyperparameter value of a run."""

    id: str
    name: str
    value: Any
    source: str
    version: int
    from_epoch: int
    tracked: bool
    steerable: bool = False
    float32: bool = False  # held in a float32 variable (its rawValue is kept: h6)


class HyperparameterLedger:
    """The versions of every hyperparameter value of one run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._versions: dict[str, list[HpVersion]] = {}

    def add(self, hp: Hyperparameter, from_epoch: int) -> HpVersion | None:
        """Register a first value (v1); None when the name is already known."""
        if hp.name in self._versions:
            return None
        version = HpVersion(
            ids.hyperparameter(self.run_id, hp.name, 1),
            hp.name,
            hp.value,
            hp.source,
            1,
            from_epoch,
            hp.tracked,
            hp.steerable,
            hp.float32,
        )
        self._versions[hp.name] = [version]
        return version

    def current(self, name: str) -> HpVersion | None:
        versions = self._versions.get(name)
        return versions[-1] if versions else None

    def revise(
        self, name: str, value: Any, from_epoch: int, source: str | None = None
    ) -> tuple[HpVersion, HpVersion]:
        """Add version k+1 of `name`, in force from `from_epoch`; returns (old, new).

        The new version keeps the old one's source unless `source` is given."""
        old = self._versions[name][-1]
        new = HpVersion(
            ids.hyperparameter(self.run_id, name, old.version + 1),
            name,
            value,
            source or old.source,
            old.version + 1,
            from_epoch,
            old.tracked,
            old.steerable,
            old.float32,
        )
        self._versions[name].append(new)
        return old, new

    def tracked(self) -> list[HpVersion]:
        """The current versions of the tracked (mutable) hyperparameters."""
        return [v[-1] for v in self._versions.values() if v[-1].tracked]

    def tracked_names(self) -> list[str]:
        return [v.name for v in self.tracked()]


def _add(batch: GraphBatch, node_id: str, subtype: Subtype, **props: Any) -> str:
    """A node of `subtype` (its core kind implied)."""
    return batch.add_node(node_id, subtype.kind, subtype, **props)


class RunRecorder:
    """Builds the batches of one training run, as docs/graph-model.md specifies."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.run_id = run.run_id
        self.run_node = ids.run(run.run_id)
        self.person_node = ids.person(run.person)
        self.model_node = ids.model(run.run_id)
        self.ledger = HyperparameterLedger(run.run_id)
        self.has_model = False
        self.epochs: set[int] = set()
        self.summary = RunSummary()
        self.evaluations = 0
        self.plans: dict[str, str] = {}  # callback class name -> its Plan (h7)

    # -- shared nodes -----------------------------------------------------------
    def _person(self, batch: GraphBatch) -> str:
        return _add(batch, self.person_node, PERSON, **{Prop.NAME: self.run.person})

    def _run_update(self, batch: GraphBatch, **props: Any) -> None:
        _add(batch, self.run_node, TRAINING_RUN, **props)

    def callback_agent(self, batch: GraphBatch, class_name: str) -> str:
        """A callback's software agent (shared by runs: it acts on behalf of a run's
        person only in that run's activities, `associate`)."""
        return _add(batch, ids.callback_agent(class_name), SOFTWARE_AGENT, name=class_name)

    def associate(
        self, batch: GraphBatch, activity: str, agent: str, plan: str | None = None
    ) -> None:
        """`activity` WAS_ASSOCIATED_WITH a shared `agent` acting on behalf of the run's
        person in it: PROV's actedOnBehalfOf(agent, person, activity), kept on the
        association (docs/graph-model.md, "Delegation": h6), with the agent's `plan`."""
        props = {Prop.ON_BEHALF_OF: self._person(batch), Prop.PLAN: plan}
        batch.add_edge(WAS_ASSOCIATED_WITH, activity, agent, **props)

    def callback_plans(self, settings: Mapping[str, Mapping[str, Any]]) -> GraphBatch:
        """A Plan per callback of the run (class name -> its settings, h7): what the
        adaptations it makes followed (the plan of their association)."""
        b = GraphBatch()
        for class_name, values in settings.items():
            plan = f"{ids.plan(self.run_id)}/callback/{class_name}"
            extra = {k: v for k, v in values.items() if k == Prop.SCHEDULE_SOURCE}
            text = json.dumps(
                {k: v for k, v in values.items() if k not in extra}, sort_keys=True, default=str
            )
            props = {Prop.RUN_ID: self.run_id, Prop.NAME: class_name, Prop.SETTINGS: text}
            _add(b, plan, PLAN, **props, **extra)
            b.add_edge(WAS_ATTRIBUTED_TO, plan, self.callback_agent(b, class_name))
            self.plans[class_name] = plan
        return b

    def continued_from(self, previous_run: str) -> GraphBatch:
        """This run trained further the model `previous_run` generated (a second `fit`
        of one model): the run used that model, its own model derives from it (h7)."""
        b = GraphBatch()
        previous = ids.model(previous_run)
        b.add_edge(USED, self.run_node, previous, **{Prop.ROLE: Role.INITIAL_MODEL})
        self._run_update(b, **{Prop.CONTINUED_FROM: previous_run})
        if self.has_model:
            b.add_edge(WAS_DERIVED_FROM, self.model_node, previous)
        return b

    def reproduces(self, original_run: str) -> GraphBatch:
        """This run reproduces `original_run` (a script `provkb reproduce` wrote)."""
        b = GraphBatch()
        self._run_update(b, **{Prop.REPRODUCES: original_run})
        return b

    def reproduction_link(self, original_run: str) -> GraphBatch:
        """The Plan this run followed WAS_DERIVED_FROM `original_run`'s Plan, as a
        derivation of prov:type provkb:Reproduction (needs the original in the store)."""
        b = GraphBatch()
        props = {Prop.PROV_TYPE: [REPRODUCTION_TYPE]}
        b.add_edge(WAS_DERIVED_FROM, ids.plan(self.run_id), ids.plan(original_run), **props)
        return b

    def _hp_node(self, batch: GraphBatch, v: HpVersion) -> str:
        return _add(
            batch,
            v.id,
            HYPERPARAMETER,
            **{
                Prop.RUN_ID: self.run_id,
                Prop.NAME: v.name,
                Prop.VALUE: v.value,
                Prop.VALUE_TYPE: value_type(v.value),
                Prop.RAW_VALUE: float32_raw(v.value) if v.float32 else None,
                Prop.SOURCE: v.source,
                Prop.FROM_EPOCH: v.from_epoch,
                Prop.VERSION: v.version,
                STEERABLE: v.steerable,
            },
        )

    def dataset(self, batch: GraphBatch, ds: Dataset) -> str:
        return _add(
            batch,
            ids.dataset(ds.fingerprint),
            DATASET,
            **{
                Prop.NAME: ds.name,
                Prop.SHAPE: list(ds.shape) if ds.shape is not None else None,
                Prop.DTYPE: ds.dtype,
                Prop.SAMPLES: ds.samples,
                Prop.FINGERPRINT: ds.fingerprint,
                Prop.TARGET_SHAPE: list(ds.target_shape) if ds.target_shape is not None else None,
                Prop.TARGET_DTYPE: ds.target_dtype,
                Prop.INPUTS: ds.parts_json(),  # every input and target (h6)
                Prop.FINGERPRINT_BASIS: ds.fingerprint_basis,
            },
        )

    # -- start ------------------------------------------------------------------
    def start(self, ctx: RunContext) -> GraphBatch:
        """Everything known when training starts."""
        run, b = ctx.run, GraphBatch()
        project = _add(b, ids.project(run.project), PROJECT, **{Prop.NAME: run.project})
        experiment = _add(
            b,
            ids.experiment(run.experiment),
            EXPERIMENT,
            **{Prop.NAME: run.experiment, Prop.PROJECT: run.project},
        )
        b.add_edge(WAS_INFORMED_BY, experiment, project)
        self._run_update(
            b,
            **{
                Prop.RUN_ID: run.run_id,
                Prop.NAME: run.name,
                Prop.EXPERIMENT: run.experiment,
                Prop.PROJECT: run.project,
                Prop.STATUS: RunStatus.RUNNING,
                Prop.STARTED: run.started,
                Prop.EPOCHS_PLANNED: run.epochs_planned,
                Prop.EPOCHS_COMPLETED: 0,
                Prop.COMMAND_LINE: run.command_line,
                STEERABLE: run.steerable,
            },
        )
        b.add_edge(WAS_INFORMED_BY, self.run_node, experiment)
        person = self._person(b)
        plan_id = self._plan(b, ctx)
        b.add_edge(WAS_ASSOCIATED_WITH, self.run_node, person, **{Prop.PLAN: plan_id})
        for agent in (self._software(b, ctx.software), self._machine(b, ctx.machine)):
            if agent:
                self.associate(b, self.run_node, agent)
        for hp in ctx.hyperparameters:
            version = self.ledger.add(hp, run.first_epoch)
            if version is not None:
                b.add_edge(USED, self.run_node, self._hp_node(b, version))
        dataset_ids = {}
        for role, ds in ctx.datasets.items():
            dataset_ids[role] = self.dataset(b, ds)
            b.add_edge(USED, self.run_node, dataset_ids[role], **{Prop.ROLE: role})
        for used in (self._script(b, ctx.script), self._environment(b, ctx.environment)):
            if used:
                b.add_edge(USED, self.run_node, used)
        if ctx.model is not None:
            self._model(b, ctx, dataset_ids.get(Role.TRAIN))
        return b

    def _plan(self, b: GraphBatch, ctx: RunContext) -> str:
        plan = ctx.plan
        props: dict[str, Any] = {Prop.RUN_ID: self.run_id}
        if plan is not None:
            props.update(
                {
                    Prop.MODEL_CONFIG: plan.model_config,
                    Prop.OPTIMIZER_CONFIG: plan.optimizer_config,
                    Prop.COMPILE_CONFIG: plan.compile_config,
                }
            )
        return _add(b, ids.plan(self.run_id), PLAN, **props)

    @staticmethod
    def _software(b: GraphBatch, sw: Software | None) -> str | None:
        if sw is None:
            return None
        return _add(
            b,
            ids.software(sw.version, sw.backend),
            SOFTWARE_AGENT,
            **{
                Prop.NAME: "keras",
                Prop.VERSION: sw.version,
                Prop.BACKEND: sw.backend,
                Prop.BACKEND_VERSION: sw.backend_version,
                Prop.PROVKB_VERSION: sw.provkb_version,
            },
        )

    @staticmethod
    def _machine(b: GraphBatch, m: Machine | None) -> str | None:
        if m is None:
            return None
        return _add(
            b,
            ids.machine(m.hostname),
            MACHINE,
            **{
                Prop.HOSTNAME: m.hostname,
                Prop.OS: m.os,
                Prop.CPU: m.cpu,
                Prop.CPU_COUNT: m.cpu_count,
                Prop.GPUS: list(m.gpus),
            },
        )

    @staticmethod
    def _script(b: GraphBatch, s: Script | None) -> str | None:
        if s is None:
            return None
        return _add(
            b,
            ids.script(s.sha256),
            SCRIPT,
            **{
                Prop.PATH: s.path,
                Prop.SHA256: s.sha256,
                Prop.GIT_COMMIT: s.git_commit,
                Prop.GIT_DIRTY: s.git_dirty,
            },
        )

    @staticmethod
    def _environment(b: GraphBatch, e: Environment | None) -> str | None:
        if e is None:
            return None
        return _add(
            b,
            ids.environment(e.sha256),
            ENVIRONMENT,
            **{
                Prop.PYTHON: e.python,
                Prop.PLATFORM: e.platform,
                Prop.OS: e.os,
                Prop.CPU: e.cpu,
                Prop.GPUS: list(e.gpus),
                Prop.PACKAGES: list(e.packages),
                Prop.ENVIRONMENT_VARIABLES: list(e.variables),
            },
        )

    def _model(self, b: GraphBatch, ctx: RunContext, train_dataset: str | None) -> None:
        m = ctx.model
        assert m is not None
        _add(
            b,
            self.model_node,
            MODEL,
            **{
                Prop.RUN_ID: self.run_id,
                Prop.NAME: m.name,
                Prop.CLASS: m.class_name,
                Prop.TOTAL_PARAMS: m.total_params,
                Prop.TRAINABLE_PARAMS: m.trainable_params,
                Prop.LAYER_COUNT: len(m.layers),
            },
        )
        b.add_edge(WAS_GENERATED_BY, self.model_node, self.run_node)
        b.add_edge(WAS_ATTRIBUTED_TO, self.model_node, self.person_node)
        if train_dataset:
            b.add_edge(WAS_DERIVED_FROM, self.model_node, train_dataset)
        for layer in m.layers:
            node = _add(
                b,
                ids.layer(self.run_id, layer.index),
                LAYER,
                **{
                    Prop.RUN_ID: self.run_id,
                    Prop.NAME: layer.name,
                    Prop.CLASS: layer.class_name,
                    Prop.INDEX: layer.index,
                    Prop.ACTIVATION: layer.activation,
                    Prop.UNITS: layer.units,
                    Prop.FILTERS: layer.filters,
                    Prop.KERNEL_SIZE: list(layer.kernel_size) if layer.kernel_size else None,
                    Prop.RATE: layer.rate,
                    Prop.PARAMS: layer.params,
                    Prop.OUTPUT_SHAPE: _shape_text(layer.output_shape),
                },
            )
            b.add_edge(HAD_MEMBER, self.model_node, node)
        self.has_model = True

    # -- during training --------------------------------------------------------
    def epoch(
        self,
        n: int,
        started: str,
        ended: str,
        elapsed: float,
        logs: Mapping[str, Any],
    ) -> GraphBatch:
        """Epoch `n` (1-based): its activity, metrics and the tracked values it used."""
        b = GraphBatch()
        epoch = _add(
            b,
            ids.epoch(self.run_id, n),
            EPOCH,
            **{
                Prop.RUN_ID: self.run_id,
                Prop.EPOCH: n,
                Prop.STARTED: started,
                Prop.ENDED: ended,
                Prop.ELAPSED: elapsed,
            },
        )
        values = metric_props(logs)
        metrics = _add(
            b,
            ids.epoch_metrics(self.run_id, n),
            METRICS,
            **{
                **values,
                Prop.RUN_ID: self.run_id,
                Prop.EPOCH: n,
                Prop.GENERATED: ended,
                Prop.ELAPSED: elapsed,
                Prop.KIND: MetricsKind.EPOCH,
            },
        )
        b.add_edge(WAS_GENERATED_BY, metrics, epoch)
        b.add_edge(WAS_INFORMED_BY, epoch, self.run_node)
        if n - 1 in self.epochs:
            b.add_edge(WAS_INFORMED_BY, epoch, ids.epoch(self.run_id, n - 1))
        for version in self.ledger.tracked():
            b.add_edge(USED, epoch, version.id)
        self.epochs.add(n)
        self.summary.add(n, elapsed, logs)  # the logs' own types: a bool is no metric
        self._run_update(
            b, **{Prop.EPOCHS_COMPLETED: self.epochs_completed, **self.summary.props()}
        )
        return b

    @property
    def epochs_completed(self) -> int:
        """Number of epochs recorded in this run."""
        return len(self.epochs)

    def adaptation(
        self,
        name: str,
        value: Any,
        from_epoch: int,
        callback: str,
        started: str,
        ended: str | None = None,
        kind: str = AdaptationKind.SCHEDULE,
        after_training: bool = False,
    ) -> GraphBatch:
        """A new value of hyperparameter `name`, in force from epoch `from_epoch` (source
        `adaptation`); `after_training`: made after the last epoch, so no epoch of this
        run used it (h7)."""
        b = GraphBatch()
        old, new = self.revision(b, name, value, from_epoch, Source.ADAPTATION)
        activity = _add(
            b,
            ids.adaptation(self.run_id, from_epoch, name),
            ADAPTATION,
            **{
                Prop.RUN_ID: self.run_id,
                Prop.EPOCH: from_epoch,
                Prop.HYPERPARAMETER: name,
                Prop.OLD_VALUE: old.value,
                Prop.NEW_VALUE: new.value,
                Prop.CALLBACK: callback,
                Prop.KIND: kind,
                Prop.AFTER_TRAINING: after_training or None,
                Prop.STARTED: started,
                Prop.ENDED: ended or started,
            },
        )
        self._adaptation_links(b, activity, callback, from_epoch - 1)
        b.add_edge(USED, activity, old.id)
        b.add_edge(WAS_GENERATED_BY, new.id, activity)
        return b

    def revision(
        self, b: GraphBatch, name: str, value: Any, from_epoch: int, source: str | None = None
    ) -> tuple[HpVersion, HpVersion]:
        """Add the next version of `name` (node and WAS_REVISION_OF) to `b`.

        The caller links the activity that generated it (an adaptation here, a
        steering action in `steering`); epochs from `from_epoch` on will USE it.
        """
        old, new = self.ledger.revise(name, value, from_epoch, source)
        self._hp_node(b, new)
        b.add_edge(WAS_REVISION_OF, new.id, old.id)
        return old, new

    def steering(
        self,
        request_id: str,
        action: str,
        person: str,
        epoch: int | None,
        started: str,
        ended: str | None = None,
        *,
        hyperparameter: str | None = None,
        value: Any = None,
        reason: str | None = None,
        note: str | None = None,
        request_node: str | None = None,
        seen_metrics: str | None = None,
        **extra: Any,
    ) -> GraphBatch:
        """A person's steering request, applied (docs/graph-model.md, "Steering").

        `epoch` is the first epoch run with the new value (`set`), the last epoch
        (`stop`) or the latest finished epoch (`note`). A `set` adds the next version
        of `hyperparameter` (source `steering`, in force from `epoch`), generated by
        the action and a revision of the value it used. `request_node` and
        `seen_metrics` must already be in the store (or in the same batch).
        """
        b = GraphBatch()
        action_id = ids.steering_action(self.run_id, request_id)
        props: dict[str, Any] = {
            Prop.RUN_ID: self.run_id,
            "requestId": request_id,
            "action": action,
            Prop.HYPERPARAMETER: hyperparameter,
            Prop.EPOCH: epoch,
            "reason": reason,
            "note": note,
            "person": person,
            Prop.STARTED: started,
            Prop.ENDED: ended or started,
            **extra,
        }
        # Everything else first: the ledger changes last, only when all went well.
        action = Node(action_id, STEERING_ACTION.kind, (STEERING_ACTION,), props)
        b.nodes.append(action)
        person_id = _add(b, ids.person(person), PERSON, **{Prop.NAME: person})
        b.add_edge(WAS_ASSOCIATED_WITH, action_id, person_id, **{Prop.PLAN: request_node})
        b.add_edge(WAS_INFORMED_BY, action_id, self.run_node)
        if request_node:
            b.add_edge(USED, action_id, request_node)
        if seen_metrics:
            b.add_edge(USED, action_id, seen_metrics)
        if hyperparameter is not None and epoch is not None:
            old, new = self.revision(b, hyperparameter, value, epoch, Source.STEERING)
            props[Prop.OLD_VALUE], props[Prop.NEW_VALUE] = old.value, new.value
            b.add_edge(USED, action_id, old.id)
            b.add_edge(WAS_GENERATED_BY, new.id, action_id)
        return b

    def early_stop(
        self, epoch: int, callback: str, at: str, restored_epoch: int | None = None
    ) -> GraphBatch:
        """Training stopped after epoch `epoch` (1-based) by `callback`; the weights of
        `restored_epoch` were restored (EarlyStopping's restore_best_weights)."""
        b = GraphBatch()
        activity = _add(
            b,
            ids.early_stop(self.run_id),
            ADAPTATION,
            **{
                Prop.RUN_ID: self.run_id,
                Prop.KIND: AdaptationKind.EARLY_STOPPING,
                Prop.EPOCH: epoch,
                Prop.CALLBACK: callback,
                Prop.RESTORED_EPOCH: restored_epoch,
                Prop.STARTED: at,
                Prop.ENDED: at,
            },
        )
        self._adaptation_links(b, activity, callback, epoch)
        return b

    def _adaptation_links(
        self, b: GraphBatch, activity: str, callback: str, metrics_epoch: int
    ) -> None:
        b.add_edge(WAS_INFORMED_BY, activity, self.run_node)
        self.associate(b, activity, self.callback_agent(b, callback), self.plans.get(callback))
        if metrics_epoch in self.epochs:
            b.add_edge(USED, activity, ids.epoch_metrics(self.run_id, metrics_epoch))

    def finish(
        self,
        status: str,
        ended: str,
        stopped_epoch: int | None = None,
        error: str | None = None,
        weights_sha256: str | None = None,
        restored_epoch: int | None = None,
    ) -> GraphBatch:
        """The run's final status (the final weights' hash, and the epoch whose weights
        EarlyStopping restored, when it did)."""
        b = GraphBatch()
        self._run_update(
            b,
            **{
                Prop.STATUS: status,
                Prop.ENDED: ended,
                Prop.EPOCHS_COMPLETED: self.epochs_completed,
                Prop.STOPPED_EPOCH: stopped_epoch,
                Prop.RESTORED_EPOCH: restored_epoch,
                Prop.ERROR: error,
            },
        )
        if weights_sha256 and self.has_model:
            _add(b, self.model_node, MODEL, **{Prop.WEIGHTS_SHA256: weights_sha256})
        return b

    # -- after training ---------------------------------------------------------
    def evaluation(
        self,
        started: str,
        ended: str,
        logs: Mapping[str, Any],
        dataset: Dataset | None = None,
    ) -> GraphBatch:
        """An evaluation of the run's model: test metrics, on `dataset` (role test)."""
        self.evaluations += 1
        k, b = self.evaluations, GraphBatch()
        activity = _add(
            b,
            ids.evaluation(self.run_id, k),
            EVALUATION,
            **{Prop.RUN_ID: self.run_id, Prop.STARTED: started, Prop.ENDED: ended},
        )
        metrics = _add(
            b,
            ids.evaluation_metrics(self.run_id, k),
            METRICS,
            **{
                **metric_props(logs),
                Prop.RUN_ID: self.run_id,
                Prop.KIND: MetricsKind.TEST,
                Prop.GENERATED: ended,
            },
        )
        b.add_edge(WAS_GENERATED_BY, metrics, activity)
        b.add_edge(WAS_ASSOCIATED_WITH, activity, self._person(b))
        if self.has_model:
            b.add_edge(USED, activity, self.model_node)
        if dataset is not None:
            b.add_edge(USED, activity, self.dataset(b, dataset), **{Prop.ROLE: Role.TEST})
        return b


def _shape_text(shape: Iterable[int | None] | None) -> str | None:
    if shape is None:
        return None
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
