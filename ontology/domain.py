"""Deep-learning specialisations of the PROV core, and the property names ProvKB uses.

Domain labels are extra labels on a PROV core label, e.g. a hyperparameter value is
`(:Entity:Hyperparameter)`. Their PROV-O type is `provkb:<Label>` (written as
`prov:type`). Property names follow Neo4j conventions (camelCase); names users choose
are data: metric keys become properties only behind a ProvKB prefix (`metric_prop`:
`metric.val_loss`), hyperparameter names are values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .vocabulary import ACTIVITY, AGENT, ENTITY, PROVKB_NS, PROVKB_PREFIX, Subtype


def _domain(label: str, kind) -> Subtype:
    return Subtype(label, label, kind, PROVKB_NS + label, f"{PROVKB_PREFIX}:{label}")


# Activities
PROJECT = _domain("Project", ACTIVITY)
EXPERIMENT = _domain("Experiment", ACTIVITY)
TRAINING_RUN = _domain("TrainingRun", ACTIVITY)
EPOCH = _domain("Epoch", ACTIVITY)
ADAPTATION = _domain("Adaptation", ACTIVITY)
EVALUATION = _domain("Evaluation", ACTIVITY)
STEERING_ACTION = _domain("SteeringAction", ACTIVITY)
STUDY = _domain("Study", ACTIVITY)
IMPORT = _domain("Import", ACTIVITY)  # an import of a PROV file (kb/provimport.py)
DELETION = _domain("Deletion", ACTIVITY)  # provkb delete: what it removed, who, when
NARROWING = _domain("Narrowing", ACTIVITY)  # a study started from another (sessions)
PREDICTION = _domain("Prediction", ACTIVITY)  # a model.predict (or an app test) of a model

# Entities
METRICS = _domain("Metrics", ENTITY)
METRIC_SERIES = _domain("MetricSeries", ENTITY)  # per-step values of one metric (step series)
HYPERPARAMETER = _domain("Hyperparameter", ENTITY)
DATASET = _domain("Dataset", ENTITY)
MODEL = _domain("Model", ENTITY)
LAYER = _domain("Layer", ENTITY)
SCRIPT = _domain("Script", ENTITY)
ENVIRONMENT = _domain("Environment", ENTITY)
STEERING_REQUEST = _domain("SteeringRequest", ENTITY)
TRIAL_ITEM = _domain("TrialItem", ENTITY)
STUDY_STATE = _domain("StudyState", ENTITY)
IMPORTED_FILE = _domain("ImportedFile", ENTITY)  # a PROV file an Import used
STUDY_SPACE = _domain("StudySpace", ENTITY)  # a study's space, as a narrowing saw/made it
PREDICTIONS = _domain("Predictions", ENTITY)  # what a Prediction generated (issue 17)
CONFUSION_MATRIX = _domain("ConfusionMatrix", ENTITY)  # a classifier evaluation's matrix
STORED_MODEL = _domain("StoredModel", ENTITY)  # a saved .keras file of a run's model
SCRIPT_PLAN = _domain("ScriptPlan", ENTITY)  # a Plan: what a script says, scanned (issue 17)

# Agents
MACHINE = _domain("Machine", AGENT)

DOMAIN_SUBTYPES: tuple[Subtype, ...] = (
    PROJECT,
    EXPERIMENT,
    TRAINING_RUN,
    EPOCH,
    ADAPTATION,
    EVALUATION,
    STEERING_ACTION,
    STUDY,
    IMPORT,
    DELETION,
    NARROWING,
    PREDICTION,
    METRICS,
    METRIC_SERIES,  # step series
    HYPERPARAMETER,
    DATASET,
    MODEL,
    LAYER,
    SCRIPT,
    ENVIRONMENT,
    STEERING_REQUEST,
    TRIAL_ITEM,
    STUDY_STATE,
    IMPORTED_FILE,
    STUDY_SPACE,
    PREDICTIONS,
    CONFUSION_MATRIX,
    STORED_MODEL,
    SCRIPT_PLAN,  # scan
    MACHINE,
)
DOMAIN_SUBTYPE_BY_LABEL: dict[str, Subtype] = {s.label: s for s in DOMAIN_SUBTYPES}

# Bookkeeping labels (not PROV: no core label, so exports and run queries never see them).
NAMESPACE_LABEL = "ProvNamespace"  # prefix -> namespace IRI bindings of imported documents
CLAIM_LABEL = "SteeringClaim"  # a unique token per claimed steering request

# prov:type of the derivation a reproduction's Plan WAS_DERIVED_FROM the original's
# (`provkb reproduce`: a run trained again from another run's provenance).
REPRODUCTION_TYPE = f"{PROVKB_PREFIX}:Reproduction"


class Prop:
    """Property names on nodes and relationships."""

    ID = "id"
    NAME = "name"
    LABEL = "label"  # prov:label
    STARTED = "startedAtTime"
    ENDED = "endedAtTime"
    GENERATED = "generatedAtTime"
    TIME = "time"  # on relationships carrying a PROV time
    # An imported record the natural mapping cannot say exactly (kb/prov_exact.py): its
    # PROV records as PROV-JSON text, valid while the digest matches the other properties.
    PROV_RECORDS = "provRecords"
    PROV_RECORDS_OF = "provRecordsOf"
    STATUS = "status"
    RUN_ID = "runId"
    EXPERIMENT = "experiment"
    PROJECT = "project"
    EPOCH = "epoch"  # 1-based, as Keras prints it
    VALUE = "value"
    VALUE_TYPE = "valueType"
    RAW_VALUE = "rawValue"  # a float32 value as the variable holds it, when `value` is shorter
    SOURCE = "source"  # where a hyperparameter came from: optimizer, fit, compile, user
    FROM_EPOCH = "fromEpoch"  # first epoch (1-based) a hyperparameter value is in force
    VERSION = "version"
    ELAPSED = "elapsedSeconds"
    STOPPED_EPOCH = "stoppedEpoch"
    PREFIX = "prefix"
    URI = "uri"
    # Written by capture (see docs/graph-model.md).
    EPOCHS_PLANNED = "epochsPlanned"
    EPOCHS_COMPLETED = "epochsCompleted"
    EPOCH_SECONDS = "epochSeconds"  # on a run: its epochs' elapsed seconds, summed
    COMMAND_LINE = "commandLine"
    ERROR = "error"
    PLAN = "plan"  # on WAS_ASSOCIATED_WITH: the plan's id
    ROLE = "role"  # on USED: train, validation, test
    KIND = "kind"  # of Metrics (epoch, test) and Adaptation (schedule, early_stopping)
    CLASS = "class"
    INDEX = "index"
    BACKEND = "backend"
    BACKEND_VERSION = "backendVersion"
    PROVKB_VERSION = "provkbVersion"
    HOSTNAME = "hostname"
    OS = "os"
    CPU = "cpu"
    CPU_COUNT = "cpuCount"
    GPUS = "gpus"
    PYTHON = "python"
    PLATFORM = "platform"
    PACKAGES = "packages"  # on Environment: every installed distribution, name==version
    ENVIRONMENT_VARIABLES = "environmentVariables"  # on Environment: NAME=value, redacted
    PATH = "path"
    SHA256 = "sha256"
    GIT_COMMIT = "gitCommit"
    GIT_DIRTY = "gitDirty"
    MODEL_CONFIG = "modelConfig"
    OPTIMIZER_CONFIG = "optimizerConfig"
    COMPILE_CONFIG = "compileConfig"
    SHAPE = "shape"
    DTYPE = "dtype"
    SAMPLES = "samples"
    FINGERPRINT = "fingerprint"
    TARGET_SHAPE = "targetShape"
    TARGET_DTYPE = "targetDtype"
    INPUTS = "inputs"  # on Dataset: JSON list of every input and target {role, name, shape, dtype}
    FINGERPRINT_BASIS = "fingerprintBasis"  # on Dataset: content, first-batches or type
    ON_BEHALF_OF = "onBehalfOf"  # on WAS_ASSOCIATED_WITH: the agent it acted for (delegation)
    TOTAL_PARAMS = "totalParams"
    TRAINABLE_PARAMS = "trainableParams"
    LAYER_COUNT = "layerCount"
    WEIGHTS_SHA256 = "weightsSha256"
    ACTIVATION = "activation"
    UNITS = "units"
    FILTERS = "filters"
    KERNEL_SIZE = "kernelSize"
    RATE = "rate"
    PARAMS = "params"
    OUTPUT_SHAPE = "outputShape"
    HYPERPARAMETER = "hyperparameter"  # on Adaptation: the name of what changed
    OLD_VALUE = "oldValue"
    NEW_VALUE = "newValue"
    CALLBACK = "callback"  # on Adaptation: class name of the responsible callback
    # The callbacks' own settings and what they did (h7, issue 13)
    SETTINGS = "settings"  # on a callback's Plan: JSON of its settings (monitor, patience...)
    SCHEDULE_SOURCE = "scheduleSource"  # on a LearningRateScheduler's Plan: its code (or repr)
    AFTER_TRAINING = "afterTraining"  # on Adaptation: made after the last epoch ran
    RESTORED_EPOCH = "restoredEpoch"  # on an early stop: the epoch whose weights were restored
    PAUSED_SCHEDULES = "pausedSchedules"  # on a SteeringAction: schedules it paused
    CONTINUED_FROM = "continuedFrom"  # on a run: the run whose model it trained further
    # Per-step metrics (step series, capture/step_series.py): one MetricSeries part holds
    # the steps (1-based batches of the run) and values of one metric in one epoch
    METRIC = "metric"  # on a MetricSeries: the metric's name, as Keras logged it
    STEPS = "steps"  # on a MetricSeries: list of int, ascending
    VALUES = "values"  # on a MetricSeries: list of float, one per step
    POINTS = "points"  # on a MetricSeries: len(steps)
    FIRST_STEP = "firstStep"  # on a MetricSeries (step series)
    LAST_STEP = "lastStep"  # on a MetricSeries (step series)
    PART = "part"  # on a MetricSeries: k, 1-based, of its epoch and metric (step series)
    LOG_EVERY_N_STEPS = "logEveryNSteps"  # on a MetricSeries: its logging interval
    # Predictions, confusion matrices and stored models (issue 17, docs/graph-model.md)
    SIZE_BYTES = "sizeBytes"  # on a StoredModel: the file's size
    MIN = "min"  # on Predictions: summary statistics over every finite output value
    MAX = "max"
    MEAN = "mean"
    STD = "std"
    NAN_COUNT = "nanCount"  # on Predictions: outputs that are NaN or infinite
    SAMPLE = "sample"  # on Predictions: JSON of the first output rows (size-bounded)
    OUTPUTS = "outputs"  # on Predictions: JSON list of every output {name, shape, dtype}
    PREDICTED_CLASSES = "predictedClasses"  # on Predictions: class of each sample row
    MATRIX = "matrix"  # on a ConfusionMatrix: JSON rows (true class) x columns (predicted)
    CLASSES = "classes"  # on a ConfusionMatrix: the class labels of its rows and columns
    PRECISION = "precision"  # on a ConfusionMatrix: per class, in `classes` order
    RECALL = "recall"
    SUPPORT = "support"  # on a ConfusionMatrix: true samples per class
    ACCURACY = "accuracy"  # on a ConfusionMatrix: the matrix's trace over its total
    REPRODUCES = "reproduces"  # on a run: the run whose provenance it reproduces
    # A script's Plan (provkb scan --record, capture/scan.py): `planned.<fact>` values
    SCAN = "scan"  # on a ScriptPlan: the whole scan as JSON (ScanResult.to_dict)
    PARSED = "parsed"  # on a ScriptPlan: false when the script has a syntax error
    PLAN_NOTES = "planNotes"  # on a ScriptPlan: "<fact>: how it was found / why not known"
    PROV_TYPE = "provType"  # prov:type values that are no ontology subtype (lists)
    # On a Deletion (provkb delete): what it removed (it outlives what it removed)
    DELETED_SCOPE = "deletedScope"  # run, experiment or study
    DELETED_NAME = "deletedName"  # the run id, experiment name or study name given
    DELETED_RUNS = "deletedRuns"  # the run ids removed
    DELETED_NODES = "deletedNodes"  # how many nodes were removed
    # Liveness of a run (capture writes them; queries show a silent run as interrupted)
    HEARTBEAT = "heartbeat"  # on a run: when its training process last said it lives
    HEARTBEAT_TIMEOUT = "heartbeatTimeout"  # on a run: seconds of silence = interrupted
    # Who really made a steering request (beside the `person` it claims)
    OS_USER = "osUser"  # the OS account of the requesting process
    HOST = "host"  # the host name of the requesting machine
    CLIENT_ADDRESS = "clientAddress"  # the app: the browser's address, when known
    # Steering requests and actions (kb/steering, capture/steering; docs/graph-model.md)
    STEERABLE = "steerable"  # on a run and on a Hyperparameter: may a person change it
    REQUEST_ID = "requestId"
    ACTION = "action"  # `SteeringActionKind` (runs) or `QueueEdit` (studies)
    REQUESTED_VALUE = "requestedValue"  # JSON text
    REASON = "reason"
    NOTE = "note"
    PERSON = "person"  # the name a request or edit says asked (the agent: its relation)
    REQUESTED_AT = "requestedAtTime"
    STATUS_REASON = "statusReason"
    SEEN_METRICS = "seenMetrics"  # id of the latest epoch Metrics the person could see
    SEEN_EPOCH = "seenEpoch"
    CLAIMED_BY = "claimedBy"
    CLAIMED_AT = "claimedAtTime"
    RESOLVED_AT = "resolvedAtTime"
    APPLIED_EPOCH = "appliedEpoch"
    ACTION_ID = "actionId"  # on a request: the SteeringAction that applied it
    CREATED = "createdAtTime"
    # Studies, their queue items and edits (kb/study, capture/study)
    STUDY = "study"  # the study's name, on its items, edits, states and iteration runs
    SPACE = "space"  # JSON text
    SAMPLER = "sampler"
    N_SAMPLES = "nSamples"
    SEED = "seed"
    MODE = "mode"  # max or min: which gain is better
    K = "k"  # window of the moving average of gains
    GAIN_METRIC = "gainMetric"
    GAIN_FUNCTION = "gainFunction"
    ITERATIONS = "iterations"  # on a study: iterations started
    QUEUE_REVISION = "queueRevision"  # on a study: bumped by every write (serialises them)
    ITEM_ID = "itemId"
    POSITION = "position"  # sort key among pending items
    CURRENT = "current"  # the item's current version
    ITERATION = "iteration"
    GAIN = "gain"
    RUN = "run"  # on a TrialItem: the run id that evaluated it
    LAST_GAIN = "lastGain"
    MOVING_AVERAGE = "movingAverage"
    BEFORE = "before"  # JSON text
    AFTER = "after"  # JSON text
    # Sessions: a study narrowed from another (kb/study/sessions.py)
    PARENT_STUDY = "parentStudy"  # on a study: the study it was narrowed from
    SESSION = "session"  # on a study: 1 for a first study, parent's + 1 for a narrowed one
    TOP = "top"  # on a Narrowing: how many of the parent's best trials it kept
    NARROWED = "narrowed"  # on a Narrowing: the names it narrowed (list)
    ADDED = "added"  # on a Narrowing: the names it brought in (list)
    GIVEN = "given"  # on a Narrowing: the names given by hand (list)
    RANK = "rank"  # on a Narrowing's USED of a kept trial: 1 = the best
    # Pruning (kb/study/pruning.py): a trial stopped because its gain was worse than the
    # median of the study's completed trials at an epoch
    PRUNING = "pruning"  # on a study: its pruning rule (JSON), when it has one
    PRUNED_EPOCH = "prunedEpoch"  # on a pruned run: the epoch (1-based) it was judged at
    PRUNED_VALUE = "prunedValue"  # on a pruned run: its best gain metric up to that epoch
    PRUNE_MEDIAN = "pruneMedian"  # on a pruned run: the median it was worse than
    # On an Import activity (kb/provimport.py; its file: name, path, sha256).
    FORMAT = "format"
    ON_CONFLICT = "onConflict"  # refuse, skip or replace (`ImportMode`)
    NODES_WRITTEN = "nodesWritten"
    EDGES_WRITTEN = "edgesWritten"
    SKIPPED = "skipped"  # JSON: the conflicts left as they were (--on-conflict skip)
    REPLACED = "replaced"  # JSON: the conflicts overwritten, with the previous values


class SummaryStat:
    """Per-metric statistics capture keeps on a run, over its epochs' finite values.

    Stored as run properties named by `summary_prop`, so run-level questions (the
    best epoch, the mean loss) read one node per run instead of every epoch."""

    MAX = "max"
    MAX_EPOCH = "maxEpoch"  # first epoch reaching the max
    MIN = "min"
    MIN_EPOCH = "minEpoch"  # first epoch reaching the min
    SUM = "sum"
    COUNT = "count"


SUMMARY_PREFIX = "summary."


def summary_prop(stat: str, metric: str) -> str:
    """The run property holding `stat` of `metric`, e.g. `summary.max.val_accuracy`."""
    return f"{SUMMARY_PREFIX}{stat}.{name_key(metric)}"


def summary_metric(prop: str, props: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
    """(stat, metric name) of a run summary property; None for any other property."""
    if not prop.startswith(SUMMARY_PREFIX):
        return None
    stat, sep, key = prop[len(SUMMARY_PREFIX) :].partition(".")
    return (stat, _full_name(key, props)) if sep else None


# -- user names (docs/graph-model.md, "User names") -----------------------------------
# Names a user chooses (Keras log keys, i.e. metric names) become property names only
# behind a ProvKB prefix, so no name can ever be, or overwrite, one of ProvKB's own
# properties (`id`, `epoch`, `kind`, ArcadeDB's `@rid`, ...). Hyperparameter names are
# values (`Hyperparameter.name`), never property names.
METRIC_PREFIX = "metric."  # metric `<name>` of a Metrics node: property `metric.<name>`
MAX_NAME_IN_KEY = 4096  # characters of a user name kept verbatim in a property name
LONG_NAME_PREFIX = "longName."  # `longName.<key>`: the full name of a shortened `<key>`
_SHORT_HEAD = 64  # characters of a long name kept at the start of its shortened key
# A value over the size limit (kb/records.py) is stored truncated, beside its original
# size in bytes and the sha256 of its full encoded form (UTF-8 text; JSON of a list).
TRUNCATED_SIZE_PREFIX = "truncated.size."
TRUNCATED_SHA256_PREFIX = "truncated.sha256."


def name_key(name: str) -> str:
    """A user name as it appears inside a property name: the name itself, or for a name
    over `MAX_NAME_IN_KEY` characters its first characters, `~` and its sha256 (both
    engines limit property names); the record then keeps the name in `long_name_prop`."""
    if len(name) <= MAX_NAME_IN_KEY:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{name[:_SHORT_HEAD]}~{digest}"


def long_name_prop(key: str) -> str:
    """The property holding the full name of a shortened `name_key`."""
    return f"{LONG_NAME_PREFIX}{key}"


def long_names(*names: str) -> dict[str, str]:
    """The `long_name_prop` properties a record needs for `names` (only long ones)."""
    return {long_name_prop(name_key(n)): n for n in names if len(n) > MAX_NAME_IN_KEY}


def _full_name(key: str, props: Mapping[str, Any] | None) -> str:
    full = (props or {}).get(long_name_prop(key))
    return full if isinstance(full, str) else key


def metric_prop(name: str) -> str:
    """The Metrics property of metric `name`: `metric.<name>` (e.g. `metric.val_loss`)."""
    return f"{METRIC_PREFIX}{name_key(name)}"


def metric_name(prop: str, props: Mapping[str, Any] | None = None) -> str | None:
    """The metric name of a Metrics property, the inverse of `metric_prop` (a shortened
    name is resolved through `props`); None for ProvKB's own properties."""
    if not prop.startswith(METRIC_PREFIX):
        return None
    return _full_name(prop[len(METRIC_PREFIX) :], props)


