"""Studies (steerable trial queues) on the real store: expansion, run, edits from another
process, edit rules, concurrent edits, the PROV of every edit, resume, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from helpers import cli, store_child_env

from provkb.capture.study import Study
from provkb.errors import ProvKBError, StudyEditRefused
from provkb.kb import study as kb
from provkb.kb.store import Store
from provkb.queries import registry


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def gains_of(history) -> list[float | None]:
    return [it.gain for it in history]


def snapshot(store: Store, name: str) -> list[dict]:
    """Every item version of a study and every edit: what a refused edit must not change."""
    rows = store.read(
        "MATCH (n) WHERE n.study = $name AND (n:TrialItem OR n:SteeringAction OR n:StudyState) "
        "RETURN n.id AS id, properties(n) AS props ORDER BY id",
        name=name,
    ).rows
    return rows


# -- expansion ----------------------------------------------------------------------------
def test_ranges_expand_with_inclusive_end_lists_and_scalars() -> None:
    values = kb.dimension_values
    assert values("lr", [0.01, 0.05, 0.01]) == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert values("lr", [0.0005, 0.0025, 0.0005]) == [0.0005, 0.001, 0.0015, 0.002, 0.0025]
    assert values("lr", [0.1, 1.0, 0.1])[-1] == 1.0 and len(values("lr", [0.1, 1.0, 0.1])) == 10
    assert values("lr", [0.1, 0.3, 0.2]) == [0.1, 0.3]  # 0.3 - 0.1 < 0.2 in floats
    assert values("epochs", [10, 50, 10]) == [10, 20, 30, 40, 50]
    assert all(isinstance(v, int) for v in values("epochs", [10, 50, 10]))
    assert values("epochs", [10, 50, 15]) == [10, 25, 40]  # end not reached exactly
    assert values("bs", [16, 32, 64]) == [16, 32, 64]  # not a range: step > end - start
    assert values("bs", [100]) == [100]
    assert values("opt", ["sgd", "adam"]) == ["sgd", "adam"]
    assert values("bs", 64) == [64]
    assert values("x", {"values": [1, 3, 2]}) == [1, 3, 2]
    assert values("x", [1, 3, 2]) == [1, 3]  # read as a range: use {"values": ...}
    assert values("x", {"range": [16, 64, 16]}) == [16, 32, 48, 64]
    assert values("x", (1, 2)) == [1, 2] and values("x", range(3)) == [0, 1, 2]
    for bad in ({"range": [1, 5, 0]}, {"range": [5, 1, 1]}, {"range": [1, 2]}, [], {"x": 1}):
        with pytest.raises(ProvKBError):
            values("x", bad)


def test_grid_order_and_seeded_random_sampling() -> None:
    space = {"lr": [0.01, 0.03, 0.01], "bs": [32, 64], "seed": [0]}
    grid = kb.expand(space)
    assert grid == [
        {"lr": 0.01, "bs": 32, "seed": 0},
        {"lr": 0.01, "bs": 64, "seed": 0},
        {"lr": 0.02, "bs": 32, "seed": 0},
        {"lr": 0.02, "bs": 64, "seed": 0},
        {"lr": 0.03, "bs": 32, "seed": 0},
        {"lr": 0.03, "bs": 64, "seed": 0},
    ]
    assert kb.expand(space, n_samples=2) == grid[:2]
    first = kb.expand(space, "random", n_samples=4, seed=7)
    assert first == kb.expand(space, "random", n_samples=4, seed=7)  # reproducible
    assert len(first) == 4 and all(c in grid for c in first)
    assert len({json.dumps(c, sort_keys=True) for c in first}) == 4  # distinct
    everything = kb.expand(space, "random", seed=7)
    assert sorted(map(json.dumps, everything)) == sorted(map(json.dumps, grid))
    assert any(kb.expand(space, "random", seed=s) != everything for s in range(1, 5))
    assert len(kb.expand(space, "random", n_samples=100, seed=1)) == 6
    with pytest.raises(ProvKBError, match="sampler"):
        kb.expand(space, "bayes")


# -- running ------------------------------------------------------------------------------
def test_run_evaluates_items_in_order_and_records_gains(store: Store) -> None:
    name = _name("run")
    study = Study(name, {"lr": [1, 4, 1]}, gain="val_accuracy", k=2, store=store, person="ada")
    assert study.created
    seen: list[dict] = []

    def train(params, callbacks):
        seen.append(params)
        assert callbacks[0].run_name == f"{name}-it{len(seen)}"
        if params["lr"] == 3:
            raise RuntimeError("diverged")
        # best per mode (max): the best epoch counts, not the last
        return {"val_accuracy": [params["lr"] / 10, params["lr"] / 5, 0.0]}

    summary = study.run(train)
    assert [p["lr"] for p in seen] == [1, 2, 3, 4]
    history = study.history()
    assert [it.iteration for it in history] == [1, 2, 3, 4]
    assert [it.status for it in history] == ["done", "done", "failed", "done"]
    assert gains_of(history) == [0.2, 0.4, None, 0.8]
    assert "RuntimeError: diverged" in history[2].error
    assert [it.moving_average for it in history] == pytest.approx([0.2, 0.3, 0.3, 0.6])
    assert (summary.iterations, summary.failed, summary.pending) == (4, 1, 0)
    assert (summary.best_item, summary.best_gain, summary.best_iteration) == (4, 0.8, 4)
    assert study.settings["status"] == kb.COMPLETED and study.settings["iterations"] == 4
    runs = store.read(
        "MATCH (r:TrainingRun)-[:WAS_INFORMED_BY]->(s:Study {name: $name}) "
        "MATCH (r)-[:USED]->(i:TrialItem) "
        "RETURN r.iteration AS it, r.itemId AS item, r.gain AS gain, r.status AS status, "
        "r.name AS run, i.id AS used ORDER BY it",
        name=name,
    ).rows
    assert [(r["it"], r["item"], r["gain"], r["status"]) for r in runs] == [
        (1, 1, 0.2, "completed"),
        (2, 2, 0.4, "completed"),
        (3, 3, None, "failed"),
        (4, 4, 0.8, "completed"),
    ]
    assert [r["used"] for r in runs] == [kb.item_node_id(name, i, 1) for i in (1, 2, 3, 4)]
    assert study.run(train).iterations == 0  # nothing pending


def test_gain_callable_and_min_mode(store: Store) -> None:
    study = Study(_name("min"), {"x": [3, 1, 2]}, gain="loss", mode="min", store=store)
    study.run(lambda p, cb: {"loss": [p["x"] + 1.0, p["x"] * 1.0]})
    assert gains_of(study.history()) == [3.0, 1.0, 2.0]
    assert study.best().params == {"x": 1}
    fn = Study(_name("fn"), {"x": [1, 2]}, gain=lambda r: r * 10, store=store)
    assert fn.settings["gainFunction"] == "test_gain_callable_and_min_mode.<locals>.<lambda>"
    fn.run(lambda p, cb: p["x"])
    assert gains_of(fn.history()) == [10.0, 20.0]
    missing = Study(_name("missing"), {"x": [1]}, gain="val_accuracy", store=store)
    missing.run(lambda p, cb: {"loss": [1.0]})
    (it,) = missing.history()
    assert it.status == "failed" and "val_accuracy" in it.error


def test_iteration_of_a_keras_fit_is_a_captured_run(store: Store) -> None:
    import numpy as np

    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    name = _name("keras")

    def train(params, callbacks):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(
            keras.optimizers.SGD(params["learning_rate"]),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model.fit(
            x, y, epochs=2, batch_size=32, validation_split=0.25, callbacks=callbacks, verbose=0
        )

    study = Study(name, {"learning_rate": [0.05]}, gain="val_accuracy", store=store)
    study.run(train)
    (it,) = study.history()
    run = store.read(
        "MATCH (r:Activity {id: $id}) RETURN properties(r) AS r", id=f"provkb:run/{it.run_id}"
    ).rows[0]["r"]
    assert run["status"] == "completed" and run["epochsCompleted"] == 2
    assert (run["study"], run["iteration"], run["itemId"]) == (name, 1, 1)
    assert run["name"] == f"{name}-it1" and run["experiment"] == name
    assert run["gain"] == pytest.approx(it.gain)
    val = store.read(
        "MATCH (m:Metrics) WHERE m.runId = $run AND m.kind = 'epoch' "
        "RETURN max(m.`metric.val_accuracy`) AS best",
        run=it.run_id,
    ).rows[0]["best"]
    assert it.gain == pytest.approx(val)
    lr = store.read(
        "MATCH (r:Activity {id: $id})-[:USED]->(h:Hyperparameter {name: 'learning_rate'}) "
        "RETURN h.value AS v",
        id=f"provkb:run/{it.run_id}",
    ).rows
    assert lr and lr[0]["v"] == pytest.approx(0.05)


# -- edits --------------------------------------------------------------------------------
def test_edit_from_a_second_process_takes_effect_from_the_next_iteration(store: Store) -> None:
    name = _name("steer")
    study = Study(name, {"lr": [1, 2, 3]}, gain="g", store=store, person="ada")
    seen: list[int] = []
    outputs: list[subprocess.CompletedProcess] = []

    def train(params, callbacks):
        seen.append(params["lr"])
        if len(seen) == 1:  # while iteration 1 runs, another process edits the queue
            outputs.append(cli(store, "study", "edit", name, "2", "-p", "lr=20", "-r", "faster"))
            outputs.append(cli(store, "study", "edit", name, "1", "-p", "lr=10"))
            outputs.append(cli(store, "study", "add", name, "-p", "lr=7", "--position", "1"))
        return {"g": [params["lr"] / 100]}

    study.run(train)
    edited, refused, added = outputs
    assert edited.returncode == 0, edited.stderr
    assert "takes effect from iteration 2" in edited.stdout
    assert refused.returncode == 3 and "running" in refused.stderr
    assert "nothing changed" in refused.stderr
    assert added.returncode == 0, added.stderr
    assert seen == [1, 7, 20, 3]  # the added item went first, then the edited version
    edits = study.edits()
    assert [(e["action"], e["iteration"], e["person"]) for e in edits] == [
        ("edit", 1, kb.default_person()),  # the second process's user
        ("add", 1, kb.default_person()),
    ]
    assert edits[0]["before"] == {"lr": 2} and edits[0]["after"] == {"lr": 20}
    used = store.read(
        "MATCH (r:TrainingRun {study: $name, iteration: 3})-[:USED]->(i:TrialItem) "
        "RETURN i.itemId AS item, i.version AS version",
        name=name,
    ).rows
    assert used == [{"item": 2, "version": 2}]


def test_editing_a_running_or_finished_item_is_refused_and_changes_nothing(store: Store) -> None:
    name = _name("rules")
    study = Study(name, {"lr": [1, 2, 3]}, gain="g", store=store)
    errors: list[str] = []

    def train(params, callbacks):
        before = snapshot(store, name)
        for attempt in (
            lambda: study.edit(1, {"lr": 5}),
            lambda: study.remove(1),
            lambda: study.move(1, 2),
        ):
            with pytest.raises(StudyEditRefused) as exc:
                attempt()
            errors.append(str(exc.value))
        assert snapshot(store, name) == before
        return {"g": [1.0]}

    study.run(train, max_iterations=1)
    assert all("is running (iteration 1)" in e and "only pending" in e for e in errors)
    before = snapshot(store, name)
    with pytest.raises(StudyEditRefused, match="item 1 of study .* is done"):
        study.edit(1, {"lr": 9})
    with pytest.raises(StudyEditRefused, match="has no item 99"):
        study.remove(99)
    with pytest.raises(StudyEditRefused, match="no hyperparameter 'lrr'"):
        study.edit(2, {"lrr": 9})
    with pytest.raises(StudyEditRefused, match="changed meanwhile"):
        study.edit(2, {"lr": 9}, expected_version=2)
    study.remove(3, reason="not needed")
    with pytest.raises(StudyEditRefused, match="is removed"):
        study.edit(3, {"lr": 9})
    after = snapshot(store, name)
    assert len(after) == len(before) + 3  # only the removal: new version, action, state
    assert [i.params["lr"] for i in study.pending()] == [2]


CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from provkb.capture.study import Study
    from provkb.errors import StudyEditRefused
    name, store, key, edits, go, mode = sys.argv[1:7]
    study = Study.open(name, store=None if store == "-" else store, person=key)
    open(f"{go}.{key}.ready", "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    results = []
    for i in range(1, int(edits) + 1):
        expected = study.item(1).version if mode == "expected" else None
        try:
            r = study.edit(1, {key: i}, reason=f"{key}={i}", expected_version=expected)
            results.append([i, r.versions[1]])
        except StudyEditRefused as exc:
            results.append([i, None, str(exc)])
    print(json.dumps(results))
    """
)


