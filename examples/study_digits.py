"""A steerable study on scikit-learn's digits, steered from a second process.

    python examples/study_digits.py --self-steer-at 10

The study's learning-rate interval starts poor: SGD with tiny learning rates
[0.0005, 0.0025, 0.0005] x batch sizes {32, 64} x seeds {0, 1} = 20 items, gain =
validation accuracy (best epoch). With `--self-steer-at N`, during iteration N a second
process runs

    provkb study respace NAME --range learning_rate=0.05:0.25:0.05 --reason ...

which replaces every pending item by the new interval's combinations; the edit takes
effect from iteration N + 1 (the shape of the DL-Steer case study). At the end the
iteration gains are printed with their moving average, then the lineage queries that
name the edit as the action preceding the gain rise.
Without `--self-steer-at`, steer it yourself from another terminal while it runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

POOR_SPACE = {
    "learning_rate": [0.0005, 0.0025, 0.0005],
    "batch_size": [32, 64],
    "seed": [0, 1],
}
GOOD_RANGE = "learning_rate=0.05:0.25:0.05"


def load_digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    return train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store", help="embedded store folder (default: $PROVKB_HOME or ./.provkb)"
    )
    parser.add_argument(
        "--name", help="study name (default: digits-<time>; an existing one resumes)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="epochs per iteration")
    parser.add_argument("--k", type=int, default=5, help="moving-average window (iterations)")
    parser.add_argument(
        "--self-steer-at",
        type=int,
        metavar="N",
        help="during iteration N, a second process moves the learning-rate interval",
    )
    parser.add_argument("--max-iterations", type=int, help="stop after this many iterations")
    args = parser.parse_args(argv)

    import keras

    import provkb

    name = args.name or f"digits-{datetime.now():%Y%m%d-%H%M%S}"
    x_train, x_val, y_train, y_val = load_digits_split()
    store_args = ["--store", args.store] if args.store else []
    study = provkb.Study(
        name, POOR_SPACE, gain="val_accuracy", mode="max", k=args.k, store=args.store,
        person="trainer",
    )  # fmt: skip
    print(f"study {name}: {len(study.pending())} pending items, gain = best val_accuracy")
    started = time.monotonic()

    def train(params: dict, callbacks: list):
        steer = None
        if args.self_steer_at and study.iteration == args.self_steer_at:
            command = [sys.executable, "-m", "provkb", "study", "respace", name,
                       "--range", GOOD_RANGE, "--person", "steerer", "--reason",
                       "gain flat: learning rates far too small", *store_args]  # fmt: skip
            print(f"  [iteration {study.iteration}] second process: provkb study respace "
                  f"{name} --range {GOOD_RANGE} ...")  # fmt: skip
            steer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)  # fmt: skip
        keras.utils.set_random_seed(int(params["seed"]))
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=params["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = model.fit(
            x_train, y_train,
            validation_data=(x_val, y_val),
            epochs=args.epochs,
            batch_size=int(params["batch_size"]),
            callbacks=callbacks,
            verbose=0,
        )  # fmt: skip
        best = max(history.history["val_accuracy"])
        print(f"  iteration {study.iteration:>2}: {params} -> val_accuracy {best:.3f}")
        if steer is not None:  # the edit lands before the next iteration is claimed
            out, _ = steer.communicate(timeout=120)
            print("    " + out.strip().replace("\n", "\n    "))
        return history

    summary = study.run(train, max_iterations=args.max_iterations)
    elapsed = time.monotonic() - started

    edits = {e["iteration"] + 1: e for e in study.edits()}
    print(f"\niterations of {name} (gain = best val_accuracy, moving average of {args.k}):")
    for it in study.history():
        mark = ""
        if it.iteration in edits:
            e = edits[it.iteration]
            mark = f"   <- {e['action']} by {e['person']}: {e['before']} -> {e['after']}"
        gain = "failed" if it.gain is None else f"{it.gain:.3f}"
        lr, bs = it.params["learning_rate"], it.params["batch_size"]
        average = "" if it.moving_average is None else f"{it.moving_average:.3f}"
        print(f"  {it.iteration:>3}  lr={lr:<7g} bs={bs:<3} gain {gain}  avg {average}{mark}")
    print(f"\n{summary}\n{summary.iterations} iterations in {elapsed:.0f} s")

    commands = [
        [
            "query",
            "gain-changes",
            "-p",
            f"study={name}",
            "-p",
            f"k={args.k}",
            "-p",
            "threshold=0.2",
        ],
        ["query", "steering-impact", "-p", f"study={name}", "-p", f"k={args.k}"],
    ]
    from provkb.queries.registry import QUERIES

    for command in commands:
        shown = " ".join(["provkb", *command, *store_args])
        print(f"\n$ {shown}")
        if command[1] in QUERIES:
            subprocess.run([sys.executable, "-m", "provkb", *command, *store_args], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
