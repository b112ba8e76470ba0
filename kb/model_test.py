"""Test a stored model on an input (the app's Test tab, `KnowledgeBase.test_model`):
read the input, load the `.keras` file a run saved (only when it is the file the run
recorded: same sha256), predict, and record the test as a Prediction by the person.

Inputs (`read_input`): a NumPy `.npy` file (never pickles), CSV text (one row per
sample, numbers only) or an image (`.png`, `.jpg`, `.jpeg`, `.bmp`, `.gif`, read with
Pillow), shaped to what the model takes: an image is resized to the model's input
(height, width, channels: grey for one channel), or for a flat input of n = s*s
features to s x s grey pixels, flattened; pixel values are scaled to [0, 1].
Keras loads the model with `safe_mode` (no code from the file runs).
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PredictionError
from ..ontology import Prop
from . import prediction_outputs as summaries
from . import predictions as records
from .identity import default_person, host_name, now_iso, os_user
from .records import GraphBatch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TEXT_SUFFIXES = (".csv", ".txt")
MAX_INPUT_BYTES = 64 * 1024 * 1024  # an upload larger than this is refused
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelTestResult:
    """What a test predicted and where it was recorded."""

    prediction: str  # the Prediction's node id
    outputs: np.ndarray  # the model's (first) output, one row per input sample
    classes: list[int] | None  # the predicted class of each sample (a classifier's)
    inputs: np.ndarray  # the input as the model took it
    person: str


# -- inputs ---------------------------------------------------------------------------
def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def read_input(data: bytes | str, name: str, input_shape: Sequence[int | None]) -> np.ndarray:
    """`data` (a file's bytes, or CSV text) named `name`, as a batch for a model whose
    input shape (batch dimension first) is `input_shape`; PredictionError naming the
    problem for anything else."""
    if len(data) > MAX_INPUT_BYTES:
        raise PredictionError(f"{name}: {len(data)} bytes is over the {MAX_INPUT_BYTES} limit")
    suffix = Path(name).suffix.lower()
    per_sample = tuple(input_shape[1:])
    if isinstance(data, str) or suffix in TEXT_SUFFIXES:
        array = _csv_rows(data, name)
    elif suffix == ".npy":
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            raise PredictionError(f"{name} is no NumPy .npy array ({exc})") from exc
    elif suffix in IMAGE_SUFFIXES:
        array = _image(data, name, per_sample)
    else:
        known = ", ".join((".npy", *TEXT_SUFFIXES, *IMAGE_SUFFIXES))
        raise PredictionError(f"{name}: unknown input kind {suffix or '(none)'}; use {known}")
    return fit_to(array, input_shape, name)


def _csv_rows(data: bytes | str, name: str) -> np.ndarray:
    text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else data
    rows = [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    if not rows:
        raise PredictionError(f"{name}: no numbers in the CSV text")
    try:
        values = [[float(cell) for cell in row if cell.strip()] for row in rows]
    except ValueError as exc:
        raise PredictionError(f"{name}: the CSV rows must hold numbers only ({exc})") from exc
    widths = {len(row) for row in values}
    if len(widths) != 1:
        raise PredictionError(f"{name}: the CSV rows differ in length ({sorted(widths)})")
    return np.asarray(values, dtype=np.float32)


def _image(data: bytes, name: str, per_sample: tuple[int | None, ...]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise PredictionError(f"{name} is no image Pillow can read ({exc})") from exc
    flat = len(per_sample) == 1 and per_sample[0] is not None
    if flat:
        side = math.isqrt(int(per_sample[0]))
        if side * side != per_sample[0]:
            raise PredictionError(
                f"the model takes {per_sample[0]} features per sample, no square image"
            )
        size, channels = (side, side), 1
    elif len(per_sample) in (2, 3) and None not in per_sample[:2]:
        size = (int(per_sample[1]), int(per_sample[0]))  # Pillow: (width, height)
        channels = int(per_sample[2]) if len(per_sample) == 3 and per_sample[2] else 1
    else:
        raise PredictionError(
            f"the model takes inputs of shape {_shape_text(per_sample)}: not an image"
        )
    mode = "L" if channels == 1 else "RGB"
    pixels = np.asarray(image.convert(mode).resize(size), dtype=np.float32) / 255.0
    if flat:
        return pixels.reshape(1, -1)
    if len(per_sample) == 3:
        pixels = pixels.reshape(size[1], size[0], channels)
    return pixels[np.newaxis]


def fit_to(array: Any, input_shape: Sequence[int | None], name: str = "the input") -> np.ndarray:
    """`array` as a batch of the model's input shape: one sample (its shape, or as many
    values) gets a batch dimension; PredictionError when the shapes cannot match."""
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise PredictionError(f"{name} holds {arr.dtype} values, not numbers")
    per_sample = tuple(input_shape[1:])

    def matches(shape: tuple[int, ...]) -> bool:
        return len(shape) == len(per_sample) and all(
            want is None or want == got for want, got in zip(per_sample, shape, strict=True)
        )

    if matches(tuple(arr.shape[1:])) and arr.ndim == len(per_sample) + 1:
        return arr
    if matches(tuple(arr.shape)):
        return arr[np.newaxis]
    if None not in per_sample and arr.size == math.prod(per_sample):
        return arr.reshape(1, *per_sample)  # one sample given flat, or shaped otherwise
    raise PredictionError(
        f"the model takes inputs of shape {_shape_text((None, *per_sample))}; {name} has "
        f"shape {_shape_text(arr.shape)}"
    )


# -- the model ------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(stored: Mapping[str, Any]) -> Path:
    """The path of a StoredModel record's file, when it is the file the run recorded;
    PredictionError when it is missing here or changed since."""
    path = Path(str(stored.get(Prop.PATH) or ""))
    where = stored.get(Prop.HOSTNAME)
    if not path.is_file():
        host = f" (saved on {where})" if where and where != host_name() else ""
        raise PredictionError(f"the stored model file {path} is not on this machine{host}")
    if _sha256(path) != stored.get(Prop.SHA256):
        raise PredictionError(
            f"the stored model file {path} changed since its run saved it (sha256 "
            f"{stored.get(Prop.SHA256)}): not loaded"
        )
    return path


@functools.lru_cache(maxsize=4)
def _load(path: str, sha256: str) -> Any:
    import keras

    return keras.saving.load_model(path)  # safe_mode: no code from the file runs


def load_model(stored: Mapping[str, Any]) -> Any:
    """The Keras model of a StoredModel record (checked, then loaded once)."""
    path = check_file(stored)
    try:
        return _load(str(path), str(stored.get(Prop.SHA256)))
    except Exception as exc:
        raise PredictionError(f"Keras cannot load {path}: {exc}") from exc


def input_shape(model: Any) -> tuple[int | None, ...]:
    """A loaded model's (first) input shape, batch dimension first."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, list):
        shape = shape[0]
    if not isinstance(shape, tuple):
        raise PredictionError("the stored model has no single input shape to test it with")
    return tuple(shape)


