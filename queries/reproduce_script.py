"""`provkb reproduce`: a runnable, readable Keras script from a run's provenance.

`render(facts)` fills the Jinja2 template `templates/reproduce.py.j2` (package data)
with code built from what the run stored (`queries.reproduce.RunFacts`): the model from
its Plan's configuration (`keras_code`), the optimizer and compile arguments, the fit
arguments, the seed, the callbacks' settings (their Plans), the data loading
(`reproduce_data`) and a `ProvenanceCallback(reproduces=<run>)`. What cannot be rebuilt
is marked in the script (NOT REPRODUCED, PLACEHOLDER), never guessed silently.
"""

from __future__ import annotations

import ast
import builtins
import datetime
import inspect
import json
import symtable
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from ..capture.facts import GENERIC_CALLBACK, Role, Source
from ..capture.model_info import SEED
from ..ontology import HyperparameterName, Prop
from . import reproduce_data
from .keras_code import INDENT, WIDTH, automatic_name, block, call, literal, object_code
from .keras_code import value_code as code_of
from .keras_functional import functional_body
from .reproduce import RunFacts

TEMPLATE = "reproduce.py.j2"
SEPARATE_VALIDATION = "validation_data"  # fit hyperparameter: validation data was given
PROVENANCE_CALLBACK = "ProvenanceCallback"
SCHEDULER = "LearningRateScheduler"
COMPILE_ARGUMENTS = (
    "loss",
    "loss_weights",
    "metrics",
    "weighted_metrics",
    "run_eagerly",
    "steps_per_execution",
    "jit_compile",
    "auto_scale_loss",
)
# Names a recorded schedule function may use besides builtins (the script imports them).
SCHEDULE_MODULES = {"math": "import math", "np": "import numpy as np", "keras": "import keras"}
_SCRIPT_NAMES = {"load_data", "build_model", "compile_model", "callbacks", "main", "SEED"}


def comment(text: str, indent: int = 0) -> str:
    """`text` as `# ` comment lines that fit the script's line length."""
    pad = " " * indent
    lines = textwrap.wrap(text, WIDTH - indent - 2, break_long_words=False) or [""]
    return "\n".join(f"{pad}# {line}".rstrip() for line in lines)


def fitting(value: Any, indent: str) -> str:
    """`value` as a literal on one line when it fits after `indent`, else laid out."""
    text = literal(value)
    return text if len(indent) + len(text) + 24 <= WIDTH else block(value, indent)


def wrap(text: str, indent: int = 0) -> str:
    """`text` as lines of a docstring (its quotes and backslashes escaped)."""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    pad = " " * indent
    return textwrap.fill(text, WIDTH, subsequent_indent=pad, break_long_words=False)


def _indented(lines: list[str] | tuple[str, ...], indent: str = INDENT) -> str:
    return "\n".join(f"{indent}{line}" if line else "" for line in lines)


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the script templates (shipped with the package)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__ or "provkb.queries", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["comment"] = comment
    env.filters["pyrepr"] = repr
    env.filters["wrap"] = wrap
    return env


# -- the model ---------------------------------------------------------------------------
def _input_code(config: Mapping[str, Any]) -> str | None:
    import keras

    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if not isinstance(shape, list) or not shape:
        return None
    args = {"shape": literal(tuple(shape[1:]))}
    if shape[0] is not None:
        args["batch_size"] = literal(shape[0])
    if config.get("dtype") not in (None, "float32"):
        args["dtype"] = literal(config["dtype"])
    for flag in ("sparse", "ragged", "optional"):
        if config.get(flag):
            args[flag] = "True"
    if not automatic_name(keras.layers.InputLayer, config.get("name")):
        args["name"] = literal(config.get("name"))
    return call("keras.Input", args)


