"""The store folder is private: folders 0700, files 0600, for whatever creates them.

ProvKB's own files are opened with `private_opener` (mode 0600 whatever the umask);
the embedded server process sets `PRIVATE_UMASK` before its JVM starts, so the
engine's databases and logs are private too. `secure_store` makes a store folder
private on its first use in a process, tightening what an older version (or another
tool) left open, with one notice.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077  # group and others get nothing

log = logging.getLogger("provkb")
_lock = threading.Lock()
_secured: set[Path] = set()


def private_opener(path: str | os.PathLike, flags: int) -> int:
    """`open(..., opener=private_opener)`: a file created with mode 0600."""
    return os.open(path, flags, FILE_MODE)


def private_folder(folder: Path) -> Path:
    """Create `folder` (0700) inside its store folder `folder.parent`, secured first."""
    secure_store(folder.parent)
    folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
    return folder


def secure_store(home: Path) -> Path:
    """Create the store folder `home` (0700), or tighten an existing one: every folder
    in it to 0700 and every file to 0600 at most (group and other bits removed).
    Once per folder and process; says once what it changed."""
    home = Path(home)
    with _lock:
        if home in _secured:
            return home
        if not home.exists():
            home.parent.mkdir(parents=True, exist_ok=True)
            home.mkdir(mode=FOLDER_MODE, exist_ok=True)
        changed, failed = _tighten(home)
        _secured.add(home)
    if changed:
        log.warning(
            "provkb: the store folder %s was readable by other users; made it private "
            "(folders 0700, files 0600; %d changed)",
            home,
            changed,
        )
    if failed:
        log.warning(
            "provkb: could not make %d entries of the store folder %s private (not "
            "yours?), e.g. %s",
            len(failed),
            home,
            failed[0],
        )
    return home


def _tighten(home: Path) -> tuple[int, list[str]]:
    """Remove group and other permissions under `home` (symlinks are left alone)."""
    changed, failed = 0, []
    for folder, _, files in os.walk(home):
        for path in (folder, *(os.path.join(folder, f) for f in files)):
            try:
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode) or not mode & PRIVATE_UMASK:
                    continue
                os.chmod(path, stat.S_IMODE(mode) & ~PRIVATE_UMASK)
                changed += 1
            except FileNotFoundError:  # removed meanwhile
                continue
            except OSError:
                failed.append(path)
    return changed, failed
