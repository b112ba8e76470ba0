"""A tiny digits training for tests/test_scan.py: `provkb scan --record` this file, then
run it (`python scan_digits.py --epochs 2`): the run is linked to the scanned Plan and
`provkb query plan-vs-run` shows 3 epochs planned (the default of --epochs) against 2.
"""

import argparse

import keras
from sklearn.datasets import load_digits

import provkb

BATCH_SIZE = 64
LEARNING_RATE = 0.01

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--experiment", default="scan-digits")
parser.add_argument("--store")
args = parser.parse_args()

keras.utils.set_random_seed(0)
digits = load_digits()
x, y = (digits.data[:300] / 16.0).astype("float32"), digits.target[:300]
model = keras.Sequential(
    [
        keras.Input((64,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
capture = provkb.ProvenanceCallback(experiment=args.experiment, store=args.store)
model.fit(
    x, y, epochs=args.epochs, batch_size=BATCH_SIZE, validation_split=0.2, verbose=0,
    callbacks=[capture],
)  # fmt: skip
print(capture.run_id)
