"""A run whose learning rate a person lowers from another process while it trains.

    python examples/steer_learning_rate.py --self-steer-at 8

Trains an MLP on scikit-learn's digits with Adam at a learning rate of 0.01 for 20
epochs (each epoch paced to about 1.5 s, so there is time to steer by hand) and prints
the run id. While it runs, from another terminal:

    provkb steer RUN --set learning_rate=0.001 --reason "loss plateau"

The training applies the request at its next epoch end and records it as a
SteeringAction of the person who asked, linked to the metrics they had seen and to the
old and new learning-rate values (the new one a revision of the old). With
`--self-steer-at N` the script runs that command itself, as a separate process, when
epoch N ends. At the end it prints the learning rate the optimizer really used per
epoch, `provkb query epochs` (metrics and the learning rate in force per epoch) and
`provkb query steering-history` for the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

START_LR, LOWER_LR = 0.01, 0.001


def provkb_command(*args: str, store: str | None) -> list[str]:
    """`provkb ARGS` (the console script when installed, else `python -m provkb`)."""
    exe = shutil.which("provkb")
    head = [exe] if exe else [sys.executable, "-m", "provkb"]
    return [*head, *args, *(["--store", store] if store else [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store", help="embedded store folder (default: $PROVKB_HOME or ./.provkb)"
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--pace",
        type=float,
        default=1.5,
        help="seconds to wait after each epoch, to leave time to steer by hand (0: none)",
    )
    parser.add_argument(
        "--self-steer-at",
        type=int,
        metavar="EPOCH",
        help="run `provkb steer` in a second process when this epoch ends",
    )
    args = parser.parse_args(argv)

    import keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import provkb

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(START_LR),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    capture = provkb.ProvenanceCallback(
        experiment="steer-learning-rate",
        store=args.store,
        datasets={"train": "digits", "validation": "digits"},
    )
    run = capture.run_id
    print(f"run {run}: {args.epochs} epochs, Adam, learning rate {START_LR}", flush=True)
    print(
        f"steer it from another terminal:  provkb steer {run} "
        f'--set learning_rate={LOWER_LR} --reason "loss plateau"',
        flush=True,
    )

    used: list[float] = []
    second: list[subprocess.Popen[str]] = []

    class Show(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            used.append(float(self.model.optimizer.learning_rate))

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            logs = logs or {}
            print(
                f"epoch {epoch + 1:2d}  lr {used[-1]:.4g}  loss {logs.get('loss', 0):.4f}  "
                f"val_accuracy {logs.get('val_accuracy', 0):.4f}",
                flush=True,
            )
            if args.self_steer_at == epoch + 1:
                capture.writer.flush(10)  # the run and its metrics are in the store
                command = provkb_command(
                    "steer", run, "--set", f"learning_rate={LOWER_LR}",
                    "--reason", "loss plateau", store=args.store,
                )  # fmt: skip
                shown = f'provkb steer {run} --set learning_rate={LOWER_LR} --reason "loss plateau"'
                print(f"second process: {shown}", flush=True)
                second.append(
                    subprocess.Popen(
                        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                    )
                )
            if args.pace > 0:
                time.sleep(args.pace)

    started = time.monotonic()
    model.fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs,
        batch_size=32, verbose=0, callbacks=[capture, Show()],
    )  # fmt: skip
    print(f"trained in {time.monotonic() - started:.0f} s", flush=True)
    capture.writer.flush(30)
    for process in second:
        out, _ = process.communicate(timeout=120)
        print(f"`provkb steer` said (exit {process.returncode}): {out.strip()}")
    changed = [i + 1 for i in range(1, len(used)) if abs(used[i] - used[i - 1]) > 1e-9]
    print(
        "learning rate the optimizer used: "
        + ", ".join(f"epochs {e}-: {used[e - 1]:.4g}" for e in [1, *changed])
    )

    print(f"\n$ provkb query epochs -p run={run}", flush=True)
    subprocess.run(provkb_command("query", "epochs", "-p", f"run={run}", store=args.store))

    from provkb.kb.store import Store
    from provkb.queries import registry

    print(f"\nsteering history (provkb query steering-history -p run={run}):")
    with Store(provkb.resolve_settings(store=args.store)) as store:
        for h in registry.run(store, "steering-history", run=run).rows:
            what = f"{h['action']} {h['hyperparameter'] or ''}={h['requestedValue'] or ''}"
            old, new = h["oldValue"], h["newValue"]
            change = f": {old:.4g} -> {new:.4g}" if old is not None and new is not None else ""
            outcome = (
                f"applied from epoch {h['appliedEpoch']}{change}"
                if h["status"] == "applied"
                else f"{h['status']} {h['statusReason'] or ''}"
            )
            print(f"  {h['requestedAtTime'][:19]}  {h['person']}  {what}  "
                  f"(reason: {h['reason']})  {outcome}")  # fmt: skip
    print(f"\nlineage of the model: provkb query lineage -p run={run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
