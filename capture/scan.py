"""Static extraction of a Keras training script, without running it (issue 17 §1).

`scan(path) -> ScanResult` reads the script with Python's `ast` (never imports or runs
it) and reports what it can tell: the datasets it loads (`load_digits`,
`keras.datasets.*.load_data`, `np.load`, `pd.read_csv`, `tf.data`, `image_dataset_from_
directory`...), each model with its layers in order (Sequential, functional, subclassed),
the `compile` arguments (optimizer class and its arguments, loss, metrics), the `fit`
arguments, the callbacks and seeds, and the constants those calls use. Every argument
is a `Value`, known (a literal, a name that leads to one, an argparse default) or not,
with the reason. A script with a syntax error gives the facts of its lines before the
error, and says so; nothing raises but an unreadable file (`ScanError`).

`ScanResult.planned()` is the plan: the facts a run can be compared with (epochs,
batch_size, optimizer, learning_rate, loss, metrics, layer count and classes).
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from ..errors import ScanError
from .scan_extract import Extractor
from .scan_facts import Call, Compile, DataLoad, Layer, ModelSpec, ScanResult, Unknown
from .scan_values import Value

UNREADABLE = "not Python source the scan can read"


def scan(path: str | Path) -> ScanResult:
    """The facts of the training script at `path` (read, never run); ScanError when
    the file cannot be read."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ScanError(f"cannot read the script {str(file)!r}: {exc.strerror or exc}") from exc
    return scan_source(data, str(file.resolve()))


def scan_source(data: bytes | str, path: str = "<script>") -> ScanResult:
    """`scan` of a script's content (bytes as stored: their sha256 names the version)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    result = ScanResult(path, hashlib.sha256(raw).hexdigest())
    text = raw.decode("utf-8", "replace")
    result.lines = result.lines_scanned = len(text.splitlines())
    tree = _parse(raw, text, result)
    if tree is not None:
        try:
            Extractor(tree, result).run()
        except RecursionError:  # a syntax tree deeper than Python's recursion limit
            result.notes.append(
                "the script nests expressions too deeply to be read whole: "
                "what is listed was found before the scan had to stop"
            )
    _conclude(result)
    return result


def _parse(raw: bytes, text: str, result: ScanResult) -> ast.Module | None:
    """The syntax tree; on a syntax error that of the longest top-level prefix that
    parses (recorded in `result`: `parsed` False, the error, `lines_scanned`)."""
    try:
        return ast.parse(raw)
    except SyntaxError as exc:
        where = f"line {exc.lineno}, column {exc.offset}: " if exc.lineno else ""
        result.error = f"{where}{exc.msg}"
        bad = exc.lineno or result.lines
    except (ValueError, RecursionError, MemoryError) as exc:
        result.error = f"{UNREADABLE}: {exc}"
        bad = result.lines
    result.parsed = False
    lines = text.splitlines()
    starts = [i for i in range(min(bad, len(lines))) if lines[i][:1] not in ("", " ", "\t", "#")]
    for end in reversed(starts[-200:]):  # cut before a top-level statement that starts there
        try:
            tree = ast.parse("\n".join(lines[:end]))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        result.lines_scanned = end
        return tree
    result.lines_scanned = 0
    return None


def _conclude(result: ScanResult) -> None:
    """Notes on what is missing or ambiguous."""
    if not result.parsed:
        error = result.error or ""
        what = error if error.startswith(UNREADABLE) else f"syntax error ({error})"
        scanned = result.lines_scanned
        told = f"only lines 1-{scanned} (before the error) were scanned" if scanned else ""
        result.notes.insert(0, f"{what}: {told or 'nothing could be scanned'}")
    if not result.models:
        result.notes.append(
            "no model found (no keras.Sequential, keras.Model, subclass of keras.Model "
            "or keras.applications model)"
        )
    if not result.compiles:
        result.notes.append("no compile() call found: optimizer, loss and metrics unknown")
    if not result.fits:
        result.notes.append("no fit() call found: epochs and batch size unknown")
    if not result.datasets:
        result.notes.append("no dataset loading call found")
    for what, items in (("models", result.models), ("fit() calls", result.fits)):
        if len(items) > 1:
            result.notes.append(
                f"{len(items)} {what}: the plan uses the first (line {items[0].line})"
            )


__all__ = [
    "Call",
    "Compile",
    "DataLoad",
    "Layer",
    "ModelSpec",
    "ScanResult",
    "Unknown",
    "Value",
    "scan",
    "scan_source",
]
