"""ProvKB: W3C PROV provenance of deep-learning training, as a property graph.

    import provkb
    model.fit(x, y, callbacks=[provkb.ProvenanceCallback(experiment="digits")])

Names are loaded on first use, so `import provkb` stays cheap (no TensorFlow).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ProvenanceCallback": "provkb.capture.callback",
    "autolog": "provkb.capture.autolog",
    "Store": "provkb.kb.store",
    "KnowledgeBase": "provkb.knowledge_base",
    "Settings": "provkb.config",
    "resolve_settings": "provkb.config",
    "ProvKBError": "provkb.errors",
    "Study": "provkb.capture.study",
    "steer": "provkb.kb.steering",
    "Steerable": "provkb.capture.steerable",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'provkb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
