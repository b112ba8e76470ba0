"""Qualified names (`provkb:<path>`) of the nodes capture writes (docs/graph-model.md)."""

from __future__ import annotations

from ..ontology import PROVKB_PREFIX
from ..ontology.ids import MAX_SEGMENT as MAX_SEGMENT
from ..ontology.ids import person as person
from ..ontology.ids import segment as _seg


def _q(path: str) -> str:
    return f"{PROVKB_PREFIX}:{path}"


def project(name: str) -> str:
    return _q(f"project/{_seg(name)}")


def experiment(name: str) -> str:
    return _q(f"experiment/{_seg(name)}")


def run(run_id: str) -> str:
    return _q(f"run/{run_id}")


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
