"""The walk of `capture.scan`: every call of a parsed script, sorted out (models and
their layers, compile, fit, datasets, callbacks, seeds) into a `ScanResult`."""

from __future__ import annotations

import ast

from .scan_facts import Call, Compile, DataLoad, Layer, ModelSpec, ScanResult, Unknown
from .scan_values import Resolver, Scope, Value, text_of

FIT_PARAMS = (
    "x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split",
    "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
    "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq",
)  # fmt: skip
COMPILE_PARAMS = ("optimizer", "loss", "loss_weights", "metrics")
LAYER_PARAMS = {
    "Dense": ("units",),
    "Conv1D": ("filters", "kernel_size"),
    "Conv2D": ("filters", "kernel_size"),
    "Conv3D": ("filters", "kernel_size"),
    "Dropout": ("rate",),
    "Input": ("shape",),
    "Embedding": ("input_dim", "output_dim"),
    "LSTM": ("units",),
    "GRU": ("units",),
    "SimpleRNN": ("units",),
    "MaxPooling1D": ("pool_size",),
    "MaxPooling2D": ("pool_size",),
    "AveragePooling2D": ("pool_size",),
}
DATA_ARGS = ("x", "y", "validation_data", "sample_weight", "class_weight", "callbacks")
KERAS_FIT_KEYWORDS = frozenset(FIT_PARAMS[2:])
SEEDS = frozenset(
    {
        "keras.utils.set_random_seed",
        "numpy.random.seed",
        "tensorflow.random.set_seed",
        "random.seed",
        "torch.manual_seed",
        "tensorflow.keras.utils.set_random_seed",
    }
)
SEQUENTIAL = frozenset({"keras.Sequential", "keras.models.Sequential"})
FUNCTIONAL = frozenset({"keras.Model", "keras.models.Model"})
INPUTS = frozenset({"keras.Input", "keras.layers.Input"})
TF_DATA = ("tensorflow.data.",)
FILE_LOADERS = frozenset(
    {
        "numpy.load",
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.fromfile",
        "tensorflow_datasets.load",
        "datasets.load_dataset",
    }
)
KERAS_DATA_UTILS = (
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "timeseries_dataset_from_array",
)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.Module)
LOOPS = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ListComp,
    ast.SetComp,
    ast.GeneratorExp,
    ast.DictComp,
)
PATH_KEYWORDS = ("path", "filepath_or_buffer", "directory", "file", "fname", "name", "io")


