"""A training script with a syntax error (tests/test_scan.py): the scan reports what
comes before the error and says where the error is. Never run."""

import keras
from sklearn.datasets import load_digits

EPOCHS = 12
digits = load_digits()

model = keras.Sequential(
    [
        keras.Input((64,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

def train(
    model.fit(digits.data, digits.target, epochs=EPOCHS)
