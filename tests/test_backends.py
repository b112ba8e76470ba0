"""Capture, autolog, adaptations and steering (learning rate and stop) on each Keras
backend: TensorFlow and JAX, one child process per backend (the backend is chosen when
Keras is imported; tests/backend_child.py), on both engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import one, query_rows, rows, store_child_env, unique

from provkb import ontology as o
from provkb.kb.store import Store

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("backend_child.py")
LR, STEERED_LR = 0.01, 0.003


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_capture_and_steering_on_each_backend(store: Store, backend: str) -> None:
    experiment = unique(f"backend-{backend}")
    env, store_args = store_child_env(store)
    env = {**env, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHILD.parent), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(CHILD), experiment, *store_args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    steered, autologged = out["steered"], out["autologged"]
    used = {int(k): v for k, v in out["used"].items()}
    # the software agent says which backend ran
    agent = one(
        store,
        f"MATCH (:{o.TRAINING_RUN.label} {{runId: $r}})-[:{o.WAS_ASSOCIATED_WITH.rel_type}]->"
        f"(s:{o.SOFTWARE_AGENT.label} {{name: 'keras'}}) RETURN s.{o.Prop.BACKEND}",
        r=steered,
    )
    assert agent == backend
    # steering: the learning rate from epoch 4 on (the schedule paused), stop after epoch 5
    run = one(store, f"MATCH (r:{o.TRAINING_RUN.label} {{runId: $r}}) RETURN r", r=steered)
    assert (run["status"], run[o.Prop.STOPPED_EPOCH]) == (o.RunStatus.STOPPED, 5)
    assert sorted(used) == [1, 2, 3, 4, 5]
    for n, lr in used.items():
        assert lr == pytest.approx(LR * 0.9 ** (n - 1) if n <= 3 else STEERED_LR, rel=1e-6)
        at = {r["name"]: r for r in query_rows(store, "hyperparameters-at", run=steered, epoch=n)}
        assert at["learning_rate"]["value"] == pytest.approx(lr, rel=1e-6)
        source = "optimizer" if n == 1 else "adaptation" if n <= 3 else "steering"
        assert at["learning_rate"]["source"] == source
    # autolog: the run, its adaptations (a reduction after the last epoch, the early
    # stop with its plan) and the evaluation
    auto = one(store, f"MATCH (r:{o.TRAINING_RUN.label} {{runId: $r}}) RETURN r", r=autologged)
    assert (auto["status"], auto[o.Prop.STOPPED_EPOCH]) == (o.RunStatus.STOPPED_EARLY, 2)
    kinds = rows(
        store,
        f"MATCH (a:{o.ADAPTATION.label} {{runId: $r}})-[w:{o.WAS_ASSOCIATED_WITH.rel_type}]->(g) "
        f"RETURN a.kind AS kind, a.{o.Prop.AFTER_TRAINING} AS after, g.name AS agent, "
        f"w.{o.Prop.PLAN} IS NOT NULL AS planned ORDER BY kind",
        r=autologged,
    )
    assert kinds == [
        {"kind": "early_stopping", "after": None, "agent": "EarlyStopping", "planned": True},
        {"kind": "schedule", "after": True, "agent": "ReduceLROnPlateau", "planned": True},
    ]
    evaluations = one(
        store,
        f"MATCH (e:{o.EVALUATION.label} {{runId: $r}}) RETURN count(e)",
        r=autologged,
    )
    assert evaluations == 1