def metric_values(props: Mapping[str, Any]) -> dict[str, Any]:
    """{metric name: value} of a Metrics node's property map."""
    out: dict[str, Any] = {}
    for prop, value in props.items():
        name = metric_name(prop, props)
        if name is not None:
            out[name] = value
    return out


def truncated_size_prop(prop: str) -> str:
    """Where the original size (bytes) of truncated property `prop` is kept."""
    return f"{TRUNCATED_SIZE_PREFIX}{prop}"


def truncated_sha256_prop(prop: str) -> str:
    """Where the sha256 of the full value of truncated property `prop` is kept."""
    return f"{TRUNCATED_SHA256_PREFIX}{prop}"


def is_run_progress(name: str) -> bool:
    """A run property that only moves forward: `epochsCompleted`, `epochSeconds` and the
    `summary.*` statistics. The store writes them only when the write's
    `epochsCompleted` is not below the stored one (kb/cypher.py `advance_run_progress`),
    so an old journal replayed after a newer state changes none of them."""
    return name in (Prop.EPOCHS_COMPLETED, Prop.EPOCH_SECONDS) or name.startswith(SUMMARY_PREFIX)


# Properties capture sets on a run's records. An import takes them from a file only
# for new records of runs the file itself defines (docs/graph-model.md, "Import"); on
# any other record they are kept as `imported.<name>`, which no run query reads.
CAPTURE_PROPS = frozenset(
    {
        Prop.RUN_ID,
        Prop.KIND,
        Prop.EPOCH,
        Prop.STATUS,
        Prop.EXPERIMENT,
        Prop.PROJECT,
        Prop.EPOCHS_PLANNED,
        Prop.EPOCHS_COMPLETED,
        Prop.EPOCH_SECONDS,
        Prop.STOPPED_EPOCH,
        Prop.FROM_EPOCH,
        Prop.VERSION,
        Prop.ELAPSED,
        Prop.ERROR,
        Prop.COMMAND_LINE,
        Prop.STEERABLE,
    }
)
IMPORTED_PREFIX = "imported."


