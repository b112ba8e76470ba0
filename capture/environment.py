"""Who and where: person, software, machine, environment and script (cached per process)."""

from __future__ import annotations

import functools
import getpass
import hashlib
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .facts import Environment, Machine, Script, Software

GIT_TIMEOUT_S = 2.0
NOT_SCRIPTS = frozenset({"ipykernel_launcher.py", "colab_kernel_launcher.py"})  # notebooks
RELEVANT_PACKAGES = (
    "keras",
    "tensorflow",
    "tensorflow-cpu",
    "tf-keras",
    "jax",
    "jaxlib",
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "h5py",
    "ml-dtypes",
    "neo4j",
    "provkb",
)


def person_name(explicit: str | None = None) -> str:
    """The person: as given, else the OS user."""
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in sys.argv)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _os() -> str:
    return f"{platform.system()} {platform.release()}".strip()


@functools.cache
def _gpus() -> tuple[str, ...]:
    """GPUs the active backend sees (only backends already imported are asked)."""
    try:
        if "tensorflow" in sys.modules:
            tf = sys.modules["tensorflow"]
            return tuple(d.name for d in tf.config.list_physical_devices("GPU"))
        if "jax" in sys.modules:
            jax = sys.modules["jax"]
            return tuple(str(d) for d in jax.devices() if d.platform == "gpu")
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            if torch.cuda.is_available():
                count = torch.cuda.device_count()
                return tuple(torch.cuda.get_device_name(i) for i in range(count))
    except Exception:
        pass
    return ()


@functools.cache
def software() -> Software:
    """Keras, its backend and ProvKB's versions."""
    import keras

    from .. import __version__ as provkb_version

    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    backend_version = getattr(sys.modules.get(module), "__version__", None) or _version(module)
    return Software(keras.__version__, backend, backend_version, provkb_version)


@functools.cache
def machine() -> Machine:
    return Machine(socket.gethostname(), _os(), _cpu(), os.cpu_count(), _gpus())


@functools.cache
def environment() -> Environment:
    """Python, platform and the versions of the packages that matter for training."""
    packages = tuple(
        f"{name}=={version}" for name in RELEVANT_PACKAGES if (version := _version(name))
    )
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        os=_os(),
        cpu=_cpu(),
        gpus=_gpus(),
        packages=packages,
    )


def script_path() -> Path | None:
    """The running script: `__main__.__file__`, else `sys.argv[0]`, when it is a file."""
    main = sys.modules.get("__main__")
    for candidate in (getattr(main, "__file__", None), sys.argv[0] if sys.argv else None):
        if candidate:
            path = Path(candidate)
            if path.is_file() and path.name not in NOT_SCRIPTS:
                return path.resolve()
    return None


def script() -> Script | None:
    path = script_path()
    return _script(str(path)) if path else None


@functools.cache
def _script(path: str) -> Script | None:
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
    folder = str(Path(path).parent)
    commit = _git(folder, "rev-parse", "HEAD")
    dirty = None
    if commit:
        status = _git(folder, "status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    return Script(path, digest, commit, dirty)


def _git(folder: str, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
