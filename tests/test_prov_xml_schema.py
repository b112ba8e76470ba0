"""PROV-XML exports validate against the W3C PROV-XML schema (prov's vendored copy,
prov/tests/schemas/prov.xsd) plus tests/schemas/provkb.xsd (the provkb:json datatype),
and their encoded identifiers decode back on import."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import keras
import numpy as np
import prov
import pytest
from lxml import etree

from provkb.kb import formats
from provkb.kb.export import build_document, export
from provkb.kb.provimport import import_file
from provkb.kb.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]
PROV_XSD = Path(os.path.dirname(prov.__file__)) / "tests" / "schemas" / "prov.xsd"
PROVKB_XSD = Path(__file__).resolve().parent / "schemas" / "provkb.xsd"


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    text = PROVKB_XSD.read_text(encoding="utf-8").replace("PROV_XSD", PROV_XSD.as_uri())
    path = tmp_path_factory.mktemp("xsd") / "provkb.xsd"
    path.write_text(text, encoding="utf-8")
    return etree.XMLSchema(etree.parse(str(path)))


@pytest.fixture(scope="module")
def run_id(store: Store) -> str:
    from provkb.capture.callback import ProvenanceCallback

    rng = np.random.default_rng(5)
    x, y = rng.random((64, 6), dtype="float32"), rng.integers(0, 2, 64)
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = ProvenanceCallback(experiment=f"xsd-{uuid.uuid4().hex[:8]}", person="ada", store=store)
    model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, callbacks=[cb], verbose=0)
    assert cb.writer.flush(30)
    return cb.run_id


def test_a_captured_runs_prov_xml_is_schema_valid(
    store: Store, run_id: str, schema: etree.XMLSchema
) -> None:
    out = io.StringIO()
    export(store, "provxml", out, run_id=run_id)
    root = etree.fromstring(out.getvalue().encode("utf-8"))
    valid = schema.validate(root)
    assert valid, [e.message for e in list(schema.error_log)[:10]]
    assert "_x002F_" in out.getvalue()  # the ids' slashes, encoded as NCName characters


def test_the_w3c_schema_alone_refuses_only_the_provkb_datatype(store: Store, run_id: str) -> None:
    out = io.StringIO()
    export(store, "provxml", out, run_id=run_id)
    w3c = etree.XMLSchema(etree.parse(str(PROV_XSD)))
    w3c.validate(etree.fromstring(out.getvalue().encode("utf-8")))
    errors = [e.message for e in w3c.error_log]
    assert errors  # captured data has list properties (the model's layer shapes, ...)
    assert all("ns#}json" in m or "type definition is absent" in m for m in errors), errors


def test_encoded_ids_import_back_as_the_same_ids(store: Store, run_id: str, tmp_path: Path) -> None:
    before = build_document(store, run_id=run_id)
    path = tmp_path / "run.xml"
    export(store, "provxml", path, run_id=run_id)
    assert formats.FORMATS["provxml"].reader(path.read_text(encoding="utf-8")) == before
    assert import_file(store, path).records == 0  # already stored exactly: a no-op