class Extractor:
    """Walks every call of the tree in source order and sorts out what it is."""

    def __init__(self, tree: ast.Module, result: ScanResult) -> None:
        self.tree = tree
        self.result = result
        self.r = Resolver(tree)
        self.parents: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
        self.in_models: set[int] = set()  # layer calls already placed in a model

    def run(self) -> None:
        calls = sorted(
            (n for n in ast.walk(self.tree) if isinstance(n, ast.Call)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for node in calls:  # models first: layers belong to them
            self._model(node)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ClassDef):
                self._subclassed(node)
        for node in calls:
            self._other(node)
        self.result.models.sort(key=lambda m: m.line)
        self.result.constants.update({k: v for k, v in self.r.used.items() if v.known})

    # -- calls ------------------------------------------------------------------------
    def call(self, node: ast.Call, params: tuple[str, ...] = (), what: str | None = None) -> Call:
        """A `Call` with its arguments' values; unknown hyperparameter-like ones are
        recorded in `unknowns` as `<what>.<parameter>`."""
        name = self.r.canonical(node.func) or text_of(node.func)
        scope = self.r.scope_for(node)
        args: list[Value] = []
        kwargs: dict[str, Value] = {}
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                self._unknown(f"{what or name}.*", arg, "arguments unpacked at run time")
                continue
            value = self.r.value(arg, scope)
            if i < len(params):
                kwargs[params[i]] = value
            else:
                args.append(value)
        for keyword in node.keywords:
            if keyword.arg is None:
                self._unknown(f"{what or name}.**", keyword.value, "keywords unpacked at run time")
                continue
            kwargs[keyword.arg] = self.r.value(keyword.value, scope)
        found = Call(name, node.lineno, tuple(args), kwargs)
        label = what or found.short
        for key, value in kwargs.items():
            if not value.known and key not in DATA_ARGS:
                self.result.unknowns.append(
                    Unknown(f"{label}.{key}", value.text, value.reason or "", node.lineno)
                )
        for i, value in enumerate(args):
            if not value.known and what not in ("fit", "dataset"):
                self.result.unknowns.append(
                    Unknown(f"{label}.args[{i}]", value.text, value.reason or "", node.lineno)
                )
        return found

    def _unknown(self, what: str, node: ast.AST, reason: str) -> None:
        line = getattr(node, "lineno", 0)
        self.result.unknowns.append(Unknown(what, text_of(node), reason, line))

    def _layer_name(self, node: ast.AST) -> str | None:
        """The layer class a call constructs (`Dense`, `InputLayer` for keras.Input)."""
        if not isinstance(node, ast.Call):
            return None
        name = self.r.canonical(node.func) or ""
        if name in INPUTS:
            return "InputLayer"
        head, _, last = name.rpartition(".")
        if head == "keras.layers" and last[:1].isupper():
            return last
        return None

    def layer(self, node: ast.Call, index: int) -> Layer:
        self.in_models.add(id(node))
        class_name = self._layer_name(node) or "?"
        params = LAYER_PARAMS.get("Input" if class_name == "InputLayer" else class_name, ())
        repeated = self._in_loop(node)
        if repeated:
            self._unknown(f"{class_name}.count", node, "constructed in a loop: how many times is "
                          "known at run time")  # fmt: skip
        return Layer(index, class_name, self.call(node, params, class_name), repeated)

    def _in_loop(self, node: ast.AST) -> bool:
        """Is `node` evaluated in a loop or comprehension of its own scope?"""
        parent = self.parents.get(id(node))
        while parent is not None and not isinstance(parent, SCOPES):
            if isinstance(parent, LOOPS):
                return True
            parent = self.parents.get(id(parent))
        return False

    # -- models -----------------------------------------------------------------------
    def _assigned_to(self, node: ast.AST) -> str | None:
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Assign | ast.AnnAssign):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name):
                return targets[0].id
        return None

    def _model(self, node: ast.Call) -> None:
        name = self.r.canonical(node.func) or ""
        if name in SEQUENTIAL:
            self._sequential(node, name)
        elif name in FUNCTIONAL and (len(node.args) >= 2 or _has(node, "inputs", "outputs")):
            self._functional(node, name)
        elif name.startswith("keras.applications.") and name.rsplit(".", 1)[-1][:1].isupper():
            var = self._assigned_to(node)
            self.call(node, (), name.rsplit(".", 1)[-1])
            self.result.models.append(ModelSpec("application", name, node.lineno, var))

    def _sequential(self, node: ast.Call, name: str) -> None:
        var = self._assigned_to(node)
        scope = self.r.scope_for(node)
        elements: list[ast.expr] = []
        given = node.args[0] if node.args else _keyword(node, "layers")
        if given is not None:
            listed, _ = self.r.definition(given, scope)
            if isinstance(listed, ast.List | ast.Tuple):
                elements = list(listed.elts)
            else:
                self._unknown("Sequential.layers", given, "a list built at run time")
        if var is not None:  # model.add(...) calls on the same variable, in order
            elements += [
                c.args[0]
                for c in _calls_in(scope, self.r)
                if isinstance(c.func, ast.Attribute)
                and c.func.attr == "add"
                and isinstance(c.func.value, ast.Name)
                and c.func.value.id == var
                and c.args
                and c.lineno >= node.lineno
            ]
        layers = []
        for element in elements:
            built, _ = self.r.definition(element, self.r.scope_for(element))
            if self._layer_name(built) is None:
                self._unknown(
                    "Sequential.layers", element, "not a keras.layers call the scan knows"
                )
                continue
            layers.append(self.layer(built, len(layers)))  # type: ignore[arg-type]
        self.result.models.append(ModelSpec("sequential", name, node.lineno, var, tuple(layers)))

    def _functional(self, node: ast.Call, name: str) -> None:
        """A functional model: the layers constructed in the scope that builds it, in
        source order (Keras' layers are the graph's, the scan reads the code's order)."""
        var = self._assigned_to(node)
        scope = self.r.scope_for(node)
        layers = []
        for call in _calls_in(scope, self.r):
            if id(call) not in self.in_models and self._layer_name(call) is not None:
                layers.append(self.layer(call, len(layers)))
        self.result.models.append(ModelSpec("functional", name, node.lineno, var, tuple(layers)))

    def _subclassed(self, node: ast.ClassDef) -> None:
        bases = {self.r.canonical(b) for b in node.bases}
        if not bases & FUNCTIONAL:
            return
        layers = []
        calls = sorted(
            (n for n in ast.walk(node) if isinstance(n, ast.Call)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for call in calls:
            if id(call) not in self.in_models and self._layer_name(call) is not None:
                layers.append(self.layer(call, len(layers)))
        self.result.models.append(
            ModelSpec("subclassed", node.name, node.lineno, None, tuple(layers))
        )
        self.result.notes.append(
            f"{node.name} subclasses keras.Model: its layers as constructed in the class; "
            f"the order call() uses them in is not read"
        )

    # -- everything else --------------------------------------------------------------
    def _other(self, node: ast.Call) -> None:
        name = self.r.canonical(node.func) or ""
        func = node.func
        if name in SEEDS:
            self.result.seeds.append(self.call(node, (), "seed"))
        elif _is_callback(name):
            self.result.callbacks.append(self.call(node, (), name.rsplit(".", 1)[-1]))
        elif (source := self._data_source(name, node)) is not False:
            self.result.datasets.append(DataLoad(name, source, self.call(node, (), "dataset")))
        elif isinstance(func, ast.Attribute) and not self.r.is_module(func.value):
            if func.attr == "compile":
                self._compile(node)
            elif func.attr == "fit" and self._keras_fit(node):
                self.result.fits.append(self.call(node, FIT_PARAMS, "fit"))

    def _data_source(self, name: str, node: ast.Call) -> str | None | bool:
        """What a dataset loader loads (None: not told), False when `name` is none."""
        head, _, last = name.rpartition(".")
        if head == "sklearn.datasets" and last.startswith(("load_", "fetch_", "make_")):
            return last.split("_", 1)[1]
        if head.startswith("keras.datasets.") and last == "load_data":
            return head.rsplit(".", 1)[-1]
        is_file = (
            name in FILE_LOADERS
            or (head == "pandas" and last.startswith("read_"))
            or name.startswith(TF_DATA)
            or (head in ("keras.utils", "keras.preprocessing") and last in KERAS_DATA_UTILS)
        )
        if not is_file:
            return False
        first = node.args[0] if node.args else None
        first = first or next((k.value for k in node.keywords if k.arg in PATH_KEYWORDS), None)
        if first is None:
            return None
        value = self.r.value(first)
        return str(value.value) if value.known else value.text

    def _keras_fit(self, node: ast.Call) -> bool:
        """A Keras `fit` (not scikit-learn's): it has a Keras keyword, or is called on
        a model the scan found."""
        if any(k.arg in KERAS_FIT_KEYWORDS for k in node.keywords):
            return True
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        models = {m.variable for m in self.result.models if m.variable}
        return isinstance(receiver, ast.Name) and (receiver.id in models or "model" in receiver.id)

    def _compile(self, node: ast.Call) -> None:
        found = self.call(node, COMPILE_PARAMS, "compile")
        scope = self.r.scope_for(node)
        given = {k: v for k, v in zip(COMPILE_PARAMS, node.args, strict=False)}
        given.update({k.arg: k.value for k in node.keywords if k.arg})
        optimizer, optimizer_call = found.get("optimizer"), None
        if "optimizer" in given:
            built, _ = self.r.definition(given["optimizer"], scope)
            if isinstance(built, ast.Call) and _is_optimizer(self.r.canonical(built.func)):
                optimizer_call = self.call(built, ("learning_rate",), "optimizer")
                optimizer = None
                self._drop_unknown("compile.optimizer", node.lineno)
        loss, loss_call = found.get("loss"), None
        if "loss" in given:
            built, _ = self.r.definition(given["loss"], scope)
            if isinstance(built, ast.Call) and (self.r.canonical(built.func) or "").startswith(
                "keras.losses."
            ):
                loss_call = self.call(built, (), "loss")
                loss = None
                self._drop_unknown("compile.loss", node.lineno)
        compiled = Compile(found, optimizer, optimizer_call, loss, loss_call, found.get("metrics"))
        self.result.compiles.append(compiled)

    def _drop_unknown(self, what: str, line: int) -> None:
        """An argument that turned out to be a known construction is no unknown."""
        self.result.unknowns = [
            u for u in self.result.unknowns if not (u.what == what and u.line == line)
        ]


def _calls_in(scope: Scope, resolver: Resolver) -> list[ast.Call]:
    """The calls evaluated directly in `scope`, in source order."""
    found = resolver.calls.get(id(scope), [])
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def _has(node: ast.Call, *names: str) -> bool:
    return any(k.arg in names for k in node.keywords)


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _is_callback(name: str) -> bool:
    head, _, last = name.rpartition(".")
    if head == "keras.callbacks" and last[:1].isupper() and last != "Callback":
        return True
    return last == "ProvenanceCallback" or name in ("provkb.autolog", "provkb.capture.autolog")


def _is_optimizer(name: str | None) -> bool:
    head, _, last = (name or "").rpartition(".")
    return head in ("keras.optimizers", "keras.optimizers.legacy") and last[:1].isupper()
