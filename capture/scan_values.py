"""What an expression of a script is worth without running it (for `capture.scan`).

`Resolver` knows the script's imports, its scopes (module, functions, classes) with
their assignments and parameters, and its argparse options. `value(node, scope)` gives
a `Value`: known for a literal, a literal reached through simple names (`epochs=EPOCHS`,
`EPOCHS = 10`), arithmetic on those, or an argparse default (`args.epochs`); otherwise
unknown, with the reason. Only `ast` and `ast.literal_eval`: nothing is imported or run.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 200  # characters of an expression kept as its text
MAX_DEPTH = 20  # names followed through assignments at most
ARGPARSE_PARSERS = ("parse_args", "parse_known_args", "parse_intermixed_args")
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "tuple": tuple,
    "list": list,
}


def text_of(node: ast.AST) -> str:
    """The expression as source text (cut to `MAX_TEXT` characters)."""
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - a node unparse cannot render: say so, never fail
        text = f"<{type(node).__name__}>"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


@dataclass(frozen=True)
class Value:
    """An argument as the script gives it: its text, and its value when it can be told.

    `origin` says how a known value was found (a literal, the names followed, an
    argparse default); `reason` why an unknown one cannot be told without running."""

    text: str
    known: bool = False
    value: Any = None
    origin: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Binding:
    """One assignment of a name: the expression assigned (None when it cannot be
    paired with the name, e.g. unpacking a call) and why not."""

    line: int
    expr: ast.expr | None
    how: str | None = None  # for expr None: "the loop variable of `for`", ...


@dataclass
class Scope:
    """A module, function or class body: its names' bindings and its parameters."""

    name: str
    kind: str  # module, function, class
    parent: Scope | None = None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    params: set[str] = field(default_factory=set)

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def lookup(self, name: str) -> Scope | None:
        """The scope that binds `name` (class bodies are not enclosing scopes)."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.bindings or name in scope.params:
                return scope
            scope = scope.parent
            while scope is not None and scope.kind == "class":
                scope = scope.parent
        return None


@dataclass(frozen=True)
class Option:
    """An argparse option: its flag, destination and default expression."""

    flag: str
    dest: str
    default: ast.expr | None
    type_name: str | None
    line: int


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` of a Name/Attribute chain, None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class Resolver:
    """Imports, scopes and argparse options of one parsed script."""

    def __init__(self, tree: ast.Module) -> None:
        self.imports: dict[str, str] = {}  # local name -> full dotted name
        self.module = Scope("<module>", "module")
        self.scope_of: dict[int, Scope] = {}  # id(node) -> the scope it is evaluated in
        self.options: dict[str, Option] = {}
        self.used: dict[str, Value] = {}  # names followed -> what they hold
        self.calls: dict[int, list[ast.Call]] = {}  # id(scope) -> the calls evaluated in it
        _ScopeBuilder(self).build(tree)

    # -- names of callees -----------------------------------------------------------
    def canonical(self, node: ast.AST) -> str | None:
        """The dotted name of a callee with imports resolved and TensorFlow's Keras
        folded into `keras.` (`tf.keras.layers.Dense` -> `keras.layers.Dense`)."""
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        full = self.imports.get(head, head)
        name = f"{full}.{rest}" if rest else full
        for prefix in ("tensorflow.keras.", "tensorflow.python.keras.", "tf_keras.", "keras.src."):
            if name.startswith(prefix):
                return "keras." + name[len(prefix) :]
        return name

    def is_module(self, node: ast.AST) -> bool:
        """Is `node` an imported module or package name (`np`, `re`, `keras.utils`)?"""
        name = dotted(node)
        return name is not None and name.partition(".")[0] in self.imports

    # -- values ---------------------------------------------------------------------
    def value(self, node: ast.expr, scope: Scope | None = None) -> Value:
        """The value of `node` evaluated in `scope` (default: where it is written)."""
        return self._value(node, scope or self.scope_for(node), 0)

    def scope_for(self, node: ast.AST) -> Scope:
        return self.scope_of.get(id(node), self.module)

    def definition(self, node: ast.expr, scope: Scope | None = None) -> tuple[ast.expr, Scope]:
        """The expression a simple name stands for (followed through single
        assignments), with the scope it is written in; `node` itself otherwise."""
        scope = scope or self.scope_for(node)
        for _ in range(MAX_DEPTH):
            if not isinstance(node, ast.Name):
                break
            found = self._single(node.id, scope)
            if found is None:
                break
            node, scope = found
        return node, scope

    def _single(self, name: str, scope: Scope) -> tuple[ast.expr, Scope] | None:
        owner = scope.lookup(name)
        if owner is None or name in owner.params:
            return None
        bindings = owner.bindings[name]
        if len(bindings) != 1 or bindings[0].expr is None:
            return None
        expr = bindings[0].expr
        return expr, self.scope_of.get(id(expr), owner)

    def _value(self, node: ast.expr, scope: Scope, depth: int) -> Value:
        text = text_of(node)
        try:
            return Value(text, True, ast.literal_eval(node), "literal")
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        if depth > MAX_DEPTH:
            return Value(text, reason="nested or chained too deeply to follow")
        if isinstance(node, ast.Name):
            return self._name(node.id, scope, depth)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, scope, depth)
        if isinstance(node, ast.Tuple | ast.List):
            return self._sequence(node, scope, depth)
        if isinstance(node, ast.BinOp | ast.UnaryOp):
            return self._arithmetic(node, scope, depth)
        if isinstance(node, ast.Call):
            return self._call(node, scope, depth)
        return Value(text, reason=_dynamic_reason(node))

    def _name(self, name: str, scope: Scope, depth: int) -> Value:
        owner = scope.lookup(name)
        if owner is None:
            where = self.imports.get(name)
            why = f"imported from {where}" if where else f"{name} is not assigned in the script"
            return Value(name, reason=why)
        if name in owner.params:
            return Value(name, reason=f"{name} is a parameter of {owner.name}()")
        bindings = owner.bindings[name]
        values = []
        for binding in bindings:
            if binding.expr is None:
                return self._note(name, Value(name, reason=f"{name} is {binding.how}"))
            inner = self.scope_of.get(id(binding.expr), owner)
            values.append((binding, self._value(binding.expr, inner, depth + 1)))
        lines = ", ".join(str(b.line) for b, _ in values)
        first = values[0][1]
        if all(v.known for _, v in values) and all(_same(v.value, first.value) for _, v in values):
            origin = f"{name} (line {lines})"
            if first.origin not in (None, "literal"):
                origin += f" <- {first.origin}"
            return self._note(name, Value(name, True, first.value, origin))
        if len(values) > 1:
            reason = f"{name} is assigned {len(values)} times (lines {lines})"
        else:
            reason = f"{name} = {first.text} (line {lines}): {first.reason}"
        return self._note(name, Value(name, reason=reason))

    def _note(self, name: str, found: Value) -> Value:
        self.used.setdefault(name, found)
        return found

    def _attribute(self, node: ast.Attribute, scope: Scope, depth: int) -> Value:
        text = text_of(node)
        base = node.value
        if isinstance(base, ast.Name) and self._parsed_args(base, scope):
            option = self.options.get(node.attr)
            if option is None:
                return Value(text, reason=f"no command-line option sets {node.attr!r}")
            if option.default is None:
                return Value(text, reason=f"the command-line option {option.flag} has no default")
            default = self._value(option.default, self.module, depth + 1)
            if not default.known:
                return Value(text, reason=f"the default of {option.flag}: {default.reason}")
            converted = _convert(option.type_name, default.value)
            origin = (
                f"default of {option.flag} (line {option.line}; the command line may change it)"
            )
            return Value(text, True, converted, origin)
        return Value(text, reason=_dynamic_reason(node))

    def _parsed_args(self, base: ast.Name, scope: Scope) -> bool:
        found = self._single(base.id, scope)
        if found is None:
            return False
        expr = found[0]
        if isinstance(expr, ast.Subscript):  # parse_known_args()[0]
            expr = expr.value
        return (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr in ARGPARSE_PARSERS
        )

    def _sequence(self, node: ast.Tuple | ast.List, scope: Scope, depth: int) -> Value:
        items = [self._value(e, scope, depth + 1) for e in node.elts]
        missing = next((v for v in items if not v.known), None)
        if missing is not None:
            return Value(text_of(node), reason=f"{missing.text}: {missing.reason}")
        values = [v.value for v in items]
        value = tuple(values) if isinstance(node, ast.Tuple) else values
        return Value(text_of(node), True, value, "computed from literals")

    def _arithmetic(self, node: ast.BinOp | ast.UnaryOp, scope: Scope, depth: int) -> Value:
        text = text_of(node)
        operands = [node.left, node.right] if isinstance(node, ast.BinOp) else [node.operand]
        values = [self._value(o, scope, depth + 1) for o in operands]
        missing = next((v for v in values if not v.known), None)
        if missing is not None:
            return Value(text, reason=f"{missing.text}: {missing.reason}")
        numbers = [v.value for v in values]
        if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            return Value(text, reason="arithmetic on values that are not numbers")
        fn = (_BINARY if isinstance(node, ast.BinOp) else _UNARY).get(type(node.op))
        if fn is None or (isinstance(node.op, ast.Pow) and abs(numbers[1]) > 64):
            return Value(text, reason="an operation the scan does not evaluate")
        try:
            result = fn(*numbers)
        except (ArithmeticError, ValueError):
            return Value(text, reason="the arithmetic fails (e.g. a division by zero)")
        origin = ", ".join(v.origin for v in values if v.origin and v.origin != "literal")
        return Value(text, True, result, f"computed from {origin or 'literals'}")

    def _call(self, node: ast.Call, scope: Scope, depth: int) -> Value:
        text = text_of(node)
        name = dotted(node.func)
        convert = _CONVERSIONS.get(name or "")
        builtin = scope.lookup(name or "") is None  # not a function of the script
        if convert is not None and builtin and len(node.args) == 1 and not node.keywords:
            inner = self._value(node.args[0], scope, depth + 1)
            if not inner.known:
                return Value(text, reason=f"{inner.text}: {inner.reason}")
            try:
                return Value(text, True, convert(inner.value), inner.origin)
            except (TypeError, ValueError):
                return Value(text, reason=f"{name}() of {inner.text} fails")
        return Value(text, reason=f"the result of {name or 'a call'}() at run time")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))


def _convert(type_name: str | None, value: Any) -> Any:
    """What argparse makes of a string default given `type=int` / `type=float`."""
    convert = {"int": int, "float": float}.get(type_name or "")
    if convert is not None and isinstance(value, str):
        try:
            return convert(value)
        except ValueError:
            return value
    return value


def _dynamic_reason(node: ast.expr) -> str:
    """Why an expression's value is only known at run time."""
    if isinstance(node, ast.Subscript):
        return f"an item of {text_of(node.value)}, known at run time"
    if isinstance(node, ast.Attribute):
        return f"the attribute {node.attr!r} of {text_of(node.value)}, known at run time"
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return "a comprehension, evaluated at run time"
    if isinstance(node, ast.Lambda):
        return "a function (lambda)"
    if isinstance(node, ast.IfExp):
        return "a conditional expression, decided at run time"
    if isinstance(node, ast.JoinedStr):
        return "a formatted string, built at run time"
    return f"a {type(node).__name__} expression, evaluated at run time"


