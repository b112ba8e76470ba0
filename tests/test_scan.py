"""`provkb scan` (issue 17 §1): a training script's facts read with `ast`, never run.

Five scripts with their expected facts: two examples of the repository, a Keras example
shipped in the installed keras package (its docstring's doctest, not written for this
test), one with a syntax error and one with dynamic values; every Keras test file of the
installed package scans without an exception; the CLI's table and JSON; `--record`
then a real run of the same script links the run to the Plan (PROV association with a
plan, the run's Plan derived from it, both exported) and `plan-vs-run` shows planned
against actual values, on both engines."""

from __future__ import annotations

import ast
import doctest
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import RunBuilder, facts
from helpers import cli, one, query_rows, store_child_env, unique

from provkb import ontology as o
from provkb.capture import scan_record
from provkb.capture.scan import ScanResult, scan, scan_source
from provkb.errors import ScanError
from provkb.kb import plans
from provkb.kb.export import build_document, render
from provkb.kb.store import Store
from provkb.ontology import ids as ontology_ids
from provkb.queries.library_plans import NO_PLAN

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).with_name("artifacts")
DIGITS = ARTIFACTS / "scan_digits.py"
KERAS = Path(importlib.util.find_spec("keras").origin).parent  # type: ignore[arg-type]


def layers(result: ScanResult) -> list[tuple[str, dict]]:
    """(class, {argument: value}) of the plan's model layers, known values only."""
    model = result.model
    assert model is not None
    return [
        (la.class_name, {k: v.value for k, v in la.call.kwargs.items() if v.known})
        for la in model.layers
    ]


def unknown(result: ScanResult, what: str) -> str:
    """The reason the scan gives for not knowing `what` (fails when it knows it)."""
    found = [u.reason for u in result.unknowns if u.what == what]
    assert found, [u.what for u in result.unknowns]
    return found[0]


