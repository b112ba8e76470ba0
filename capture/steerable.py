"""A value of the training script that a person may change while training runs.

    augment = provkb.Steerable("augment_strength", 0.1)
    model.fit(..., callbacks=[ProvenanceCallback(steerable={"augment_strength": augment})])
    # in a data pipeline or a custom callback, read it each time it is needed:
    strength = augment.value

`provkb steer RUN --set augment_strength=0.3` then changes `.value` at the next epoch
boundary (from the training thread), and the change is recorded as provenance.
"""

from __future__ import annotations

import threading
from typing import Any


class Steerable:
    """A named value user code reads (`.value`) and steering requests set.

    Thread-safe: `.value` may be read from any thread (e.g. a `tf.data` or
    `keras.utils.PyDataset` worker) while the training thread sets it.
    `history` lists the values it took, oldest first, with the epoch each took
    effect from (None for the initial value and for changes made outside steering).
    """

    def __init__(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a Steerable needs a non-empty name")
        self.name = name
        self._lock = threading.Lock()
        self._value = value
        self._history: list[tuple[Any, int | None]] = [(value, None)]

    @property
    def value(self) -> Any:
        with self._lock:
            return self._value

    @value.setter
    def value(self, new: Any) -> None:
        self.set(new)

    def set(self, new: Any, from_epoch: int | None = None) -> None:
        """Change the value (steering passes the first epoch that uses it)."""
        with self._lock:
            self._value = new
            self._history.append((new, from_epoch))

    @property
    def history(self) -> list[tuple[Any, int | None]]:
        with self._lock:
            return list(self._history)

    def __repr__(self) -> str:
        return f"Steerable({self.name!r}, {self.value!r})"