# -- the test -------------------------------------------------------------------------
def run_model_test(
    store: Any,
    stored: Mapping[str, Any],
    inputs: Any,
    person: str | None = None,
    name: str | None = None,
) -> ModelTestResult:
    """Predict `inputs` (an array, or a file's bytes / CSV text called `name`) with a
    StoredModel record's model and record it: a Prediction that USED the stored file and
    the input, associated with `person` (`kb.identity.default_person`), and its
    Predictions. Written before this returns; PredictionError for a bad input or file."""
    model = load_model(stored)
    shape = input_shape(model)
    if isinstance(inputs, bytes | str):
        batch_input = read_input(inputs, name or "input.csv", shape)
    else:
        batch_input = fit_to(inputs, shape, name or "the input")
    started = now_iso()
    try:
        outputs = model.predict(batch_input, verbose=0)
    except Exception as exc:
        raise PredictionError(f"the model could not predict this input: {exc}") from exc
    ended = now_iso()
    who = default_person(person)
    summary = summaries.summarize(outputs)
    run_id = str(stored[Prop.RUN_ID])
    batch = GraphBatch()
    data = records.describe_input(batch_input, name)
    dataset = records.input_dataset(batch, data)
    activity = records.prediction(
        batch,
        run_id,
        records.new_prediction_id(),
        str(stored[Prop.ID]),
        dataset,
        summary,
        who,
        started,
        ended,
        **{Prop.OS_USER: os_user(), Prop.HOST: host_name()},
    )
    store.write(batch)
    first = summaries.leaves(outputs)[0][1]
    labels = summaries.class_labels(first)
    return ModelTestResult(
        activity,
        first,
        labels.tolist() if labels is not None else None,
        batch_input,
        who,
    )
