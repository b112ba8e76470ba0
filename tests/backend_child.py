"""Child process of tests/test_backends.py: capture on the Keras backend KERAS_BACKEND names
(chosen at import, so one process per backend). Not collected by pytest.

    python tests/backend_child.py EXPERIMENT [--store FOLDER]

Runs (1) a fit with a ProvenanceCallback, a LearningRateScheduler, a steered learning
rate at epoch 3 and a stop request at epoch 5; (2) an autologged fit with EarlyStopping
and ReduceLROnPlateau, then an autologged evaluate. Prints one JSON line: the run ids,
the backend and the learning rate each epoch of (1) used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from test_schedulers_and_callbacks import (  # noqa: E402
    STEERED_LR,
    Asker,
    LearningRates,
    decay,
    make_model,
)

import provkb  # noqa: E402
from provkb.capture.callback import ProvenanceCallback, callback_for  # noqa: E402
from provkb.config import resolve_settings  # noqa: E402
from provkb.kb.store import Store  # noqa: E402


def main(experiment: str, folder: str | None) -> None:
    store = Store(resolve_settings(store=folder))
    data = load_digits()
    x, y = (data.data[:256] / 16.0).astype("float32"), data.target[:256]
    cb = ProvenanceCallback(experiment=experiment, store=store, poll_interval=0.1)
    seen = LearningRates()
    steer = Asker(cb, store, 3, action="set", hyperparameter="learning_rate", value=STEERED_LR)
    stop = Asker(cb, store, 5, action="stop")
    schedule = keras.callbacks.LearningRateScheduler(decay)
    make_model().fit(x, y, epochs=8, batch_size=64, verbose=0,
                     callbacks=[schedule, steer, stop, seen, cb])  # fmt: skip
    assert cb.writer.flush(60)
    provkb.autolog(experiment=experiment, store=store)
    try:
        model = make_model()
        early = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
        plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                                    min_delta=10.0)  # fmt: skip
        model.fit(x, y, epochs=5, batch_size=64, verbose=0, callbacks=[early, plateau])
        model.evaluate(x, y, verbose=0)
        auto = callback_for(model)
        assert auto is not None and auto.writer.flush(60)
    finally:
        provkb.autolog(disable=True)
    print(json.dumps({"backend": keras.backend.backend(), "steered": cb.run_id,
                      "autologged": auto.run_id, "used": seen.used}))  # fmt: skip
    store.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[2] if len(args) > 2 and args[1] == "--store" else None)
