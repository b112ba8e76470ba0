"""`provkb demo`: three real Keras trainings on scikit-learn's digits, captured live.

One run uses SGD with a step-decay LearningRateScheduler, one Adam with
ReduceLROnPlateau, one RMSprop with EarlyStopping; each is evaluated on a held-out
split. Everything goes into the (embedded, by default) store, then the demo prints a
runs summary, the answer of `seed-q1` and the lineage of the best model.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .config import resolve_settings
from .knowledge_base import KnowledgeBase

DEMO_EXPERIMENT = "digits-optimizers"
DEMO_PROJECT = "provkb-demo"
INITIAL_LR = 0.01


@dataclass
class DemoResult:
    """What the demo did: run ids by name, the best run, timings."""

    runs: dict[str, str] = field(default_factory=dict)
    best_run: str | None = None
    seconds: float = 0.0
    store_home: Path | None = None


def _load_digits(seed: int):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest
    )
    return (x_train, y_train), (x_val, y_val), (np.asarray(x_test), np.asarray(y_test))


def _step_decay(epoch: int, lr: float) -> float:
    """Halve the learning rate every 3 epochs (Keras-Prov's StepDecay)."""
    return lr * 0.5 if epoch > 0 and epoch % 3 == 0 else lr


def _configurations(keras) -> list[tuple[str, Any, list]]:
    return [
        (
            "sgd-step-decay",
            keras.optimizers.SGD(learning_rate=INITIAL_LR, momentum=0.9),
            [keras.callbacks.LearningRateScheduler(_step_decay)],
        ),
        (
            "adam-plateau",
            keras.optimizers.Adam(learning_rate=INITIAL_LR),
            [
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss", factor=0.5, patience=1, min_lr=1e-4
                )
            ],
        ),
        (
            "rmsprop-early-stop",
            keras.optimizers.RMSprop(learning_rate=INITIAL_LR),
            # stops once val_loss gains less than 0.05 for 2 epochs (about epoch 7 of 10),
            # keeping the best epoch's weights: the demo shows an early-stopping adaptation
            [
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=2, min_delta=0.05, restore_best_weights=True
                )
            ],
        ),
    ]


def _build_model(keras):
    return keras.Sequential(
        [
            keras.Input(shape=(64,), name="pixels"),
            keras.layers.Dense(64, activation="relu", name="hidden_1"),
            keras.layers.Dropout(0.2, name="dropout"),
            keras.layers.Dense(32, activation="relu", name="hidden_2"),
            keras.layers.Dense(10, activation="softmax", name="digit"),
        ],
        name="digits_mlp",
    )