def test_repository_example_steer_learning_rate() -> None:
    result = scan(ROOT / "examples" / "steer_learning_rate.py")
    assert result.parsed and result.notes == []
    assert [(d.loader, d.source) for d in result.datasets] == [
        ("sklearn.datasets.load_digits", "digits")
    ]
    assert layers(result) == [
        ("InputLayer", {"shape": (64,)}),
        ("Dense", {"units": 128, "activation": "relu"}),
        ("Dropout", {"rate": 0.2}),
        ("Dense", {"units": 64, "activation": "relu"}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]
    assert result.planned() == {
        "epochs": 20,  # the default of --epochs
        "batch_size": 32,
        "optimizer_class": "Adam",
        "learning_rate": 0.01,  # Adam(START_LR): followed to START_LR, LOWER_LR = 0.01, 0.001
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "layers": 4,
        "layer_classes": ["Dense", "Dropout", "Dense", "Dense"],
        "seed": 0,
    }
    origins = result.planned_origins()
    assert origins["epochs"].startswith("default of --epochs")
    assert origins["learning_rate"] == "START_LR (line 31)"
    assert result.constants["START_LR"].value == 0.01
    assert [c.name for c in result.callbacks] == ["provkb.ProvenanceCallback"]
    assert "--store has no default" in unknown(result, "ProvenanceCallback.store")


def test_repository_example_study_digits_values_from_the_study() -> None:
    result = scan(ROOT / "examples" / "study_digits.py")
    assert result.planned()["optimizer_class"] == "SGD"
    assert result.planned()["layers"] == 2
    assert "learning_rate" not in result.planned() and "batch_size" not in result.planned()
    assert unknown(result, "optimizer.learning_rate") == "an item of params, known at run time"
    assert "params['batch_size']" in unknown(result, "fit.batch_size")
    assert "an item of params" in unknown(result, "seed.args[0]")


def _keras_docstring_example(relative: str, cls: str) -> tuple[str, str]:
    """The doctest code of a class docstring in the installed keras package (its own
    example, as its authors wrote it), read as text: never imported or run here."""
    path = KERAS / relative
    tree = ast.parse(path.read_bytes())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    examples = doctest.DocTestParser().get_examples(ast.get_docstring(node) or "")
    return "".join(e.source for e in examples), str(path)


def test_a_keras_example_shipped_in_the_installed_package() -> None:
    code, path = _keras_docstring_example(
        "src/callbacks/learning_rate_scheduler.py", "LearningRateScheduler"
    )
    result = scan_source(code, path)
    assert result.parsed
    assert layers(result) == [("Dense", {"units": 10})]
    assert result.compiles[0].optimizer_call is not None
    assert result.compiles[0].optimizer_call.name == "keras.optimizers.SGD"  # positional
    assert result.planned() == {
        "epochs": 15,
        "optimizer_class": "SGD",
        "loss": "mse",
        "layers": 1,
        "layer_classes": ["Dense"],
    }
    assert "learning_rate" in result.planned_origins()  # not given: SGD's default
    assert [c.name for c in result.callbacks] == ["keras.callbacks.LearningRateScheduler"]
    reason = unknown(result, "LearningRateScheduler.args[0]")
    assert reason == "scheduler is the function scheduler()"
    assert "no dataset loading call found" in result.notes


def test_a_syntax_error_gives_the_facts_before_it() -> None:
    result = scan(ARTIFACTS / "scan_broken.py")
    assert not result.parsed
    assert result.error == "line 19, column 10: '(' was never closed"
    assert result.lines_scanned == 18 < result.lines
    assert result.notes[0].startswith("syntax error (line 19")
    assert "only lines 1-18" in result.notes[0]
    assert [d.source for d in result.datasets] == ["digits"]
    assert result.planned() == {
        "optimizer": "adam",
        "loss": "sparse_categorical_crossentropy",
        "layers": 2,
        "layer_classes": ["Dense", "Dense"],
    }
    assert "no fit() call found: epochs and batch size unknown" in result.notes


def test_dynamic_values_are_told_apart_with_reasons() -> None:
    result = scan(ARTIFACTS / "scan_dynamic.py")
    assert result.parsed
    assert [(d.loader, d.source) for d in result.datasets] == [
        ("pandas.read_csv", "data/train.csv"),
        ("numpy.load", "os.path.join('data', 'features.npy')"),  # not a literal: its text
        ("tensorflow.data.Dataset.from_tensor_slices", "(features, frame['label'].values)"),
    ]
    model = result.model
    assert model is not None and model.api == "functional"
    assert [la.class_name for la in model.layers] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert model.layer_count is None  # a Dense in a loop of DEPTH (an environment variable)
    assert "constructed in a loop" in unknown(result, "Dense.count")
    assert unknown(result, "Dense.units") == "width is a parameter of build()"
    assert result.planned() == {
        "optimizer_class": "Adam",
        "learning_rate": 0.0005,  # RATE = 1e-3 / 2, folded
        "loss": "binary_crossentropy",  # keras.losses.BinaryCrossentropy()
    }
    assert result.constants["RATE"].value == 0.0005
    assert "os.environ" in unknown(result, "fit.epochs")
    assert (
        unknown(result, "fit.validation_split") == "a conditional expression, decided at run time"
    )
    assert unknown(result, "compile.metrics") == "a comprehension, evaluated at run time"
    assert "os.environ" in unknown(result, "EarlyStopping.patience")
    assert [(s.name, s.args[0].known) for s in result.seeds] == [
        ("random.seed", False),
        ("tensorflow.random.set_seed", True),
        ("numpy.random.seed", True),
    ]
    assert "random.randint" in unknown(result, "seed.args[0]")


def test_the_script_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "evil.py"
    script.write_text(
        f"open({str(marker)!r}, 'w').write('x')\nimport sys\nsys.exit(3)\n"
        "import keras\nm = keras.Sequential([keras.layers.Dense(2)])\n"
    )
    result = scan(script)
    assert not marker.exists()
    assert result.model is not None and result.planned()["layers"] == 1
    assert "no model found" not in " ".join(result.notes)


def test_no_model_and_bad_files_give_clear_answers(tmp_path: Path) -> None:
    empty = scan_source("")
    assert empty.parsed and empty.models == []
    assert any(n.startswith("no model found") for n in empty.notes)
    junk = scan_source(b"\x00\xff\xfe not python")
    assert not junk.parsed and junk.error and junk.models == []
    assert junk.notes[0].endswith("nothing could be scanned")
    with pytest.raises(ScanError, match="cannot read the script .*missing.py"):
        scan(tmp_path / "missing.py")
    with pytest.raises(ScanError, match="cannot read the script"):
        scan(tmp_path)  # a folder


def test_every_keras_test_file_of_the_installed_package_scans() -> None:
    files = sorted((KERAS / "src" / "callbacks").glob("*_test.py"))
    assert len(files) >= 10
    results = [scan(f) for f in files]  # no exception: real-world code the scan never saw
    assert sum(len(r.models) for r in results) >= 10
    assert sum(len(r.fits) for r in results) >= 10


def test_cli_table_and_json() -> None:
    command = [sys.executable, "-m", "provkb", "scan", str(DIGITS)]
    env = {**os.environ, "COLUMNS": "200"}
    table = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert table.returncode == 0, table.stderr
    for text in ("datasets", "sklearn.datasets.load_digits", "Dropout", "planned",
                 "default of --epochs", "BATCH_SIZE (line 13)", "could not be told"):  # fmt: skip
        assert text in table.stdout, (text, table.stdout)
    done = subprocess.run([*command, "--format", "json"], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["planned"]["epochs"] == 3 and data["planned"]["layers"] == 3
    assert data["models"][0]["layers"][1]["kwargs"]["units"] == {"text": "16", "known": True,
                                                                 "value": 16}  # fmt: skip
    assert data["fit"][0]["kwargs"]["epochs"]["origin"].startswith("default of --epochs")
    missing = subprocess.run([*command[:4], "nowhere.py"], capture_output=True, text=True,
                             timeout=120, env=env)  # fmt: skip
    assert missing.returncode == 1 and "cannot read the script" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_record_then_run_links_the_run_to_the_plan(store: Store) -> None:
    recorded = cli(store, "scan", str(DIGITS), "--record", "--format", "json", "--person", "ada")
    assert recorded.returncode == 0, recorded.stderr
    plan = json.loads(recorded.stdout)["recorded"]["plan"]
    sha = scan(DIGITS).sha256
    assert plan == ontology_ids.script_plan(sha)
    env, store_args = store_child_env(store)
    experiment = unique("scan-digits")
    trained = subprocess.run(
        [sys.executable, str(DIGITS), "--epochs", "2", "--experiment", experiment, *store_args],
        capture_output=True, text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = trained.stdout.strip().splitlines()[-1]
    # PROV: the run's association with Keras had the plan; the run's own Plan derives from it
    linked = one(
        store,
        f"MATCH (r:{o.TRAINING_RUN.label} {{runId: $run}})-[a:{o.WAS_ASSOCIATED_WITH.rel_type}]->"
        f"(g:{o.SOFTWARE_AGENT.label}) RETURN a.{o.Prop.PLAN}",
        run=run,
    )
    assert linked == plan
    derived = one(
        store,
        f"MATCH (c:{o.PLAN.label} {{runId: $run}})-[:{o.WAS_DERIVED_FROM.rel_type}]->"
        f"(p:{o.SCRIPT_PLAN.label}) RETURN p.id",
        run=run,
    )
    assert derived == plan
    rows = {r["fact"]: r for r in query_rows(store, "plan-vs-run", run=run)}
    assert (rows["epochs"]["planned"], rows["epochs"]["actual"], rows["epochs"]["differs"]) == (
        3, 2, True,
    )  # fmt: skip
    assert rows["epochs"]["note"].startswith("default of --epochs")
    for fact, value in (("batch_size", 64), ("validation_split", 0.2), ("learning_rate", 0.01),
                        ("optimizer_class", "Adam"), ("layers", 3),
                        ("loss", "sparse_categorical_crossentropy")):  # fmt: skip
        assert rows[fact]["planned"] == value and rows[fact]["differs"] is False, rows[fact]
    assert rows["layer_classes"]["actual"] == ["Dense", "Dropout", "Dense"]
    assert rows["layer_classes"]["differs"] is False
    assert rows["batch_size"]["note"] == "BATCH_SIZE (line 13)"
    assert rows["optimizer"]["planned"] is None and rows["optimizer"]["differs"] is None
    assert {r["plan"] for r in rows.values()} == {plan}
    # export carries the plan: the entity, hadPlan on the association, the derivation
    doc = json.loads(render(build_document(store, run_id=run), "json"))
    assert plan in doc["entity"]
    assert any(a.get("prov:plan") == plan for a in doc["wasAssociatedWith"].values())
    assert any(d.get("prov:usedEntity") == plan for d in doc["wasDerivedFrom"].values())
    # recording again links the runs of this script so far (idempotent)
    again = cli(store, "scan", str(DIGITS), "--record", "--format", "json")
    assert json.loads(again.stdout)["recorded"]["linkedRuns"] >= 1
    assert (
        one(
            store,
            f"MATCH (c:{o.PLAN.label} {{runId: $run}})-[d:{o.WAS_DERIVED_FROM.rel_type}]->"
            f"(p:{o.SCRIPT_PLAN.label}) RETURN count(d)",
            run=run,
        )
        == 1
    )


def _recorded_run(store: Store, sha: str, epochs: int) -> RunBuilder:
    """A run of the script version `sha`, recorded by the capture's own recorder."""
    builder = RunBuilder(
        unique("scanrun"),
        experiment=unique("scan-before"),
        script=facts.Script("/somewhere/train.py", sha),
        software=facts.Software("3.15.1", "tensorflow", None, "0.1.0"),
        hyperparameters=[facts.Hyperparameter("epochs", epochs, facts.Source.FIT)],
    )
    return builder.write(store)


def test_a_plan_recorded_after_its_runs_links_them(store: Store) -> None:
    code = f"# {unique('version')}\n" + DIGITS.read_text()  # a script version of its own
    result = scan_source(code, "/somewhere/train.py")
    earlier = _recorded_run(store, result.sha256, epochs=2)
    other = _recorded_run(store, scan_source(code + "\n# other\n").sha256, epochs=2)
    before = query_rows(store, "plan-vs-run", run=earlier.run.run_id)
    assert [(r["fact"], r["planned"], r["actual"]) for r in before] == [("epochs", None, 2)]
    assert before[0]["note"] == NO_PLAN and before[0]["differs"] is None
    assert scan_record.record(store, result, person="ada") == 1  # the earlier run, not the other
    plan = scan_record.plan_id(result)
    association = (
        f"MATCH (r:{o.TRAINING_RUN.label} {{runId: $run}})-[a:{o.WAS_ASSOCIATED_WITH.rel_type}]->"
        f"(g:{o.SOFTWARE_AGENT.label}) RETURN a.{o.Prop.PLAN}"
    )
    assert one(store, association, run=earlier.run.run_id) == plan
    assert one(store, association, run=other.run.run_id) is None
    after = {r["fact"]: r for r in query_rows(store, "plan-vs-run", run=earlier.run.run_id)}
    assert (after["epochs"]["planned"], after["epochs"]["differs"]) == (3, True)
    assert after["layers"]["planned"] == 3 and after["layers"]["actual"] is None
    assert plans.link_run(store, earlier.node) == 1  # again: nothing new
    edges = (
        f"MATCH (c:{o.PLAN.label} {{runId: $run}})-[d:{o.WAS_DERIVED_FROM.rel_type}]->"
        f"(p:{o.SCRIPT_PLAN.label}) RETURN count(d)"
    )
    assert one(store, edges, run=earlier.run.run_id) == 1
    assert plans.link_run(store, other.node) == 0
    stored = one(store, f"MATCH (p:{o.SCRIPT_PLAN.label} {{id: $id}}) RETURN p", id=plan)
    assert stored[o.planned_prop(o.PlanFact.BATCH_SIZE)] == 64
    assert json.loads(stored[o.Prop.SCAN])["sha256"] == result.sha256
    assert stored[o.Prop.PARSED] is True


def test_a_tree_too_deep_for_python_gives_the_lines_before_it() -> None:
    deep = "EPOCHS = " + "+".join(["1"] * 30000)
    code = f"import keras\nm = keras.Sequential([keras.layers.Dense(2)])\n{deep}\nm.fit(epochs=3)\n"
    result = scan_source(code)
    assert not result.parsed and result.lines_scanned == 2
    assert result.notes[0].startswith("not Python source the scan can read: ")
    assert result.planned() == {"layers": 1, "layer_classes": ["Dense"]}