@pytest.mark.parametrize("mode", ["merge", "expected"])
def test_concurrent_edits_never_lose_an_update(store: Store, tmp_path: Path, mode: str) -> None:
    name = _name("conc")
    keys = ["t0", "t1", "p0", "p1"]
    Study(name, {k: [0] for k in keys}, gain="g", store=store)
    go, edits = tmp_path / "go", 12
    env, _ = store_child_env(store)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                name,
                str(store.settings.home) if store.settings.embedded else "-",  # "-": env
                key,
                str(edits),
                str(go),
                mode,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for key in ("p0", "p1")
    ]
    results: dict[str, list] = {}

    def thread(key: str) -> None:
        study = Study.open(name, store=store, person=key)
        while not go.exists():
            time.sleep(0.01)
        out = []
        for i in range(1, edits + 1):
            expected = study.item(1).version if mode == "expected" else None
            try:
                r = study.edit(1, {key: i}, reason=f"{key}={i}", expected_version=expected)
                out.append([i, r.versions[1]])
            except StudyEditRefused as exc:
                out.append([i, None, str(exc)])
        results[key] = out

    threads = [threading.Thread(target=thread, args=(k,)) for k in ("t0", "t1")]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60  # the children import and connect ...
    while not all(Path(f"{go}.{k}.ready").exists() for k in ("p0", "p1")):
        assert time.monotonic() < deadline and all(c.poll() is None for c in children)
        time.sleep(0.05)
    go.touch()  # ... then all four writers start at once
    for t in threads:
        t.join(120)
    for key, child in zip(("p0", "p1"), children, strict=True):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results[key] = json.loads(out.strip().splitlines()[-1])

    applied = {key: [r for r in rs if r[1] is not None] for key, rs in results.items()}
    refused = [r for rs in results.values() for r in rs if r[1] is None]
    assert all("changed meanwhile" in r[2] or "busy" in r[2] for r in refused)
    new_versions = sorted(v for rs in applied.values() for _, v in rs)
    n = len(new_versions)
    assert new_versions == list(range(2, n + 2))  # each applied edit made its own version
    if mode == "merge":
        assert not refused  # serialised: every edit applied
    versions = Study.open(name, store=store).versions(1)
    assert [v.version for v in versions] == list(range(1, n + 2))
    assert [v.current for v in versions] == [False] * n + [True]
    final = versions[-1].params
    for key, rs in applied.items():  # each writer's last applied value survived the others
        assert final[key] == (rs[-1][0] if rs else 0)
    chain = store.read(
        "MATCH (new:TrialItem {study: $name})-[:WAS_REVISION_OF]->(old:TrialItem) "
        "MATCH (new)-[:WAS_GENERATED_BY]->(a:SteeringAction)-[:USED]->(old) "
        "RETURN old.version AS old, new.version AS new, a.person AS person ORDER BY new",
        name=name,
    ).rows
    assert [(r["old"], r["new"]) for r in chain] == [(v - 1, v) for v in range(2, n + 2)]
    actions = store.read(
        "MATCH (a:SteeringAction {study: $name}) RETURN count(a) AS n", name=name
    ).rows
    assert actions[0]["n"] == n  # a refused edit left no action behind


