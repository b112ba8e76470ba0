"""`provkb reproduce` (issue 17 §4): a runnable Keras script regenerated from a run's
provenance trains the same architecture with the same hyperparameters, and the new run
is linked to the original. Real Keras training on scikit-learn's digits, the script run
in a child process, on both engines."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import keras
import pytest
from builders import RunBuilder, facts, write
from helpers import cli, query_rows, rows, store_child_env, unique
from sklearn.datasets import load_digits

from provkb import ontology as o
from provkb.capture.callback import ProvenanceCallback
from provkb.errors import DanglingRelation
from provkb.kb.export import build_document
from provkb.kb.store import Store
from provkb.queries import keras_functional, reproduce_script
from provkb.queries.reproduce import read

ROOT = Path(__file__).resolve().parents[1]
SEED, SAMPLES, EPOCHS = 3, 256, 3
HP = o.HYPERPARAMETER.label
RUFF = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache"]
RUFF_RULES = ["--select", "E,F,W,I,B,UP,SIM", "--line-length", "100"]  # the project's


def _digits() -> tuple[Any, Any]:
    x, y = load_digits(return_X_y=True)
    return x[:SAMPLES].astype("float32"), y[:SAMPLES]  # what the script's load_data gives


@pytest.fixture(scope="module")
def original(store: Store) -> ProvenanceCallback:
    """A tiny captured digits run with a seed, ReduceLROnPlateau and EarlyStopping."""
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    cb = ProvenanceCallback(
        experiment=unique("reproduce"),
        store=store,
        datasets={"train": "digits"},
        hyperparameters={"note": "tiny digits"},
    )
    adapt = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
    ]
    x, y = _digits()
    model.fit(x, y, validation_split=0.25, epochs=EPOCHS, batch_size=64, verbose=0,
              callbacks=[*adapt, cb])  # fmt: skip
    assert cb.writer.flush(60)
    return cb


def first_values(store: Store, run_id: str) -> dict[str, Any]:
    found = rows(
        store,
        f"MATCH (h:{o.ENTITY.label} {{runId: $r, version: 1}}) WHERE h:{HP} "
        "RETURN h.name AS name, h.value AS value, h.source AS source",
        r=run_id,
    )
    return {r["name"]: (r["value"], r["source"]) for r in found}


def layer_classes(store: Store, run_id: str) -> list[str]:
    return [r["class"] for r in query_rows(store, "layers", run=run_id)]


def check_script(path: Path) -> None:
    """The script compiles and passes ruff (default rules and the project's)."""
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
    for rules in ([], RUFF_RULES):
        done = subprocess.run([*RUFF, *rules, str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_script_trains_a_linked_run_with_the_same_hyperparameters(
    store: Store, original: ProvenanceCallback, tmp_path: Path
) -> None:
    script = tmp_path / "train_again.py"
    made = cli(store, "reproduce", original.run_id, "-o", str(script), timeout=1200)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("wrote ")
    check_script(script)
    text = script.read_text(encoding="utf-8")
    assert "keras.layers.Dense(units=16, activation='relu')" in text
    assert "keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1)" in text
    assert "keras.optimizers.Adam(learning_rate=0.01)" in text
    assert f"SEED = {SEED}" in text and "load_digits" in text
    assert "NotImplementedError" not in text

    env, store_args = store_child_env(store)
    env["PROVKB_FINAL_WAIT"] = "120"  # the child's run is whole in the store when it exits
    done = subprocess.run(
        [sys.executable, str(script), *store_args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=2400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("provkb: run "))
    new_run = line.split()[2]
    assert line.endswith(f"reproduces run {original.run_id}")

    # the same hyperparameters (every first value, the seed among them) and layers
    before, after = first_values(store, original.run_id), first_values(store, new_run)
    assert before["seed"] == (SEED, "keras")
    assert after == before
    assert layer_classes(store, new_run) == layer_classes(store, original.run_id)
    # linked, and side by side in the named query (from either run)
    for given in (original.run_id, new_run):
        (row,) = query_rows(store, "reproductions", run=given)
        assert row["original"] == original.run_id and row["reproduction"] == new_run
        assert row["linked"] is True and row["sameData"] is True
        assert row["differences"] == []
        assert row["originalLayers"] == row["reproductionLayers"] == 3
        assert row["reproductionEpochs"] == row["originalEpochs"] == EPOCHS
        assert row["reproductionStatus"] == "completed"
    run = rows(store, "MATCH (r:TrainingRun {runId: $r}) RETURN r.reproduces AS x", r=new_run)
    assert run == [{"x": original.run_id}]
    # exported as PROV: the reproduction's Plan wasDerivedFrom the original's, typed
    doc = json.loads(build_document(store, experiment=original.experiment).serialize())
    typed = [
        d
        for d in doc.get("wasDerivedFrom", {}).values()
        if d.get("prov:type", {}).get("$") == o.REPRODUCTION_TYPE
    ]
    assert [(d["prov:generatedEntity"], d["prov:usedEntity"]) for d in typed] == [
        (f"provkb:run/{new_run}/plan", f"provkb:run/{original.run_id}/plan")
    ]


def test_an_unknown_run_is_a_clear_error_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    script = tmp_path / "never.py"
    done = cli(store, "reproduce", "no-such-run-at-all", "-o", str(script))
    assert done.returncode == 1
    assert "no run 'no-such-run-at-all'" in done.stderr
    assert not script.exists()


def test_an_existing_file_is_kept_unless_forced(store: Store, tmp_path: Path) -> None:
    script = tmp_path / "mine.py"
    script.write_text("# my own script\n", encoding="utf-8")
    done = cli(store, "reproduce", "no-such-run-at-all", "-o", str(script))
    assert done.returncode == 1 and "exists" in done.stderr and "--force" in done.stderr
    assert script.read_text(encoding="utf-8") == "# my own script\n"


def test_an_unknown_data_source_gives_the_placeholder(store: Store, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:12]
    data = facts.Dataset("f" * 64, "x_small", (32, 8), "float32", 32)
    hps = [facts.Hyperparameter("epochs", 2, facts.Source.FIT)]
    write(store, RunBuilder(run_id, hyperparameters=hps, datasets={"train": data}))
    script = tmp_path / "again.py"
    script.write_text(reproduce_script.render(read(store, run_id)), encoding="utf-8")
    check_script(script)
    text = script.read_text(encoding="utf-8")
    assert "PLACEHOLDER: the data source is unknown" in text
    namespace: dict[str, Any] = {"__name__": "reproduced"}
    exec(compile(text, str(script), "exec"), namespace)  # defines the functions only
    with pytest.raises(NotImplementedError, match=f"load the data of run {run_id}") as raised:
        namespace["load_data"]()
    assert "'x_small': 32 samples of shape (8,), float32" in str(raised.value)
    with pytest.raises(NotImplementedError, match="no whole model configuration"):
        namespace["build_model"]()


def test_the_reproductions_query_shows_both_runs_and_what_differs(store: Store) -> None:
    a, b = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    plan = facts.Plan(model_config="{}", optimizer_config="{}", compile_config="{}")
    model = facts.Model("m", "Sequential", 10, 10, ())
    data = facts.Dataset("d" * 64, "digits", (10, 4), "float32", 10)

    def run(run_id: str, batch_size: int, *extra: facts.Hyperparameter) -> RunBuilder:
        hps = [facts.Hyperparameter("batch_size", batch_size, facts.Source.FIT), *extra]
        hps.append(facts.Hyperparameter("clipnorm", None, facts.Source.OPTIMIZER))  # both None
        built = RunBuilder(run_id, plan=plan, model=model, hyperparameters=hps,
                           datasets={"train": data})  # fmt: skip
        return built.epoch(1, {"loss": 1.0 if run_id == a else 0.5, "val_loss": 2.0}).finish()

    original = run(a, 32, facts.Hyperparameter("zeta", 1, facts.Source.USER))
    again = run(b, 64)
    again.batches += [again.recorder.reproduces(a), again.recorder.reproduction_link(a)]
    write(store, original, again)
    for given in (a, b):
        (row,) = query_rows(store, "reproductions", run=given)
        assert (row["original"], row["reproduction"]) == (a, b)
        assert row["linked"] is True and row["sameData"] is True
        assert (row["originalLoss"], row["reproductionLoss"]) == (1.0, 0.5)
        assert row["differences"] == ["batch_size", "zeta"]
    assert query_rows(store, "reproductions", run=b)[0]["reproductionStatus"] == "completed"


def test_a_link_to_an_original_the_store_lacks_is_refused_alone(store: Store) -> None:
    run_id, missing = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    built = RunBuilder(run_id)
    built.batches.append(built.recorder.reproduces(missing))
    write(store, built)  # the run says what it reproduces ...
    with pytest.raises(DanglingRelation):  # ... but cannot be linked to what is not there
        store.write(built.recorder.reproduction_link(missing))
    found = rows(store, "MATCH (r:TrainingRun {runId: $r}) RETURN r.reproduces AS x", r=run_id)
    assert found == [{"x": missing}]
    assert query_rows(store, "reproductions", run=run_id) == []


# -- without a store ----------------------------------------------------------------------
def test_a_self_contained_schedule_is_rebuilt_and_one_with_unknown_names_is_not() -> None:
    definition, name, needed = reproduce_script.schedule_function(
        "def halve(epoch, lr):\n    return lr * 0.5 if epoch % 10 == 0 else math.floor(lr)"
    )
    assert name == "halve" and needed == {"math"}
    assert definition is not None and definition.startswith("def halve(epoch, lr):")
    lam = reproduce_script.schedule_function("cb = LearningRateScheduler(lambda e, lr: lr * 0.9)")
    assert lam[1] == "schedule" and lam[0] == "def schedule(e, lr):\n    return lr * 0.9"
    assert reproduce_script.schedule_function("def decay(epoch, lr):\n    return LR * 0.9")[2] == {
        "LR"
    }
    assert reproduce_script.schedule_function("<function <lambda> at 0x7f>")[0] is None


def test_a_functional_model_is_written_as_layer_calls_that_rebuild_it() -> None:
    a, b = keras.Input((8,), name="a"), keras.Input((3,), name="b")
    hidden = keras.layers.Dense(4, activation="tanh", name="hidden")(a)
    joined = keras.layers.Concatenate()([hidden, b])
    model = keras.Model([a, b], keras.layers.Dense(1)(joined), name="two")
    stored = json.loads(json.dumps(model.get_config()))  # as the Plan holds it
    body = keras_functional.functional_body(stored)
    assert body is not None
    assert "hidden = keras.layers.Dense(name='hidden', units=4, activation='tanh')(a)" in body
    assert "keras.layers.Concatenate()([hidden, b])" in body
    assert "return keras.Model(inputs=[a, b], outputs=" in body and "name='two'" in body
    namespace: dict[str, Any] = {"keras": keras}
    exec("def build():\n" + body, namespace)
    rebuilt = namespace["build"]()
    assert [type(x).__name__ for x in rebuilt.layers] == [type(x).__name__ for x in model.layers]
    assert rebuilt.count_params() == model.count_params()


def test_the_templates_ship_with_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    data = config["tool"]["setuptools"]["package-data"]["provkb.queries"]
    assert "templates/*.j2" in data
    assert (ROOT / "queries" / "templates" / reproduce_script.TEMPLATE).is_file()
