"""Qualified names (`provkb:<path>`) of the nodes capture writes (docs/graph-model.md)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from ..ontology import PROVKB_PREFIX

# A longer segment is shortened: ids are indexed, and Neo4j indexes at most 8 KB a key.
MAX_SEGMENT = 256
_SHORT_HEAD = 64  # characters of the escaped start a shortened segment keeps


def _seg(text: object) -> str:
    """One path segment: names are data, so anything but `[A-Za-z0-9-_.~]` is escaped;
    an escaped name over `MAX_SEGMENT` characters becomes its first characters, `~` and
    its sha256 (the node keeps the whole name in a property, e.g. `name`)."""
    name = str(text)
    segment = quote(name, safe="-_.~")
    if len(segment) <= MAX_SEGMENT:
        return segment
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    head = ""
    for char in name:
        longer = head + quote(char, safe="-_.")
        if len(longer) > _SHORT_HEAD:
            break
        head = longer
    return f"{head}~{digest}"


def _q(path: str) -> str:
    return f"{PROVKB_PREFIX}:{path}"


def project(name: str) -> str:
    return _q(f"project/{_seg(name)}")


def experiment(name: str) -> str:
    return _q(f"experiment/{_seg(name)}")


def run(run_id: str) -> str:
    return _q(f"run/{run_id}")


def person(name: str) -> str:
    return _q(f"person/{_seg(name)}")


def software(version: str, backend: str) -> str:
    return _q(f"software/keras-{_seg(version)}-{_seg(backend)}")


def machine(hostname: str) -> str:
    return _q(f"machine/{_seg(hostname)}")


def callback_agent(class_name: str) -> str:
    return _q(f"software/callback/{_seg(class_name)}")


def plan(run_id: str) -> str:
    return f"{run(run_id)}/plan"


def hyperparameter(run_id: str, name: str, version: int) -> str:
    return f"{run(run_id)}/hp/{_seg(name)}/v{version}"


def dataset(fingerprint: str) -> str:
    return _q(f"dataset/{fingerprint}")


def model(run_id: str) -> str:
    return f"{run(run_id)}/model"


def layer(run_id: str, index: int) -> str:
    return f"{model(run_id)}/layer/{index}"


def script(sha256: str) -> str:
    return _q(f"script/{sha256}")


def environment(sha256: str) -> str:
    return _q(f"environment/{sha256}")


def epoch(run_id: str, n: int) -> str:
    return f"{run(run_id)}/epoch/{n}"


def epoch_metrics(run_id: str, n: int) -> str:
    return f"{epoch(run_id, n)}/metrics"


def adaptation(run_id: str, n: int, hp_name: str) -> str:
    return f"{run(run_id)}/adaptation/{n}/{_seg(hp_name)}"


def steering_action(run_id: str, request_id: str) -> str:
    return f"{run(run_id)}/steering/{_seg(request_id)}"


def early_stop(run_id: str) -> str:
    return f"{run(run_id)}/adaptation/early-stopping"


def evaluation(run_id: str, k: int) -> str:
    return f"{run(run_id)}/evaluation/{k}"


def evaluation_metrics(run_id: str, k: int) -> str:
    return f"{evaluation(run_id, k)}/metrics"