def is_capture_prop(name: str) -> bool:
    """True for a property only capture may set (`CAPTURE_PROPS`, `summary.*`)."""
    return name in CAPTURE_PROPS or name.startswith(SUMMARY_PREFIX)


def imported_prop(name: str) -> str:
    """Where an import keeps a capture property a file may not set: `imported.<name>`."""
    return f"{IMPORTED_PREFIX}{name}"


class ImportMode:
    """What an import does with records that would change what is stored."""

    REFUSE = "refuse"  # refuse the whole import, list the conflicts (default)
    SKIP = "skip"  # keep the stored records, add only the new ones
    REPLACE = "replace"  # overwrite, keeping the previous values on the Import activity


class PredictionRole:
    """`role` of what a Prediction or the Evaluation of a confusion matrix USED."""

    MODEL = "model"  # the run's Model (capture) or a StoredModel file (the app's tests)
    INPUT = "input"  # the input dataset
    PREDICTIONS = "predictions"  # the Predictions entity a confusion matrix came from


class RunStatus:
    """Values of `TrainingRun.status`."""

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED_EARLY = "stopped_early"
    STOPPED = "stopped"  # stopped by a person's steering request
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its process stopped without ending it (heartbeat)


class SteeringStatus:
    """Values of `SteeringRequest.status`."""

    PENDING = "pending"
    CLAIMED = "claimed"  # taken by one training process, not applied yet
    APPLIED = "applied"
    REJECTED = "rejected"


