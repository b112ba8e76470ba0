"""Measure the checkout the benchmarks live in, whatever `provkb` the environment installed.

The repository root *is* the `provkb` package (see pyproject's package-dir). When the
installed `provkb` points elsewhere (another checkout installed editable), a symlink
`provkb -> <this checkout>` in a private folder is put first on `sys.path` and on
`PYTHONPATH`, so this process, the training subprocesses and the embedded server all
run this checkout's code. Nothing happens when `provkb` already resolves here, or
when it was imported before (e.g. by a test session).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _resolves_here() -> bool:
    try:
        spec = importlib.util.find_spec("provkb")
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False
    return Path(spec.origin).resolve().parent == ROOT


def use_this_checkout() -> None:
    """Make `import provkb` (here and in child processes) load this checkout."""
    if "provkb" in sys.modules or not (ROOT / "__init__.py").is_file() or _resolves_here():
        return
    folder = Path(tempfile.mkdtemp(prefix="provkb-bench-path-"))
    (folder / "provkb").symlink_to(ROOT, target_is_directory=True)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    sys.path.insert(0, str(folder))
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(folder) + (os.pathsep + previous if previous else "")
    importlib.invalidate_caches()