def test_every_edit_is_recorded_as_prov(store: Store) -> None:
    name = _name("prov")
    study = Study(name, {"lr": [1, 8, 1]}, gain="g", k=2, store=store, person="ada")
    study.run(lambda p, cb: {"g": [p["lr"] / 10]}, max_iterations=3)
    edit = study.edit(5, {"lr": 50}, reason="bigger")
    assert edit.effective_from == 4
    assert (edit.state.iterations, edit.state.last_gain) == (3, 0.3)
    assert edit.state.moving_average == pytest.approx(0.25)
    row = store.read(
        "MATCH (a:SteeringAction {requestId: $req})-[:WAS_INFORMED_BY]->(s:Study) "
        "MATCH (a)-[:USED]->(st:StudyState) "
        "MATCH (a)-[:USED]->(old:TrialItem) "
        "MATCH (new:TrialItem)-[:WAS_GENERATED_BY]->(a) "
        "MATCH (new)-[:WAS_REVISION_OF]->(old) "
        "MATCH (a)-[w:WAS_ASSOCIATED_WITH]->(p:Person) "
        "RETURN s.name AS study, a.action AS action, a.itemId AS item, a.iteration AS it, "
        "a.reason AS reason, a.before AS before, a.after AS after, st.iteration AS stIt, "
        "st.lastGain AS last, st.movingAverage AS avg, st.k AS k, old.version AS oldV, "
        "old.current AS oldCurrent, new.version AS newV, new.current AS newCurrent, "
        "new.params AS params, p.name AS person, w.plan AS plan, a.requestId AS request",
        req=edit.request_id,
    ).rows
    assert len(row) == 1
    r = row[0]
    assert (r["study"], r["action"], r["item"], r["it"], r["reason"]) == (
        name, "edit", 5, 3, "bigger"
    )  # fmt: skip
    assert (json.loads(r["before"]), json.loads(r["after"])) == ({"lr": 5}, {"lr": 50})
    assert (r["stIt"], r["last"], r["k"]) == (3, 0.3, 2)
    assert r["avg"] == pytest.approx(0.25)
    assert (r["oldV"], r["oldCurrent"], r["newV"], r["newCurrent"]) == (1, False, 2, True)
    assert json.loads(r["params"]) == {"lr": 50}
    # the association names no plan (a queue edit has no request node); the action
    # itself carries the request id
    assert (r["person"], r["plan"], r["request"]) == ("ada", None, edit.request_id)
    # and the whole knowledge base still exports as PROV after queue edits
    from provkb.kb import export

    assert export.build_document(store).get_records()

    added = study.add({"lr": 99}, position=1)
    moved = study.move(4, 3)
    removed = study.remove(6)
    respaced = study.respace({"lr": [20, 21, 1]}, reason="new interval")
    by_action = {
        r["action"]: r
        for r in store.read(
            "MATCH (a:SteeringAction {study: $name}) "
            "OPTIONAL MATCH (a)-[:USED]->(old:TrialItem) "
            "OPTIONAL MATCH (new:TrialItem)-[:WAS_GENERATED_BY]->(a) "
            "WITH a, collect(DISTINCT old.itemId * 100 + old.version) AS used, "
            "collect(DISTINCT new.itemId * 100 + new.version) AS made "
            "RETURN a.action AS action, used, made, a.before AS before, a.after AS after",
            name=name,
        ).rows
    }
    assert sorted(by_action["add"]["made"]) == [added.item_ids[0] * 100 + 1]
    assert by_action["add"]["used"] == []
    assert (sorted(by_action["move"]["used"]), sorted(by_action["move"]["made"])) == ([401], [402])
    assert (sorted(by_action["remove"]["used"]), sorted(by_action["remove"]["made"])) == (
        [601], [602]
    )  # fmt: skip
    # respace: every pending item retired (removed version), each new combination added
    assert sorted(by_action["respace"]["used"]) == [402, 502, 701, 801, 901]
    assert sorted(by_action["respace"]["made"]) == [403, 503, 702, 802, 902, 1001, 1101]
    assert json.loads(by_action["respace"]["before"]) == {"lr": [1, 8, 1]}
    assert json.loads(by_action["respace"]["after"]) == {"lr": [20, 21, 1]}
    assert moved.versions == {4: 2} and removed.versions == {6: 2}
    assert respaced.item_ids[-2:] == [10, 11]
    assert [(i.item_id, i.params["lr"]) for i in study.pending()] == [(10, 20), (11, 21)]
    statuses = {i.item_id: i.status for i in study.items(include_removed=True)}
    assert [statuses[i] for i in (4, 5, 6, 7, 8, 9)] == ["removed"] * 6
    assert study.settings["space"] == {"lr": [20, 21, 1]}
    first = store.read(
        "MATCH (i:TrialItem {study: $name, version: 1})-[:WAS_GENERATED_BY]->(s:Study) "
        "RETURN count(i) AS n",
        name=name,
    ).rows[0]["n"]
    assert first == 8


