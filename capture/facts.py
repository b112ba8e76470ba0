"""Plain facts about a training run, free of Keras: what `recorder` turns into PROV."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import redaction


def shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (0.01, not
    0.009999999776482582, for a learning-rate variable holding 0.01)."""
    if not math.isfinite(value):
        return value
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def float32_raw(value: Any) -> float | None:
    """The float32 `value` as the variable holds it (widened to float64), when that
    differs from `value` (a shortest decimal); None otherwise."""
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    raw = float(np.float32(value))
    return raw if raw != value else None


class Source:
    """Where a hyperparameter value came from (`Hyperparameter.source`)."""

    OPTIMIZER = "optimizer"
    FIT = "fit"
    COMPILE = "compile"
    USER = "user"
    STEERING = "steering"  # a new value a person's steering request set mid-run
    ADAPTATION = "adaptation"  # a new value a callback (a schedule) set mid-run (h7)
    KERAS = "keras"  # Keras' own state: the global random seed (keras.utils.set_random_seed)


class Role:
    """The role of a dataset a run or an evaluation used (property `role` of `USED`)."""

    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"
    INITIAL_MODEL = "initial model"  # a continued run's start: the model a run generated


class MetricsKind:
    """`Metrics.kind`."""

    EPOCH = "epoch"
    TEST = "test"


class AdaptationKind:
    """`Adaptation.kind`."""

    SCHEDULE = "schedule"
    EARLY_STOPPING = "early_stopping"


GENERIC_CALLBACK = "unknown"  # agent of a change no known callback explains


@dataclass(frozen=True)
class Software:
    """The deep-learning framework that ran the training."""

    version: str
    backend: str
    backend_version: str | None
    provkb_version: str


@dataclass(frozen=True)
class Machine:
    hostname: str
    os: str
    cpu: str
    cpu_count: int | None
    gpus: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    """Python, the platform, every installed distribution and the environment
    variables (secrets redacted: see `redaction`)."""

    python: str
    platform: str
    os: str
    cpu: str
    gpus: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()  # name==version
    variables: tuple[str, ...] = ()  # NAME=value

    @property
    def sha256(self) -> str:
        """Content hash: the node's identity."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Script:
    path: str
    sha256: str
    git_commit: str | None = None
    git_dirty: bool | None = None


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter value; `tracked` ones may change during training,
    `steerable` ones may be set by a person's steering request."""

    name: str
    value: Any
    source: str
    tracked: bool = False
    steerable: bool = False
    float32: bool = False  # held in a float32 variable: `value` is its shortest decimal

    def __post_init__(self) -> None:
        if self.source == Source.USER:  # the user's values may hold secrets
            object.__setattr__(self, "value", redaction.redact_value(self.name, self.value))


class FingerprintBasis:
    """What a dataset's fingerprint hashes (`Dataset.fingerprintBasis`)."""

    CONTENT = "content"  # every array's dtype, shape and bytes
    FIRST_BATCHES = "first-batches"  # element spec, cardinality and the first batches
    TYPE = "type"  # type, structure and the run: no content could be read


@dataclass(frozen=True)
class DataPart:
    """One input or target array (or tensor spec) of a dataset."""

    role: str  # "input" or "target"
    name: str | None  # the key of a dict input, its position among several, else None
    shape: tuple[int | None, ...] | None  # None for the batch dimension of a pipeline
    dtype: str | None
    samples: int | None = None


@dataclass(frozen=True)
class Dataset:
    fingerprint: str
    name: str | None
    shape: tuple[int | None, ...] | None
    dtype: str | None
    samples: int | None
    target_shape: tuple[int | None, ...] | None = None
    target_dtype: str | None = None
    parts: tuple[DataPart, ...] = ()  # every input and target, in a stable order
    fingerprint_basis: str = FingerprintBasis.CONTENT

    def parts_json(self) -> str | None:
        """`parts` as JSON text (the node's `inputs`), None when there are none."""
        if not self.parts:
            return None
        return json.dumps([asdict(p) for p in self.parts], sort_keys=True)


@dataclass(frozen=True)
class Layer:
    index: int
    name: str
    class_name: str
    params: int | None = None
    activation: str | None = None
    units: int | None = None
    filters: int | None = None
    kernel_size: tuple[int, ...] | None = None
    rate: float | None = None
    output_shape: tuple[int | None, ...] | None = None


@dataclass(frozen=True)
class Model:
    name: str
    class_name: str
    total_params: int | None
    trainable_params: int | None
    layers: tuple[Layer, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Prospective provenance: what was configured (JSON texts)."""

    model_config: str | None
    optimizer_config: str | None
    compile_config: str | None


@dataclass(frozen=True)
class Run:
    run_id: str
    name: str
    experiment: str
    project: str
    person: str
    started: str
    epochs_planned: int | None
    first_epoch: int = 1  # 1-based number of the first epoch this run trains
    command_line: str | None = None  # secrets redacted
    steerable: bool = True  # its training polls for steering requests

    def __post_init__(self) -> None:
        if self.command_line:
            redacted = redaction.redact_command_line(self.command_line)
            object.__setattr__(self, "command_line", redacted)


@dataclass
class RunContext:
    """Everything known when training starts (each part optional but the run)."""

    run: Run
    software: Software | None = None
    machine: Machine | None = None
    environment: Environment | None = None
    script: Script | None = None
    plan: Plan | None = None
    model: Model | None = None
    hyperparameters: list[Hyperparameter] = field(default_factory=list)
    datasets: dict[str, Dataset] = field(default_factory=dict)  # role -> dataset