def _sequential(config: Mapping[str, Any]) -> str:
    """The body of `build_model()` for a Sequential model: one call per layer."""
    import keras

    items: list[str] = []
    at = INDENT * 3  # the layers' column inside `keras.Sequential([...])`
    for layer in config.get("layers") or []:
        if layer.get("class_name") == "InputLayer":
            found = _input_code(layer.get("config") or {})
            if found:
                items.append(found)
                continue
        layer = {k: v for k, v in layer.items() if k != "build_config"}
        items.append(object_code(layer, at))
    built = config.get("build_input_shape")
    if not any(item.startswith("keras.Input(") for item in items) and isinstance(built, list):
        items.insert(0, call("keras.Input", {"shape": literal(tuple(built[1:]))}))
    lines = [f"{INDENT}model = keras.Sequential(", f"{INDENT * 2}["]
    lines += [f"{at}{item}," for item in items]
    lines.append(f"{INDENT * 2}],")
    if not automatic_name(keras.Sequential, config.get("name")):
        lines.append(f"{INDENT * 2}name={literal(config.get('name'))},")
    lines.append(f"{INDENT})")
    if config.get("trainable") is False:
        lines.append(f"{INDENT}model.trainable = False")
    return "\n".join([*lines, f"{INDENT}return model"])


def model_code(facts: RunFacts) -> tuple[str, list[str], list[str]]:
    """The body of `build_model()`, its notes, and the gaps (what is not rebuilt)."""
    config = facts.config(Prop.MODEL_CONFIG)
    cls = facts.model.get(Prop.CLASS)
    if config is not None and cls == "Sequential":
        return _sequential(config), [], []
    if config is not None and cls == "Functional":
        readable = functional_body(config)
        if readable is not None:
            return readable, [], []
        body = [
            "# The functional model's configuration as the run stored it.",
            f"config = {block(config, INDENT)}",
            "return keras.Model.from_config(config)",
        ]
        return _indented(body), [], []
    why = (
        f"the run stored no whole model configuration (class {cls})"
        if config is None
        else f"the model is a {cls}, a subclass: its code is not in the provenance"
    )
    message = f"provkb reproduce: {why}; define build_model() in this script"
    lines = [
        "raise NotImplementedError(",
        *(f"{INDENT}{x!r}" for x in reproduce_data.pieces(message)),
        ")",
    ]
    note = f"PLACEHOLDER: {why}. Layers recorded: {facts.model.get(Prop.LAYER_COUNT)}."
    return _indented(lines), [note], [f"the model: {why}"]


# -- compile -----------------------------------------------------------------------------
def _optimizer(facts: RunFacts, compile_config: Mapping[str, Any]) -> dict[str, Any] | None:
    found = facts.config(Prop.OPTIMIZER_CONFIG) or compile_config.get("optimizer")
    if not isinstance(found, dict):
        return None
    optimizer = json.loads(json.dumps(found))
    stored = (optimizer.get("config") or {}).get(HyperparameterName.LEARNING_RATE)
    first = facts.values(Source.OPTIMIZER).get(HyperparameterName.LEARNING_RATE)
    if isinstance(stored, float) and isinstance(first, float):
        import numpy as np

        if np.float32(stored) == np.float32(first):  # as written: 0.01, not 0.0099999997
            optimizer["config"][HyperparameterName.LEARNING_RATE] = first
    return optimizer


def compile_code(facts: RunFacts) -> str:
    """`model.compile(...)` with the stored optimizer and the non-default arguments."""
    import keras

    config = facts.config(Prop.COMPILE_CONFIG) or {}
    if not config:  # no stored configuration: the recorded names (loss, metrics)
        config = {k: v for k, v in facts.values(Source.COMPILE).items() if k in COMPILE_ARGUMENTS}
    defaults = inspect.signature(keras.Model.compile).parameters
    args: dict[str, str] = {}
    optimizer = _optimizer(facts, config)
    if optimizer is not None:
        args["optimizer"] = object_code(optimizer, INDENT * 2)
    elif facts.values(Source.OPTIMIZER).get(HyperparameterName.OPTIMIZER):
        args["optimizer"] = literal(facts.values(Source.OPTIMIZER)[HyperparameterName.OPTIMIZER])
    for key in COMPILE_ARGUMENTS:
        if key not in config:
            continue
        default = defaults[key].default if key in defaults else inspect.Parameter.empty
        if config[key] != default:
            args[key] = code_of(config[key], INDENT * 2)
    return call("model.compile", args, INDENT)


# -- callbacks ---------------------------------------------------------------------------
def _callback_code(name: str, settings: Mapping[str, Any]) -> str | None:
    import keras

    cls = getattr(keras.callbacks, name, None)
    if not isinstance(cls, type):
        return None
    params = inspect.signature(cls.__init__).parameters
    args = {
        k: literal(v)
        for k, v in settings.items()
        if k in params and (params[k].default is inspect.Parameter.empty or params[k].default != v)
    }
    return call(f"keras.callbacks.{name}", args, INDENT * 2)