def test_move_and_add_positions(store: Store) -> None:
    study = Study(_name("pos"), {"x": [1, 5, 1]}, gain="g", store=store)
    study.move(5, 1)
    study.move(1, 3)
    study.add({"x": 9}, position=2)
    study.add({"x": 10})
    assert [i.params["x"] for i in study.pending()] == [5, 9, 2, 1, 3, 4, 10]
    assert [i.rank for i in study.pending()] == list(range(1, 8))
    with pytest.raises(ProvKBError):
        study.move(2, 0)


def test_resume_an_existing_study(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    name = _name("resume")
    space = {"lr": [1, 4, 1]}
    Study(name, space, gain="g", store=store).run(
        lambda p, cb: {"g": [p["lr"] * 1.0]}, max_iterations=2
    )
    again = Study(name, space, gain="g", store=store)
    assert not again.created and again.settings["status"] == kb.PAUSED
    assert [i.item_id for i in again.pending()] == [3, 4]
    with caplog.at_level("WARNING", logger="provkb.study"):
        other = Study(name, {"lr": [7]}, gain="g", store=store)
    assert "exists with another space" in caplog.text
    assert [i.params for i in other.pending()] == [{"lr": 3}, {"lr": 4}]
    opened = Study.open(name, store=store)  # the gain metric is stored
    summary = opened.run(lambda p, cb: {"g": [p["lr"] * 1.0]})
    assert [it.iteration for it in opened.history()] == [1, 2, 3, 4]
    assert (summary.iterations, summary.total_iterations, summary.best_gain) == (2, 4, 4.0)
    with pytest.raises(ProvKBError, match="no study named"):
        Study.open(_name("nothing"), store=store)


def test_cli_lists_and_edits(store: Store) -> None:
    name = _name("cli")
    study = Study(name, {"learning_rate": [0.01, 0.03, 0.01], "batch_size": [100]}, gain="g",
                  k=2, store=store)  # fmt: skip
    study.run(lambda p, cb: {"g": [0.5]}, max_iterations=1)
    moved = cli(store, "study", "move", name, "3", "--to", "1", "-r", "first")
    respaced = cli(
        store, "study", "respace", name, "--range", "learning_rate=0.03:0.05:0.01",
        "--values", "batch_size=100,1000", "--reason", "flat gain", "--person", "carol",
    )  # fmt: skip
    bad = cli(store, "study", "respace", name, "--range", "learning_rate=0.03:0.07")
    no_params = cli(store, "study", "add", name)
    stale = cli(store, "study", "remove", name, "2", "--version", "7")
    missing = cli(store, "study", "list", "no-such-study")
    listed = cli(store, "study", "list", name)
    studies = cli(store, "studies")
    as_json = cli(store, "study", "list", name, "--json")
    assert moved.returncode == 0, moved.stderr
    assert respaced.returncode == 0, respaced.stderr
    assert "takes effect from iteration 2" in respaced.stdout
    assert bad.returncode == 1 and "start:end:step" in bad.stderr
    assert no_params.returncode == 1 and "--param name=value" in no_params.stderr
    assert stale.returncode != 0 and "refused" in stale.stderr, stale.stderr
    assert missing.returncode == 1 and "no study named 'no-such-study'" in missing.stderr
    assert listed.returncode == 0, listed.stderr
    for text in ("queue", "iterations", "queue edits", "respace", "flat gain", "carol"):
        assert text in listed.stdout
    assert name in studies.stdout
    data = json.loads(as_json.stdout)
    pending = [i for i in data["items"] if i["status"] == "pending"]
    assert [(i["params"]["learning_rate"], i["params"]["batch_size"]) for i in pending] == [
        (0.03, 100), (0.03, 1000), (0.04, 100), (0.04, 1000), (0.05, 100), (0.05, 1000)
    ]  # fmt: skip
    assert [i["rank"] for i in pending] == [1, 2, 3, 4, 5, 6]
    assert data["iterations"] == [
        {"iteration": 1, "itemId": 1, "gain": 0.5, "movingAverage": 0.5,
         "runId": data["iterations"][0]["runId"], "status": "done"}
    ]  # fmt: skip
    assert [e["action"] for e in data["edits"]] == ["move", "respace"]
    help_text = cli(store, "study", "respace", "--help")
    assert help_text.returncode == 0 and "--range" in help_text.stdout


def test_gain_changes_names_the_respace(store: Store) -> None:
    name = _name("dlsteer")
    study = Study(name, {"lr": [1, 6, 1]}, gain="g", k=3, store=store)
    study.run(lambda p, cb: {"g": [0.1 * (p["lr"] > 10) + 0.3]}, max_iterations=3)
    edit = study.respace({"lr": [11, 13, 1]}, reason="poor interval")
    study.run(lambda p, cb: {"g": [0.5 if p["lr"] > 10 else 0.3]})
    rows = registry.run(store, "gain-changes", study=name, k=3).rows
    assert [(r["at"], r["actionId"]) for r in rows] == [(4, edit.node_id)]
    assert rows[0]["delta"] == pytest.approx(0.2)
    impact = registry.run(store, "steering-impact", study=name, k=3).rows
    assert [(r["at"], r["avgBefore"], r["avgAfter"]) for r in impact] == [
        (4, pytest.approx(0.3), pytest.approx(0.5))
    ]


def test_concurrent_creates_of_one_study_let_exactly_one_win(store: Store) -> None:
    """Several processes starting the same study at once: one creates it, the others
    are told it exists (on Neo4j two MERGEs of a new node both 'succeeded')."""
    name = _name("race")
    barrier = threading.Barrier(4)
    answers: list[bool] = []

    def create() -> None:
        queue = kb.StudyQueue(store, name)
        barrier.wait()
        answers.append(queue.create({"lr": [0.1]}, [{"lr": 0.1}], person="ada"))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(answers) == [False, False, False, True]
    assert len(kb.StudyQueue(store, name).items()) == 1


def test_an_unnamed_person_is_provkb_person(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVKB_PERSON", "grace")
    name = _name("who")
    queue = kb.StudyQueue(store, name)
    assert queue.create({"x": [1, 2]}, kb.expand({"x": [1, 2]}), "ada")
    queue.edit(1, {"x": 5})
    queue.remove(2, person="ada")
    assert [e["person"] for e in queue.edits()] == ["grace", "ada"]
    assert Study.open(name, store=store).person == "grace"
    who = store.read(
        "MATCH (a:SteeringAction)-[:WAS_ASSOCIATED_WITH]->(p:Person) WHERE a.study = $name "
        "RETURN p.id AS id ORDER BY id",
        name=name,
    ).rows
    assert [r["id"] for r in who] == [kb.person_node_id("ada"), kb.person_node_id("grace")]