def run_demo(
    store: str | os.PathLike | None = None,
    epochs: int = 10,
    console: Console | None = None,
    seed: int = 7,
) -> DemoResult:
    """Train, capture, and print what the knowledge base now answers."""
    console = console or Console()
    started = time.monotonic()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from .capture.callback import ProvenanceCallback

    kb = KnowledgeBase(store)
    settings = kb.settings
    console.print(f"[bold]ProvKB demo[/] - knowledge base: {settings.describe()}")
    console.print(f"  connected ({kb.engine}) in {time.monotonic() - started:.1f} s")

    import keras

    keras.utils.set_random_seed(seed)
    train, val, test = _load_digits(seed)
    result = DemoResult(store_home=settings.home if settings.embedded else None)
    progress = Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        TextColumn("epoch {task.completed:>2.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    best = (None, -1.0)
    with progress:
        for name, optimizer, extra_callbacks in _configurations(keras):
            task = progress.add_task(name, total=epochs, status="")
            model = _build_model(keras)
            model.compile(
                optimizer=optimizer,
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            capture = ProvenanceCallback(
                experiment=DEMO_EXPERIMENT,
                project=DEMO_PROJECT,
                run_name=name,
                store=kb.store,
                hyperparameters={"model": "digits_mlp", "seed": seed},
                datasets={
                    "train": "digits-train",
                    "validation": "digits-val",
                    "test": "digits-test",
                },
            )
            show = keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs, task=task: progress.update(
                    task,
                    completed=epoch + 1,
                    status=f"val_acc {logs.get('val_accuracy', 0):.3f}",
                )
            )
            model.fit(
                train[0],
                train[1],
                validation_data=val,
                epochs=epochs,
                batch_size=64,
                verbose=0,
                callbacks=[*extra_callbacks, capture, show],
            )
            scores = model.evaluate(
                test[0], test[1], verbose=0, callbacks=[capture], return_dict=True
            )
            capture.writer.flush()
            progress.update(task, status=f"test_acc {scores['accuracy']:.3f}")
            result.runs[name] = capture.run_id
            if scores["accuracy"] > best[1]:
                best = (capture.run_id, scores["accuracy"])
    result.best_run = best[0]
    result.seconds = time.monotonic() - started
    _report(kb, result, epochs, console)
    kb.close()
    return result


def _report(kb: KnowledgeBase, result: DemoResult, epochs: int, console: Console) -> None:
    from .cli_options import OutputFormat, print_rows
    from .queries.app import EXAMPLE_ADAPTATIONS

    console.print("\n[bold]Runs[/] (provkb query runs)")
    runs = kb.query("runs", experiment=DEMO_EXPERIMENT, limit=20)
    shown = ["runId", "name", "status", "optimizer", "learning_rate", "epochsCompleted"]
    shown += ["val_loss", "val_accuracy", "best_val_accuracy"]
    print_rows([c for c in shown if c in runs.columns], runs.rows, OutputFormat.table)

    console.print(
        f"\n[bold]seed-q1[/]: loss and val_loss at epoch {epochs} per optimizer, runs with "
        f"initial learning rate {INITIAL_LR}"
    )
    q1 = kb.query("seed-q1", epoch=epochs, learning_rate=INITIAL_LR)
    print_rows(q1.columns, q1.rows, OutputFormat.table)

    console.print(f"\n[bold]lineage[/] of the best model (run {result.best_run}), by kind")
    lineage = kb.query("lineage", run=result.best_run)
    print_rows(*_lineage_summary(lineage.rows), OutputFormat.table)

    default_home = resolve_settings().home
    store_flag = (
        f" --store {result.store_home}"
        if result.store_home and result.store_home != default_home
        else ""
    )
    console.print(
        f"\n[bold green]Done in {result.seconds:.0f} s.[/] Next:\n"
        f"  provkb query --list{store_flag}\n"
        f"  provkb query epochs -p run={result.best_run}{store_flag}\n"
        f"  provkb query hyperparameters-at -p run={result.runs.get('sgd-step-decay')} "
        f"-p epoch=7{store_flag}\n"
        f'  provkb cypher "{EXAMPLE_ADAPTATIONS}"{store_flag}\n'
        f"  provkb export --run {result.best_run} -o best-run.ttl{store_flag}\n"
        f"  provkb export --run {result.best_run} -o best-run.svg{store_flag}\n"
        f"  provkb ui{store_flag}                # the app: curves, lineage, steering\n"
        f"  provkb server stop{store_flag}"
    )


def _lineage_summary(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Lineage rows grouped by PROV kind and label: how many, and a few names."""
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        key = (row.get("kind") or "", row.get("label") or "")
        name = row.get("name")
        value = row.get("value")
        shown = f"{name}={value}" if name is not None and value is not None else str(name or "")
        groups.setdefault(key, []).append(shown)
    summary = [
        {
            "kind": kind,
            "label": label,
            "count": len(names),
            "examples": ", ".join(sorted(n for n in names if n)[:4])
            + (" ..." if len(names) > 4 else ""),
        }
        for (kind, label), names in sorted(groups.items())
    ]
    return ["kind", "label", "count", "examples"], summary