def _global_names(table: symtable.SymbolTable) -> set[str]:
    names = {s.get_name() for s in table.get_symbols() if s.is_global()}
    for child in table.get_children():
        names |= _global_names(child)
    return names


def schedule_function(source: str) -> tuple[str, str, set[str]] | tuple[None, None, set[str]]:
    """(definition, function name, names it needs) of a recorded schedule's code, or
    (None, None, unknown names) when it cannot be rebuilt from that code alone."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None, None, {"(its code: not Python)"}
    first = tree.body[0] if len(tree.body) == 1 else None
    if isinstance(first, ast.FunctionDef) and not first.decorator_list:
        name = first.name if first.name not in _SCRIPT_NAMES else f"schedule_{first.name}"
        first.name = name
        definition = ast.unparse(first)
    else:
        lambdas = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda)]
        if len(lambdas) != 1:
            return None, None, {"(its code: no single function)"}
        name, lam = "schedule", lambdas[0]
        definition = f"def schedule({ast.unparse(lam.args)}):\n    return {ast.unparse(lam.body)}"
    try:
        table = symtable.symtable(definition, "<schedule>", "exec")
    except SyntaxError:
        return None, None, {"(its code: not Python)"}
    needed = _global_names(table) - {name} - set(dir(builtins))
    unknown = needed - set(SCHEDULE_MODULES)
    if unknown:
        return None, None, unknown
    return definition, name, needed


def callbacks_code(facts: RunFacts) -> dict[str, Any]:
    """The callbacks' list items, schedule definitions, imports, notes and gaps."""
    items, definitions, notes, gaps, imports = [], [], [], [], set()
    for name, settings in sorted(facts.callbacks.items()):
        if name == SCHEDULER:
            source = facts.schedule_sources.get(name) or ""
            definition, fn, needed = schedule_function(source)
            if definition is not None:
                definitions.append(definition)
                imports |= {SCHEDULE_MODULES[n] for n in needed}
                items.append(f"keras.callbacks.LearningRateScheduler({fn})")
                continue
            missing = ", ".join(sorted(needed))
            notes.append(
                f"NOT REPRODUCED: the run's LearningRateScheduler; its schedule uses names "
                f"the provenance does not hold ({missing}). Define them and add "
                f"keras.callbacks.LearningRateScheduler(<the function>) below. Its code as "
                f"recorded:"
            )
            notes.append("\n".join(f"    {line}" for line in source.splitlines()))
            gaps.append(f"the LearningRateScheduler (its schedule uses {missing})")
            continue
        code = _callback_code(name, settings)
        if code is None:
            notes.append(f"NOT REPRODUCED: {name} (settings {json.dumps(settings)}).")
            gaps.append(f"the callback {name}")
        else:
            items.append(code)
    for name in facts.adapting_callbacks:
        if name in facts.callbacks or name == PROVENANCE_CALLBACK:
            continue
        who = "a callback ProvKB does not know" if name == GENERIC_CALLBACK else name
        notes.append(
            f"NOT REPRODUCED: {who} changed a hyperparameter of the original run "
            f"(Adaptation); its settings are not in the provenance."
        )
        gaps.append(f"the changes made by {who}")
    return {
        "callback_items": items,
        "definitions": definitions,
        "callback_notes": notes,
        "gaps": gaps,
        "imports": imports,
    }


def _comment_lines(text: str, indent: int) -> str:
    """A note as comment lines; a note with line breaks (code) keeps them."""
    if "\n" not in text:
        return comment(text, indent)
    return "\n".join(f"{' ' * indent}# {line}".rstrip() for line in text.splitlines())


# -- capture and fit ---------------------------------------------------------------------
def _capture_call(facts: RunFacts) -> str:
    run = facts.run
    name = run.get(Prop.NAME)
    label = f"{name} (reproduction)" if name and name != facts.run_id else None
    args = {"experiment": fitting(run.get(Prop.EXPERIMENT) or "default", INDENT * 2)}
    if run.get(Prop.PROJECT) not in (None, "default"):
        args["project"] = fitting(run[Prop.PROJECT], INDENT * 2)
    args["run_name"] = fitting(label or f"reproduction of {facts.run_id}", INDENT * 2)
    user = facts.values(Source.USER)
    if user:
        args["hyperparameters"] = fitting(user, INDENT * 2)
    names = {
        d[Prop.ROLE]: d[Prop.NAME]
        for d in facts.datasets
        if d.get(Prop.ROLE) in (Role.TRAIN, Role.VALIDATION) and isinstance(d.get(Prop.NAME), str)
    }
    if names:
        args["datasets"] = fitting(names, INDENT * 2)
    args["reproduces"] = "ORIGINAL_RUN"
    args["store"] = "args.store"
    return call("provkb.ProvenanceCallback", args, INDENT)


