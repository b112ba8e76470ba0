"""A training script whose values are only known when it runs (tests/test_scan.py):
environment variables, a loop, a comprehension, values computed by functions. The scan
tells what it can and why the rest is unknown. Never run by the tests."""

import os
import random

import numpy as np
import pandas as pd
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

WIDTH = 2**5
DEPTH = int(os.environ.get("DEPTH", "3"))
RATE = 1e-3 / 2
BATCH = 64
BATCH = BATCH * 2  # assigned twice: not a constant any more
rng_seed = random.randint(0, 100)

random.seed(rng_seed)
tf.random.set_seed(1234)
np.random.seed(42)

frame = pd.read_csv("data/train.csv", sep=";")
features = np.load(os.path.join("data", "features.npy"))
dataset = tf.data.Dataset.from_tensor_slices((features, frame["label"].values))


def build(width: int) -> keras.Model:
    inputs = keras.Input(shape=(features.shape[1],), name="features")
    x = inputs
    for _ in range(DEPTH):
        x = layers.Dense(width, activation="relu")(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


model = build(WIDTH)
optimizer = keras.optimizers.Adam(learning_rate=RATE, beta_1=float(os.environ["BETA1"]))
model.compile(
    optimizer=optimizer,
    loss=keras.losses.BinaryCrossentropy(),
    metrics=[m for m in ("accuracy", "auc")],
)
stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(os.environ["PATIENCE"]))
model.fit(
    dataset.batch(BATCH),
    epochs=int(os.environ.get("EPOCHS", 10)),
    validation_split=0.1 if DEPTH > 2 else 0.2,
    callbacks=[stop],
)
