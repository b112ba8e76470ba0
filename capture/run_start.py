"""What a run records when training begins: its hyperparameters and datasets, from the
`fit` call's arguments, the model and the values given to the callback."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..kb import plans
from ..kb.writer import BackgroundWriter
from ..ontology import HyperparameterName
from . import datasets, model_info
from .facts import Dataset, Hyperparameter, Role, Source
from .fit_context import CallArgs
from .safety import WarnOnce, swallow
from .steerable import Steerable

KERAS_DEFAULT_BATCH_SIZE = 32
FIT_HYPERPARAMETERS = (
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


def fact(warn: WarnOnce, what: str, fn: Callable[[], Any]) -> Any:
    """Compute one fact; a failure loses that fact only (re-raised in strict mode)."""
    try:
        return fn()
    except Exception as exc:
        swallow(warn, "provkb: could not capture the %s: %s", what, exc, exc=exc)
        return None


def hyperparameters(
    model: Any,
    args: CallArgs,
    steerables: Mapping[str, Steerable],
    given: Mapping[str, Any],
    steering: bool,
    warn: WarnOnce,
) -> list[Hyperparameter]:
    """Every hyperparameter of the run: the optimizer's, the fit arguments, the compile
    arguments, the `Steerable`s and the user's own values (`given`)."""
    out: list[Hyperparameter] = []
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        out += (
            fact(warn, "optimizer", lambda: model_info.optimizer_hyperparameters(optimizer)) or []
        )
    out += fact(warn, "fit arguments", lambda: fit_hyperparameters(args)) or []
    out += fact(warn, "compile arguments", lambda: model_info.compile_hyperparameters(model)) or []
    known = {hp.name for hp in out}
    for name, steerable in steerables.items():
        if name in known:
            warn(
                "provkb: the steerable %r has the name of a hyperparameter ProvKB "
                "records itself; rename it to make it steerable",
                name,
            )
            continue
        out.append(Hyperparameter(name, steerable.value, Source.USER, steerable=True))
        known.add(name)
    out += [Hyperparameter(str(k), v, Source.USER) for k, v in given.items() if str(k) not in known]
    if all(hp.name != model_info.SEED for hp in out):  # a user's own "seed" wins
        out += fact(warn, "seed", model_info.seed_hyperparameters) or []
    if not steering:
        out = [dataclasses.replace(hp, steerable=False) for hp in out]
    return out


_NAMES_GIVEN: set[tuple[str, str]] = set()  # (experiment, name) this process named
_NAMES_LOCK = threading.Lock()


def default_run_name(
    hyperparameters: Sequence[Hyperparameter], started: str, experiment: str, run_id: str
) -> str:
    """A readable name for a run given none: `<optimizer>-lr<value>-<MMDD>-<HHMMSS>` of
    its start (UTC), e.g. `adam-lr0.001-0301-094012` (`run-...` without an optimizer).

    Unique within the experiment for the runs this process starts (a second run in the
    same second gets its short id appended); the run id stays the key."""
    values = {hp.name: hp.value for hp in hyperparameters}
    optimizer = values.get(HyperparameterName.OPTIMIZER)
    parts = [_name_part(optimizer) if isinstance(optimizer, str) and optimizer else "run"]
    lr = values.get(HyperparameterName.LEARNING_RATE)
    if isinstance(lr, int | float) and not isinstance(lr, bool):
        parts.append(f"lr{lr:g}")
    digits = re.sub(r"\D", "", started)  # 2026-03-01T09:40:12... -> 20260301094012...
    if len(digits) >= 14:
        parts += [digits[4:8], digits[8:14]]
    name = "-".join(parts)
    with _NAMES_LOCK:
        if (experiment, name) in _NAMES_GIVEN:
            name = f"{name}-{run_id[:4]}"
        _NAMES_GIVEN.add((experiment, name))
    return name


def _name_part(text: str) -> str:
    """Text safe in a name: lower case letters, digits, `.`, `_` and `-`."""
    return re.sub(r"[^a-z0-9._-]+", "", text.lower())[:24] or "run"


def fit_hyperparameters(args: CallArgs) -> list[Hyperparameter]:
    """The `fit` arguments that are hyperparameters (source `fit`)."""
    values = {k: args.get(k) for k in FIT_HYPERPARAMETERS}
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


def dataset(
    names: Mapping[str, str], run_id: str, role: str, x: Any, y: Any, args: CallArgs, salt: str
) -> Dataset | None:
    """The dataset (x, y) in `role`, named by `names` or by the caller's variable."""
    name = names.get(role) or args.name_of(x)
    return datasets.describe(x, y, name=name, salt=f"{run_id}/{salt}")


def fit_datasets(names: Mapping[str, str], run_id: str, args: CallArgs) -> dict[str, Dataset]:
    """The training and validation datasets of a `fit` call."""
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
        described = dataset(names, run_id, role, dx, dy, args, role)
        if described is not None:
            out[role] = described
    return out


def link_plan(writer: BackgroundWriter, run_node: str) -> None:
    """Once the run's start is written, link it to the Plan of its script version when
    `provkb scan --record` stored one (kb.plans.link_run; nothing happens otherwise)."""
    writer.after(lambda store: plans.link_run(store, run_node))
