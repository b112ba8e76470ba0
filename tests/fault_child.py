"""A training process for the fault-injection tests (run as a script, not collected).

usage: fault_child.py MODE EPOCHS MARKER_DIR
  MODE "kill": writes MARKER_DIR/epoch-<n> after each epoch and sleeps in epoch 4,
               so the parent can SIGKILL it mid-epoch.
  MODE "plain": just trains and prints the run id.
The store comes from the environment (PROVKB_HOME / PROVKB_URI).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from provkb.capture.callback import ProvenanceCallback  # noqa: E402


class Marker(keras.callbacks.Callback):
    def __init__(self, folder: Path, mode: str) -> None:
        super().__init__()
        self.folder, self.mode, self.epoch = folder, mode, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        (self.folder / f"epoch-{epoch + 1}").touch()

    def on_train_batch_end(self, batch, logs=None):
        if self.mode == "kill" and self.epoch == 4:
            time.sleep(60)  # killed here, mid-epoch


def main() -> None:
    mode, epochs, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 16)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    capture = ProvenanceCallback(experiment="faults", run_name=f"{mode}-{os.getpid()}")
    print(capture.run_id, flush=True)
    (folder / f"run-{capture.run_id}").touch()
    model.fit(
        x, y, epochs=epochs, batch_size=32, verbose=0, validation_split=0.25,
        callbacks=[capture, Marker(folder, mode)],
    )  # fmt: skip


if __name__ == "__main__":
    main()