class SteeringActionKind:
    """What a person asks a running training (`SteeringRequest.action`)."""

    SET = "set"
    STOP = "stop"
    NOTE = "note"


class ItemStatus:
    """Values of `TrialItem.status`."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REMOVED = "removed"


class StudyStatus:
    """Values of `Study.status`: created (never run), running, paused (run() returned,
    items pending), completed (nothing pending when run() returned)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"


class QueueEdit:
    """Actions of a study's queue edits (`SteeringAction.action` of a study)."""

    ADD = "add"
    EDIT = "edit"
    REMOVE = "remove"
    MOVE = "move"
    RESPACE = "respace"


class TrialOutcome:
    """How a study's trial ended (`study-trial-status`, from its run's status)."""

    FINISHED = "finished"  # completed all its planned epochs
    EARLY_STOPPING = "early_stopping"  # a callback (EarlyStopping, ...) stopped it
    STEERING_STOP = "steering_stop"  # a person's steering request stopped it
    PRUNED = "pruned"  # the study's pruning rule stopped it
    FAILED = "failed"


class Sampler:
    """How a study expands its space (`Study.sampler`)."""

    GRID = "grid"
    RANDOM = "random"


class HyperparameterName:
    """Names of well-known hyperparameters (data: the `name` of `Hyperparameter` nodes)."""

    OPTIMIZER = "optimizer"  # value: the optimizer's name, e.g. "adam"
    LEARNING_RATE = "learning_rate"
    BATCH_SIZE = "batch_size"
    EPOCHS = "epochs"


