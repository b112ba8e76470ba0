"""Plain facts about a training run, free of Keras: what `recorder` turns into PROV."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import redaction


class Source:
    """Where a hyperparameter value came from (`Hyperparameter.source`)."""

    OPTIMIZER = "optimizer"
    FIT = "fit"
    COMPILE = "compile"
    USER = "user"
    STEERING = "steering"  # a new value a person's steering request set mid-run


class Role:
    """The role of a dataset a run or an evaluation used (property `role` of `USED`)."""

    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


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

    def __post_init__(self) -> None:
        if self.source == Source.USER:  # the user's values may hold secrets
            object.__setattr__(self, "value", redaction.redact_value(self.name, self.value))


@dataclass(frozen=True)
class Dataset:
    fingerprint: str
    name: str | None
    shape: tuple[int | None, ...] | None
    dtype: str | None
    samples: int | None
    target_shape: tuple[int | None, ...] | None = None
    target_dtype: str | None = None


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
