"""Capture must never break training: hooks swallow their own errors (warned once).

Strict mode (`PROVKB_STRICT=1`, what the test suite sets) re-raises them instead, so a
crash inside a hook fails the test that caused it, as MLflow's autologging re-raises
under `is_testing()`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("provkb")

F = TypeVar("F", bound=Callable[..., Any])
STRICT_ENV = "PROVKB_STRICT"
_OFF = ("", "0", "false", "no", "off")


def strict() -> bool:
    """Whether capture re-raises what it would swallow (`PROVKB_STRICT`, read each time)."""
    return os.environ.get(STRICT_ENV, "").strip().lower() not in _OFF


class WarnOnce:
    """Logs the first problem as a warning and the following ones at debug level."""

    def __init__(self) -> None:
        self.warned = False

    def __call__(self, message: str, *args: Any, exc: BaseException | None = None) -> None:
        if not self.warned:
            self.warned = True
            log.warning(message, *args)
            if exc is not None:
                log.debug("provkb: details", exc_info=exc)
        else:
            log.debug(message, *args, exc_info=exc)


def swallow(warn: Callable[..., None], message: str, *args: Any, exc: BaseException) -> None:
    """Report a swallowed `exc` through `warn`; in strict mode re-raise it instead.

    Call it inside the `except` block that caught `exc`."""
    if strict():
        raise exc
    try:
        warn(message, *args, exc=exc)
    except Exception:  # reporting must not break training either
        log.debug("provkb: could not report a capture problem", exc_info=True)


def guarded(method: F) -> F:
    """Run a hook; any exception is reported through `self._warn` and swallowed
    (re-raised in strict mode).

    The time spent in the outermost guarded call is added to `self.hook_seconds`: what
    capture costs the training thread."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = not getattr(self, "_in_hook", False)
        started = time.perf_counter()
        self._in_hook = True
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            swallow(
                self._warn,
                "provkb: capture failed in %s (%s: %s); training continues, "
                "provenance may be incomplete",
                method.__name__,
                type(exc).__name__,
                exc,
                exc=exc,
            )
            return None
        finally:
            if outer:
                self._in_hook = False
                self.hook_seconds = getattr(self, "hook_seconds", 0.0) + (
                    time.perf_counter() - started
                )

    return wrapper  # type: ignore[return-value]
