"""Who and when: the one clock text and the one default person of every record.

`default_person` is the person a record names when none is given, by one rule:
the argument, else `PROVKB_PERSON`, else the OS user (`getpass.getuser()`, which
honours `$LOGNAME`/`$USER`), else `unknown`. `os_user` is different: the account the
process really runs as (its real uid's name), recorded beside a claimed person.
"""

from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime

PERSON_ENV = "PROVKB_PERSON"
UNKNOWN_PERSON = "unknown"


def now_iso() -> str:
    """The current UTC time as ISO 8601 text, always with microseconds (so texts sort)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_person(person: str | None = None) -> str:
    """`person`, else `PROVKB_PERSON`, else the OS user, else `unknown`."""
    if person:
        return person
    from_env = os.environ.get(PERSON_ENV, "").strip()
    if from_env:
        return from_env
    try:
        return getpass.getuser() or UNKNOWN_PERSON
    except Exception:  # no user name in this environment
        return UNKNOWN_PERSON


def os_user() -> str:
    """The OS account of this process (its real uid's name: not what $USER claims)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):  # no password database (e.g. Windows)
        try:
            return getpass.getuser()
        except Exception:
            return f"uid:{os.getuid()}" if hasattr(os, "getuid") else UNKNOWN_PERSON


def host_name() -> str:
    """This machine's host name."""
    try:
        return socket.gethostname()
    except OSError:
        return "unknown"