class _ScopeBuilder(ast.NodeVisitor):
    """Fills a `Resolver`: imports, bindings per scope, the scope of every node, and
    argparse options (`add_argument` calls)."""

    def __init__(self, resolver: Resolver) -> None:
        self.r = resolver
        self.stack = [resolver.module]

    def build(self, tree: ast.Module) -> None:
        self.visit(tree)

    @property
    def scope(self) -> Scope:
        return self.stack[-1]

    def generic_visit(self, node: ast.AST) -> None:
        self.r.scope_of[id(node)] = self.scope
        super().generic_visit(node)

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.r.imports[alias.asname] = alias.name
            else:
                head = alias.name.partition(".")[0]
                self.r.imports[head] = head
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name != "*":
                self.r.imports[alias.asname or alias.name] = f"{base}.{alias.name}".lstrip(".")
        self.generic_visit(node)

    # scopes
    def _enter(self, name: str, kind: str, body: Iterator[ast.AST]) -> None:
        scope = Scope(name, kind, self.scope)
        self.stack.append(scope)
        try:
            for child in body:
                self.visit(child)
        finally:
            self.stack.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.r.scope_of[id(node)] = self.scope
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        name = getattr(node, "name", "<lambda>")
        if not isinstance(node, ast.Lambda):
            self.scope.bind(name, Binding(node.lineno, None, f"the function {name}()"))
            for decorator in node.decorator_list:
                self.visit(decorator)
        scope = Scope(name, "function", self.scope)
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        scope.params.update(a.arg for a in every if a is not None)
        self.stack.append(scope)
        try:
            body = node.body if isinstance(node.body, list) else [node.body]
            for child in body:
                self.visit(child)
        finally:
            self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.r.scope_of[id(node)] = self.scope
        self.scope.bind(node.name, Binding(node.lineno, None, f"the class {node.name}"))
        for child in [*node.bases, *node.keywords, *node.decorator_list]:
            self.visit(child)
        self._enter(node.name, "class", iter(node.body))

    # bindings
    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind(target, node.value, node.lineno)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value, node.lineno)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            how = f"changed in place at line {node.lineno} ({text_of(node)})"
            self.scope.bind(node.target.id, Binding(node.lineno, None, how))
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind(node.target, node.value, node.lineno)
        self.generic_visit(node)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._unpaired(node.target, f"the loop variable at line {node.lineno}")
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            if item.optional_vars is not None:
                self._unpaired(item.optional_vars, f"set by `with` at line {node.lineno}")
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.scope.bind(node.name, Binding(node.lineno, None, "an exception"))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        self.r.calls.setdefault(id(self.scope), []).append(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            self._option(node)
        self.generic_visit(node)

    def _bind(self, target: ast.expr, value: ast.expr, line: int) -> None:
        if isinstance(target, ast.Name):
            self.scope.bind(target.id, Binding(line, value))
        elif isinstance(target, ast.Tuple | ast.List):
            paired = isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts)
            if paired and not any(isinstance(e, ast.Starred) for e in target.elts):
                for t, v in zip(target.elts, value.elts, strict=True):  # type: ignore[union-attr]
                    self._bind(t, v, line)
            else:
                self._unpaired(target, f"unpacked from {text_of(value)} (line {line})")

    def _unpaired(self, target: ast.expr, how: str) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                self.scope.bind(node.id, Binding(getattr(node, "lineno", 0), None, how))

    def _option(self, node: ast.Call) -> None:
        flags = [a.value for a in node.args if isinstance(a, ast.Constant)]
        flags = [f for f in flags if isinstance(f, str)]
        if not flags:
            return
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        longest = next((f for f in flags if f.startswith("--")), flags[0])
        dest = longest.lstrip("-").replace("-", "_")
        given = keywords.get("dest")
        if isinstance(given, ast.Constant) and isinstance(given.value, str):
            dest = given.value
        kind = keywords.get("type")
        type_name = kind.id if isinstance(kind, ast.Name) else None
        option = Option(longest, dest, keywords.get("default"), type_name, node.lineno)
        self.r.options.setdefault(dest, option)