class PlanFact:
    """What a script's Plan says, as `planned.<fact>` properties (capture/scan.py's
    `ScanResult.planned`), each compared by `plan-vs-run` with the run's value: the
    hyperparameter of that name (`HYPERPARAMETERS`), the model's `layerCount` (LAYERS)
    and its layers' classes in order (LAYER_CLASSES)."""

    EPOCHS = "epochs"
    BATCH_SIZE = "batch_size"
    VALIDATION_SPLIT = "validation_split"
    INITIAL_EPOCH = "initial_epoch"
    OPTIMIZER = "optimizer"
    OPTIMIZER_CLASS = "optimizer_class"
    LEARNING_RATE = "learning_rate"
    LOSS = "loss"
    METRICS = "metrics"
    LAYERS = "layers"
    LAYER_CLASSES = "layer_classes"
    SEED = "seed"
    HYPERPARAMETERS = (
        EPOCHS,
        BATCH_SIZE,
        VALIDATION_SPLIT,
        INITIAL_EPOCH,
        OPTIMIZER,
        OPTIMIZER_CLASS,
        LEARNING_RATE,
        LOSS,
        METRICS,
    )
    ALL = (*HYPERPARAMETERS, LAYERS, LAYER_CLASSES, SEED)


PLANNED_PREFIX = "planned."


def planned_prop(fact: str) -> str:
    """The ScriptPlan property of a planned fact: `planned.<fact>` (`planned.epochs`)."""
    return f"{PLANNED_PREFIX}{fact}"
