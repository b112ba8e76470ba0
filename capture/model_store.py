"""`ProvenanceCallback(save_model=True)`: the trained model saved as a `.keras` file,
recorded as a StoredModel entity (path, size, sha256) the run generated (issue 17).

Where: `save_model=True` puts it in the store folder's artifacts area,
`<store folder>/artifacts/models/<run id>/model.keras` (private, like the rest of the
folder); a path ending in `.keras` is the file itself, any other path a folder that
gets `<run id>.keras`; a `file://` URI is its local path (other URIs are refused when
the callback is made). The file is written at the end of training, on the training
thread (Keras saves a model from the thread that owns it; a second `fit` could change
the weights meanwhile), with the weights EarlyStopping restores when its own
`on_train_end` runs after ProvKB's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..errors import ConfigError
from ..kb import predictions as records
from ..kb.identity import host_name
from ..kb.records import GraphBatch
from ..kb.store_folder import FILE_MODE, private_folder
from .run_lifecycle import now

SaveModel = bool | str | os.PathLike | None
ARTIFACTS, MODELS, FILE_NAME = "artifacts", "models", "model.keras"
_CHUNK = 1 << 20


def checked(save_model: SaveModel) -> bool | Path:
    """`save_model` as True/False or a local path; a `file://` URI is its path. Any other
    URI (s3://, gs://, ...) is refused here, when the callback is made, not after a
    training (ProvKB writes only local files). No I/O."""
    if save_model is None or isinstance(save_model, bool):
        return bool(save_model)
    text = os.fspath(save_model)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"save_model must be True, False, a path or a file:// URI: {text!r}")
    parsed = urlparse(text)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"save_model={text!r}: a file:// URI of another host")
        return Path(url2pathname(parsed.path))
    if "://" in text:
        raise ConfigError(
            f"save_model={text!r}: ProvKB saves models to local files only (a path or a "
            f"file:// URI), not to {parsed.scheme}://; copy the saved file there yourself"
        )
    return Path(text)


def target_path(save_model: SaveModel, home: Path, run_id: str) -> Path | None:
    """Where the model of `run_id` is saved (None: not saved)."""
    save_model = checked(save_model)
    if save_model is False:
        return None
    if save_model is True:
        models = private_folder(private_folder(Path(home) / ARTIFACTS) / MODELS)
        return private_folder(models / run_id) / FILE_NAME
    path = Path(save_model).expanduser()
    if path.suffix == ".keras":
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return (path / f"{run_id}.keras").resolve()


def file_sha256(path: Path) -> tuple[int, str]:
    """(size in bytes, sha256) of a file."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def save(
    model: Any,
    path: Path,
    run_id: str,
    weights: Any = None,
    weights_sha256: str | None = None,
    has_model: bool = True,
) -> GraphBatch:
    """Save `model` (with `weights` in place of its own, when given) to `path` and
    return its StoredModel record. The model's weights are as before afterwards."""
    current = model.get_weights() if weights is not None else None
    try:
        if weights is not None:
            model.set_weights(weights)
        model.save(path)
    finally:
        if current is not None:
            model.set_weights(current)
    if _private(path):
        os.chmod(path, FILE_MODE)
    size, sha = file_sha256(path)
    batch = GraphBatch()
    records.stored_model(
        batch, run_id, str(path), size, sha, now(), host_name(), weights_sha256, has_model
    )
    return batch


def _private(path: Path) -> bool:
    """Whether `path` is in a store folder's artifacts area (kept 0600 there)."""
    return ARTIFACTS in path.parts and MODELS in path.parts