def _fit_value(name: str, value: Any) -> Any:
    if name == "class_weight" and isinstance(value, str):
        try:
            weights = json.loads(value)
        except ValueError:
            return value
        return {int(k) if str(k).isdigit() else k: v for k, v in weights.items()}
    return value


def fit_call(facts: RunFacts) -> str:
    """`model.fit(x, y, ...)` with every recorded fit argument."""
    values = facts.values(Source.FIT)
    args = {"validation_data": "validation"}  # None unless the run was given its own
    for name, value in values.items():
        if name != SEPARATE_VALIDATION:
            args[name] = fitting(_fit_value(name, value), INDENT * 2)
    args["callbacks"] = "[*callbacks(), capture]"
    args["verbose"] = "2"
    return call("model.fit", args, INDENT, positional=("x", "y"))


# -- the script --------------------------------------------------------------------------
def _summary(facts: RunFacts) -> str:
    values = facts.values()
    parts = [
        f"a {facts.model.get(Prop.CLASS) or 'model'} of {facts.model.get(Prop.LAYER_COUNT)} layers",
        f"{values.get('optimizer_class') or values.get(HyperparameterName.OPTIMIZER)} at "
        f"learning rate {values.get(HyperparameterName.LEARNING_RATE)}",
        f"{values.get(HyperparameterName.EPOCHS)} epochs of batch size "
        f"{values.get(HyperparameterName.BATCH_SIZE)}",
        f"status {facts.run.get(Prop.STATUS)} after {facts.run.get(Prop.EPOCHS_COMPLETED)} epochs",
    ]
    return "; ".join(parts)


def context(facts: RunFacts, filename: str = "train_again.py") -> dict[str, Any]:
    """Everything the template needs, as text."""
    from .. import __version__

    values = facts.values()
    separate = bool(values.get(SEPARATE_VALIDATION))
    data = reproduce_data.plan(facts.run_id, facts.datasets, separate, facts.scan)
    body, model_notes, model_gaps = model_code(facts)
    parts = callbacks_code(facts)
    gaps = [*model_gaps, *([] if data.known else ["the data loading (load_data)"])]
    gaps += parts.pop("gaps")
    stdlib = sorted({"import argparse"} | {i for i in parts["imports"] if i == "import math"})
    third = sorted({"import keras", "import provkb"} | (parts.pop("imports") - set(stdlib)))
    seed = facts.values(Source.KERAS).get(SEED)
    if not isinstance(seed, int):
        gaps.append("the random seed: the run recorded none")
    run = facts.run
    written = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {
        **parts,
        "callback_notes": [_comment_lines(n, 4) for n in parts["callback_notes"]],
        "run_id": facts.run_id,
        "about": (
            f"Run {facts.run_id} ({run.get(Prop.NAME)!r}, experiment "
            f"{run.get(Prop.EXPERIMENT)!r}) trained again, as its provenance says it was "
            f"trained: {_summary(facts)}. Written by `provkb reproduce` on {written} "
            f"(ProvKB {__version__})."
        ),
        "capture_note": (
            f"ProvKB captures the new run and records that it reproduces run {facts.run_id}: "
            f"`provkb query reproductions -p run={facts.run_id}` shows both side by side."
        ),
        "filename": Path(filename).name,
        "gaps": gaps,
        "stdlib_imports": stdlib,
        "imports": third,
        "seed": seed if isinstance(seed, int) else None,
        "data_notes": list(data.notes),
        "data_body": _indented(data.body),
        "model_doc": f"The architecture of run {facts.run_id}, from its stored configuration.",
        "model_notes": model_notes,
        "model_body": body,
        "compile_call": compile_code(facts),
        "capture_call": _capture_call(facts),
        "fit_call": fit_call(facts),
    }


def render(facts: RunFacts, filename: str = "train_again.py") -> str:
    """The script's text (see the module text)."""
    return environment().get_template(TEMPLATE).render(**context(facts, filename))
