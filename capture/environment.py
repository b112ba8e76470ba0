"""Who and where: person, software, machine, environment and script (cached per process)."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from ..kb.identity import default_person
from . import redaction
from .facts import Environment, Machine, Script, Software

GIT_TIMEOUT_S = 2.0
NOT_SCRIPTS = frozenset({"ipykernel_launcher.py", "colab_kernel_launcher.py"})  # notebooks
# Environment variables left out of the Environment entity: shell and terminal noise
# that differs from one shell to the next and says nothing about the training.
NOISE_VARIABLES = frozenset(
    {
        "_",
        "COLUMNS",
        "DBUS_SESSION_BUS_ADDRESS",
        "HISTCONTROL",
        "HISTFILE",
        "HISTFILESIZE",
        "HISTSIZE",
        "LESSCLOSE",
        "LESSOPEN",
        "LINES",
        "LS_COLORS",
        "LSCOLORS",
        "MAIL",
        "OLDPWD",
        "PROMPT_COMMAND",
        "PS1",
        "PS2",
        "PS4",
        "PYTEST_CURRENT_TEST",
        "SHLVL",
        "SSH_CLIENT",
        "SSH_CONNECTION",
        "SSH_TTY",
        "TERM_SESSION_ID",
        "WINDOWID",
        "XDG_SESSION_ID",
    }
)
NOISE_PREFIXES = ("BASH_FUNC_",)  # exported shell functions
MAX_VARIABLE_CHARS = 4096  # longer values are cut (marked with a trailing "...")
PACKAGES_WAIT_S = 30.0  # how long `environment()` waits for the background read


def person_name(explicit: str | None = None) -> str:
    """The person: as given, else PROVKB_PERSON, else the OS user (`kb.identity`'s one rule)."""
    return default_person(explicit)


def command_line() -> str:
    """This process's command line, secrets redacted (`redaction.redact_argv`)."""
    return shlex.join(redaction.redact_argv([_utf8(a) for a in sys.argv]))


def _utf8(text: str) -> str:
    """`text` as valid UTF-8: bytes the OS gave undecoded (surrogate escapes) become
    U+FFFD, which the Bolt protocol would refuse otherwise."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


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


def variables(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """`NAME=value` of the environment variables (default: `os.environ`), sorted, without
    `NOISE_VARIABLES`, secrets redacted."""
    kept = {
        _utf8(name): _utf8(value)
        for name, value in (os.environ if environ is None else environ).items()
        if name not in NOISE_VARIABLES and not name.startswith(NOISE_PREFIXES)
    }
    redacted = sorted(redaction.redact_environ(kept).items())  # then cut: no token half-cut
    return tuple(f"{k}={_cut(v)}" for k, v in redacted)


def _cut(value: str) -> str:
    return value if len(value) <= MAX_VARIABLE_CHARS else value[:MAX_VARIABLE_CHARS] + "..."


def installed_distributions() -> tuple[str, ...]:
    """`name==version` of every installed distribution (`importlib.metadata`), sorted;
    a name installed twice counts as the first one on `sys.path`, as imports see it."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), f"{name}=={dist.version}")
    return tuple(found[key] for key in sorted(found))


class _Packages:
    """The installed distributions, read once per process in a background thread.

    Reading every distribution's metadata takes 0.1-0.5 s, so `prefetch()` starts it
    as soon as capture is set up and the training thread only waits for what is left."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.value: tuple[str, ...] | None = None

    def _fill(self) -> None:
        self.value = installed_distributions()

    def prefetch(self) -> None:
        with self.lock:
            if self.value is None and (self.thread is None or not self.thread.is_alive()):
                self.thread = threading.Thread(target=self._fill, name="provkb-packages")
                self.thread.daemon = True
                self.thread.start()

    def get(self) -> tuple[str, ...]:
        if self.value is None:
            self.prefetch()
            if self.thread is not None:
                self.thread.join(PACKAGES_WAIT_S)
        if self.value is None:  # the thread failed (or was lost to a fork): read here
            self._fill()
        assert self.value is not None
        return self.value

    def reset(self) -> None:  # in a forked child: the parent's thread is not ours
        self.lock = threading.Lock()
        self.thread = None


_packages = _Packages()
os.register_at_fork(after_in_child=_packages.reset)


def prefetch() -> None:
    """Start reading the installed distributions off the calling thread (once)."""
    _packages.prefetch()


@functools.cache
def environment() -> Environment:
    """Python, platform, every installed distribution and the environment variables
    (once per process)."""
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        os=_os(),
        cpu=_cpu(),
        gpus=_gpus(),
        packages=_packages.get(),
        variables=variables(),
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
