"""PROV-XML exports validate against the W3C PROV-XML schema alone (prov's vendored
copy, prov/tests/schemas/prov.xsd), and their encoded identifiers and list values
decode back on import."""

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


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(PROV_XSD)))


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


def test_list_values_are_plain_strings_that_import_back_as_lists(store: Store, run_id: str) -> None:
    doc = build_document(store, run_id=run_id)
    lists = [
        (record.identifier, key)
        for record in doc.get_records()
        for key, value in record.attributes
        if getattr(value, "datatype", None) is not None and str(value.datatype) == "provkb:json"
    ]
    assert lists  # captured data has list properties (the model's layer shapes, ...)
    text = formats.FORMATS["provxml"].writer(doc)
    assert "provkb:json" not in text and "_xjson>" in text
    assert formats.FORMATS["provxml"].reader(text) == doc


def test_encoded_ids_import_back_as_the_same_ids(store: Store, run_id: str, tmp_path: Path) -> None:
    before = build_document(store, run_id=run_id)
    path = tmp_path / "run.xml"
    export(store, "provxml", path, run_id=run_id)
    assert formats.FORMATS["provxml"].reader(path.read_text(encoding="utf-8")) == before
    assert import_file(store, path).records == 0  # already stored exactly: a no-op
