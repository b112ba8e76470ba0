"""Search sessions (issue 16): a study narrowed from another one's best trials, its PROV
chain (`study-lineage`), early stopping and pruning per hyperparameter value
(`study-trial-status`), Keras-Prov Q5/Q6 (`seed-q5`, `seed-q6`), the CLI and the export,
on the real store; the done-when search trains tiny models on digits."""

from __future__ import annotations

import json
import re
import statistics
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import cli
from test_ui_app import app_env  # noqa: F401  (fixture)

from provkb.capture.study import Study
from provkb.errors import ProvKBError, QueryError, SessionRefused
from provkb.kb import formats
from provkb.kb.export import build_document, render
from provkb.kb.provimport import import_file
from provkb.kb.store import Store
from provkb.kb.study import pruning
from provkb.kb.study.model import TrialItem
from provkb.kb.study.sessions import plan_next
from provkb.knowledge_base import KnowledgeBase
from provkb.queries import registry

EPOCHS = 4


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _item(n: int, params: dict, gain: float | None, status: str = "done") -> TrialItem:
    return TrialItem(
        item_id=n, version=1, params=params, status=status, position=float(n), iteration=n,
        gain=gain, run_id=f"run{n}", node_id=f"provkb:study/p/item/{n}/v1",
    )  # fmt: skip


# -- the narrowing rule (no store) ------------------------------------------------------
def test_narrowing_takes_min_and_max_of_the_top_trials_and_keeps_the_rest() -> None:
    space = {"learning_rate": [0.01, 0.05, 0.01], "batch_size": [16, 32, 64], "seed": 7}
    settings = {"space": space, "mode": "max"}
    grid = [(0.01, 16), (0.02, 64), (0.03, 16), (0.04, 32), (0.05, 64)]
    gains = [0.5, 0.9, 0.7, 0.8, 0.1]
    items = [_item(n, {"learning_rate": lr, "batch_size": bs, "seed": 7}, g)
             for n, ((lr, bs), g) in enumerate(zip(grid, gains, strict=True), start=1)]  # fmt: skip
    items.append(_item(6, {"learning_rate": 0.05, "batch_size": 16, "seed": 7}, None, "pending"))
    plan = plan_next("p", settings, items, "q", top=3, narrow=["learning_rate"],
                     add={"momentum": [0.5, 0.9, 0.1]}, reason="best three")  # fmt: skip
    assert [(k.rank, k.item_id, k.gain) for k in plan.kept] == [
        (1, 2, 0.9),
        (2, 4, 0.8),
        (3, 3, 0.7),
    ]
    assert plan.space == {
        "learning_rate": [0.02, 0.04, 0.01],  # min and max of 0.02, 0.04, 0.03; step kept
        "batch_size": [16, 32, 64],  # not narrowed: the parent's range
        "seed": 7,
        "momentum": [0.5, 0.9, 0.1],
    }
    assert plan.changes() == {
        "learning_rate": ([0.01, 0.05, 0.01], [0.02, 0.04, 0.01]),
        "momentum": (None, [0.5, 0.9, 0.1]),
    }
    every = plan_next("p", settings, items, "q", top=2)  # narrow everything by default
    assert every.space == {"learning_rate": [0.02, 0.04, 0.01], "batch_size": [32, 64],
                           "seed": 7}  # fmt: skip
    assert every.narrowed == ["learning_rate", "batch_size", "seed"]
    kept = plan_next("p", settings, items, "q", top=2, keep=["batch_size"],
                     ranges={"seed": [1, 2]})  # fmt: skip
    assert kept.space == {"learning_rate": [0.02, 0.04, 0.01], "batch_size": [16, 32, 64],
                          "seed": [1, 2]}  # fmt: skip
    assert (kept.narrowed, kept.given) == (["learning_rate"], ["seed"])
    low = plan_next("p", {**settings, "mode": "min"}, items, "q", top=1)
    assert low.kept[0].item_id == 5 and low.space["learning_rate"] == [0.05, 0.05, 0.01]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top": 6}, "top 6 is more than the 5 finished trial"),
        ({"top": 0}, "top is an integer >= 1"),
        ({"narrow": ["momentum"]}, "has no hyperparameter 'momentum' to narrow"),
        ({"keep": ["nope"]}, "no hyperparameter 'nope' to keep"),
        ({"add": {"learning_rate": [1, 2]}}, "in the space of 'p' already"),
        ({"narrow": ["learning_rate"], "keep": ["learning_rate"]}, "both narrowed and kept"),
        ({"name": "p"}, "a name of its own"),
        ({"name": " "}, "non-empty study name"),
        ({"ranges": {"x": {"range": [3, 1, 1]}}}, "space is not valid"),
    ],
)
def test_bad_next_sessions_are_refused(kwargs: dict, message: str) -> None:
    items = [_item(n, {"learning_rate": n / 100}, n / 10) for n in range(1, 6)]
    args = {"name": "q", "top": 3, **kwargs}
    with pytest.raises(SessionRefused, match=message):
        plan_next("p", {"space": {"learning_rate": [0.01, 0.05, 0.01]}}, items, **args)


def test_a_parent_without_finished_trials_is_refused() -> None:
    items = [_item(1, {"x": 1}, None, "pending"), _item(2, {"x": 2}, None, "failed")]
    with pytest.raises(SessionRefused, match="no finished trial with a gain"):
        plan_next("p", {"space": {"x": [1, 2]}}, items, "q", top=1)


def test_median_pruning_rule() -> None:
    rule = pruning.MedianPruning(after_epoch=2, min_trials=2)
    assert pruning.MedianPruning.from_json(rule.to_json()) == rule
    medians = pruning.Medians(2, {1: [0.1, 0.3], 2: [0.4, 0.6], 3: [0.5]})
    assert pruning.judge(rule, medians, "max", 1, 0.0) is None  # before after_epoch
    assert pruning.judge(rule, medians, "max", 2, 0.5) is None  # equal to the median: kept
    assert pruning.judge(rule, medians, "max", 2, 0.49) == pytest.approx(0.5)
    assert pruning.judge(rule, medians, "min", 2, 0.51) == pytest.approx(0.5)
    assert pruning.judge(rule, medians, "max", 4, 0.0) is None  # no finished trial got there
    assert pruning.judge(rule, pruning.Medians(1, medians.by_epoch), "max", 2, 0.0) is None
    for bad in ({"after_epoch": 0}, {"min_trials": True}, {"metric": ""}):
        with pytest.raises(ProvKBError, match="pruning"):
            pruning.MedianPruning(**bad)


# -- the done-when search on digits -----------------------------------------------------
@dataclass
class Trial:
    session: int
    params: dict[str, Any]
    history: dict[str, list[float]]
    run_id: str = ""


@dataclass
class Search:
    first: Study
    second: Study
    experiment: str
    trials: list[Trial] = field(default_factory=list)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data[:320] / 16.0).astype("float32"), digits.target[:320]


@pytest.fixture(scope="module")
def search(store: Store) -> Search:
    """Two sessions on digits: learning rates with SGD (EarlyStopping for lr 0.1, a
    median pruning rule), then the top 3 narrowed, momentum added."""
    keras = pytest.importorskip("keras")
    x, y = _digits()
    trials: list[Trial] = []

    def train(session: int):
        def fit(params, callbacks):
            keras.utils.set_random_seed(3)
            model = keras.Sequential([
                keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ])  # fmt: skip
            optimizer = keras.optimizers.SGD(
                params["learning_rate"], momentum=params.get("momentum", 0.0)
            )
            model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
            extra = []
            if params["learning_rate"] == 0.1:  # stops after epoch 2: no 1.0 improvement
                extra.append(keras.callbacks.EarlyStopping("val_loss", min_delta=1.0, patience=0))
            history = model.fit(x, y, validation_split=0.25, epochs=EPOCHS, batch_size=64,
                                callbacks=callbacks + extra, verbose=0)  # fmt: skip
            trials.append(Trial(session, dict(params), dict(history.history), callbacks[0].run_id))
            return history

        return fit

    name = _name("digits-s1")
    first = Study(name, {"learning_rate": [0.05, 0.2, 0.05], "batch_size": [64]},
                  gain="val_accuracy", store=store, person="ada",
                  pruning=pruning.MedianPruning(after_epoch=2, min_trials=1))  # fmt: skip
    first.run(train(1))
    second = first.next(f"{name}-s2", top=3, narrow=["learning_rate"],
                        add={"momentum": [0.5, 0.9]}, reason="the best three")  # fmt: skip
    second.run(train(2))
    return Search(first, second, name, trials)


def _gain(trial: Trial) -> float:
    return max(trial.history["val_accuracy"])


def _expected_prune(trial: Trial, finished_before: list[Trial]) -> int | None:
    """The epoch the median rule prunes `trial` at, recomputed from Keras' History."""
    if len(finished_before) < 1:
        return None
    values = trial.history["val_accuracy"]
    for epoch in range(2, len(values) + 1):
        at = [t.history["val_accuracy"][epoch - 1] for t in finished_before
              if len(t.history["val_accuracy"]) >= epoch]  # fmt: skip
        if at and max(values[:epoch]) < statistics.median(at):
            return epoch
    return None


def test_two_sessions_narrow_from_the_top_three(store: Store, search: Search) -> None:
    first = [t for t in search.trials if t.session == 1]
    second = [t for t in search.trials if t.session == 2]
    assert len(first) == 4
    top3 = sorted(first, key=lambda t: -_gain(t))[:3]
    lrs = [t.params["learning_rate"] for t in top3]
    space = search.second.settings["space"]
    assert space["learning_rate"] == [min(lrs), max(lrs), 0.05] or (
        min(lrs) == max(lrs) and space["learning_rate"] == [min(lrs), min(lrs), 0.05]
    )
    assert space["batch_size"] == [64] and space["momentum"] == [0.5, 0.9]
    assert search.second.settings["experiment"] == search.experiment  # inherited
    narrowed = {round(t.params["learning_rate"], 6) for t in second}
    assert narrowed <= {round(v, 6) for v in (0.05, 0.1, 0.15, 0.2) if min(lrs) <= v <= max(lrs)}
    assert {t.params["momentum"] for t in second} == {0.5, 0.9}

    lineage = registry.run(store, "study-lineage", study=search.second.name).rows
    assert [(r["session"], r["study"], r["parent"]) for r in lineage] == [
        (1, search.first.name, None),
        (2, search.second.name, search.first.name),
    ]
    one, two = lineage
    assert (one["person"], two["person"], two["reason"], two["top"]) == (
        "ada", "ada", "the best three", 3,
    )  # fmt: skip
    assert two["keptRuns"] == [t.run_id for t in top3]
    assert two["keptGains"] == pytest.approx([_gain(t) for t in top3])
    assert (two["narrowed"], two["added"]) == (["learning_rate"], ["momentum"])
    assert json.loads(two["space"]) == space
    assert one["bestGain"] == pytest.approx(max(_gain(t) for t in first))
    assert two["bestGain"] == pytest.approx(max(_gain(t) for t in second))
    assert (one["trials"], two["trials"]) == (len(first), len(second))
    assert registry.run(store, "study-lineage", study=search.first.name).rows[0]["session"] == 1

    # the narrowing as PROV: the person, the parent's space and top-3 trials, the new space
    prov = store.read(
        "MATCH (n:Narrowing)<-[:WAS_INFORMED_BY]-(s:Study {name: $name}) "
        "MATCH (n)-[:WAS_ASSOCIATED_WITH]->(p:Person) "
        "MATCH (n)-[:WAS_INFORMED_BY]->(parent:Study) "
        "MATCH (n)-[:USED]->(old:StudySpace)<-[:USED]-(parent) "
        "MATCH (new:StudySpace)-[:WAS_GENERATED_BY]->(n) "
        "MATCH (new)-[:WAS_DERIVED_FROM]->(old) MATCH (s)-[:USED]->(new) "
        "RETURN p.name AS person, parent.name AS parent, new.space AS space, "
        "[(n)-[u:USED]->(i:TrialItem) | [u.rank, i.run]] AS kept, "
        "[(n)-[u:USED]->(m:Model) | [u.rank, m.runId]] AS models",
        name=search.second.name,
    ).rows
    assert len(prov) == 1, prov
    assert (prov[0]["person"], prov[0]["parent"]) == ("ada", search.first.name)
    assert json.loads(prov[0]["space"]) == space
    assert sorted(prov[0]["kept"]) == [[n, t.run_id] for n, t in enumerate(top3, start=1)]
    assert sorted(prov[0]["models"]) == [[n, t.run_id] for n, t in enumerate(top3, start=1)]


def test_early_stopped_and_pruned_trials_are_counted_per_value(
    store: Store, search: Search
) -> None:
    for session, study in ((1, search.first), (2, search.second)):
        trials = [t for t in search.trials if t.session == session]
        runs = {
            r["runId"]: r
            for r in store.read(
                "MATCH (r:TrainingRun)-[:WAS_INFORMED_BY]->(:Study {name: $name}) "
                "RETURN r.runId AS runId, r.status AS status, r.prunedEpoch AS pruned, "
                "r.pruneMedian AS median",
                name=study.name,
            ).rows
        }
        finished_before: list[Trial] = []  # the rule compares with this study's own
        expected: dict[tuple[str, Any], list[int]] = {}
        for trial in trials:
            pruned = _expected_prune(trial, finished_before)
            assert runs[trial.run_id]["pruned"] == pruned, (trial.params, trial.history)
            stopped = len(trial.history["loss"]) < EPOCHS
            assert runs[trial.run_id]["status"] == ("stopped_early" if stopped else "completed")
            if not stopped:
                finished_before.append(trial)
            for name, value in trial.params.items():
                counts = expected.setdefault((name, value), [0, 0, 0])
                counts[0 if not stopped else 1] += 1
                counts[2] += pruned is not None
        rows = registry.run(store, "study-trial-status", study=study.name,
                            hyperparameter="learning_rate").rows  # fmt: skip
        got = {round(r["value"], 6): (r["finished"], r["stoppedEarly"], r["pruned"]) for r in rows}
        want = {round(v, 6): tuple(c) for (n, v), c in expected.items() if n == "learning_rate"}
        assert got == want
        assert all(r["trials"] == r["finished"] + r["stoppedEarly"] for r in rows)
        assert any(r["earlyStopping"] for r in rows) == any(
            t.params["learning_rate"] == 0.1 and runs[t.run_id]["pruned"] is None
            and len(t.history["loss"]) < EPOCHS for t in trials
        )  # fmt: skip
        varying = registry.run(store, "study-trial-status", study=study.name).rows
        assert "learning_rate" in {r["hyperparameter"] for r in varying}
        assert "batch_size" not in {r["hyperparameter"] for r in varying}  # one value


def test_seed_q5_and_q6_against_keras_history(store: Store, search: Search) -> None:
    def best(t: Trial) -> tuple[float, int]:
        losses = t.history["val_loss"]
        value = min(losses)
        return value, losses.index(value) + 1

    ranked = sorted(search.trials, key=lambda t: (best(t)[0], t.run_id))
    rows = registry.run(store, "seed-q5", experiment=search.experiment,
                        hyperparameters="learning_rate,momentum", limit=3).rows  # fmt: skip
    assert len(rows) == 3
    for row, trial in zip(rows, ranked[:3], strict=True):
        value, epoch = best(trial)
        assert (row["bestRun"], row["runs"], row["runIds"]) == (trial.run_id, 1, [trial.run_id])
        assert row["value"] == pytest.approx(value) and row["epoch"] == epoch
        assert row["secondValue"] == pytest.approx(trial.history["val_accuracy"][epoch - 1])
        assert row["hyperparameters"] == ["learning_rate", "momentum"]
        assert row["values"] == pytest.approx(
            [trial.params["learning_rate"], trial.params.get("momentum", 0.0)]
        )
    top = ranked[0]
    answer = registry.run(store, "seed-q6", combination=rows[0]["combination"],
                          experiment=search.experiment).rows  # fmt: skip
    losses = top.history["loss"]
    expected = sorted(range(1, len(losses) + 1), key=lambda e: (losses[e - 1], e))[:5]
    assert [(r["runId"], r["epoch"]) for r in answer] == [(top.run_id, e) for e in expected]
    assert [r["value"] for r in answer] == pytest.approx([losses[e - 1] for e in expected])
    assert all(r["elapsedSeconds"] > 0 and r["endedAt"] for r in answer)
    # by hand, in the usual spelling; desc and another metric
    text = (
        f"learning_rate={top.params['learning_rate']}, momentum={top.params.get('momentum', 0.0)}"
    )
    best_acc = registry.run(store, "seed-q6", combination=text, metric="val_accuracy",
                            direction="desc", limit=1, experiment=search.experiment)  # fmt: skip
    best_acc = best_acc.rows
    assert best_acc[0]["value"] == pytest.approx(max(top.history["val_accuracy"]))
    assert registry.run(store, "seed-q6", combination="learning_rate=9.5",
                        experiment=search.experiment).rows == []  # fmt: skip
    with pytest.raises(QueryError, match="direction"):
        registry.run(store, "seed-q5", direction="up")


def test_export_carries_the_sessions(store: Store, search: Search, tmp_path: Path) -> None:
    doc = build_document(store, experiment=search.experiment)
    narrowing = f"provkb:study/{search.second.name}/narrowing"
    for fmt in ("provjson", "turtle"):
        text = render(doc, fmt)
        back = formats.FORMATS[fmt].reader(text)
        assert back == doc, fmt
        (record,) = back.get_record(narrowing)
        assert "provkb:Narrowing" in {str(t) for t in record.get_asserted_types()}
        relations = {
            (str(r.get_type()), str(r.formal_attributes[1][1]))
            for r in back.get_records()
            if r.is_relation() and str(r.formal_attributes[0][1]) == narrowing
        }
        kinds = {kind for kind, _ in relations}
        assert {"prov:Usage", "prov:Association", "prov:Communication"} <= kinds, relations
        path = tmp_path / f"sessions{formats.FORMATS[fmt].suffix}"
        path.write_text(text)
        import_file(store, path)  # the same records again: nothing changes
        assert build_document(store, experiment=search.experiment) == doc


# -- the facade and the CLI (no training) -----------------------------------------------
def _quick_parent(store: Store) -> Study:
    parent = Study(_name("cli"), {"lr": [1, 5, 1], "bs": [16, 32]}, gain="g", store=store)
    parent.run(lambda p, cb: {"g": [p["lr"] * 1.0 + p["bs"] / 100]})
    return parent


def test_cli_next_and_errors(store: Store) -> None:
    parent = _quick_parent(store)
    new = f"{parent.name}-next"
    dry = cli(store, "study", "next", parent.name, new, "--top", "3", "--narrow", "lr",
              "--add", "momentum=0.5:0.9:0.2", "--dry-run")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "lr: [1, 5, 1] -> [4, 5, 1]" in dry.stdout and "(new) -> [0.5, 0.9, 0.2]" in dry.stdout
    assert "not started" in dry.stdout
    with pytest.raises(ProvKBError, match="no study named"):
        KnowledgeBase(store).study(new)
    started = cli(store, "study", "next", parent.name, new, "--top", "3", "--narrow", "lr",
                  "--add", "opt=sgd,adam", "--reason", "top 3", "--person", "carol")  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "session 2" in started.stdout and "8 item(s)" in started.stdout
    lineage = cli(store, "query", "study-lineage", "-p", f"study={new}", "--format", "json")
    assert lineage.returncode == 0, lineage.stderr
    assert "carol" in lineage.stdout and "top 3" in lineage.stdout
    for args, message in (
        (["--top", "99"], "top 99 is more than the 10 finished"),
        (["--narrow", "nope"], "no hyperparameter 'nope' to narrow"),
        (["--add", "lr=1:2:1"], "in the space of"),
        (["--add", "x=1:2"], "start:end:step"),
    ):
        bad = cli(store, "study", "next", parent.name, _name("bad"), *args)
        assert bad.returncode == 1 and message in bad.stderr, (args, bad.stderr)
    again = cli(store, "study", "next", parent.name, new)
    assert again.returncode == 1 and "exists already" in again.stderr
    unknown = cli(store, "study", "next", "no-such-study", _name("x"))
    assert unknown.returncode == 1 and "no study named 'no-such-study'" in unknown.stderr


def test_knowledge_base_next_study(store: Store) -> None:
    parent = _quick_parent(store)
    with KnowledgeBase(store) as kb:
        session = kb.next_study(parent.name, f"{parent.name}-2", top=2, keep=["bs"],
                                ranges={"lr": [5, 7, 1]}, person="dora")  # fmt: skip
        assert session.session == 2 and session.plan.space == {"lr": [5, 7, 1], "bs": [16, 32]}
        assert session.items == 6 and session.queue.settings()["parentStudy"] == parent.name
        with pytest.raises(QueryError, match="no study named"):
            kb.query("study-lineage", study=_name("nothing"))
        with pytest.raises(QueryError, match="name=value pairs"):
            kb.query("seed-q6", combination="learning_rate")


@pytest.mark.usefixtures("app_env")
def test_study_page_shows_the_session_chain_and_trial_status(store: Store, search: Search) -> None:
    from test_ui_app import frames, open_page

    at = open_page("page_study.py", study_name=search.second.name)
    chain = next(f for f in frames(at) if "kept" in f.columns)
    assert list(chain["study"]) == [search.first.name, search.second.name]
    assert list(chain["by"]) == ["ada", "ada"] and list(chain["why"])[1] == "the best three"
    bars = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (status,) = [c for c in bars if any(t.get("orientation") == "h" for t in c["data"])]
    assert [t["name"] for t in status["data"]] == ["finished", "stoppedEarly", "failed"]
    rows = registry.run(store, "study-trial-status", study=search.second.name).rows
    assert len(status["data"][0]["y"]) == len(rows)
    assert status["data"][0]["x"] == [r["finished"] for r in rows]
    assert status["data"][1]["x"] == [r["stoppedEarly"] for r in rows]


# -- the Compare page: sessions (colour, the next session from the chart's top k) -------
def _chart(at) -> dict:
    """The Compare page's parallel-coordinates trace."""
    return json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]


def _legend(at) -> dict[str, str]:
    """The Compare page's colour legend: group -> colour."""
    text = next(m.value for m in at.markdown if m.value.startswith("Colours: "))
    return {
        g.strip(): c
        for c, g in re.findall(r"<span style='color:(#[0-9a-fA-F]+)'>■</span> ([^<]+?)(?= · <|$)",
                               text)
    }  # fmt: skip


def _line_colours(trace: dict) -> list[str]:
    """Each line's colour of a grouped colouring (codes over a stepwise colour scale)."""
    line = trace["line"]
    span = line["cmax"] - line["cmin"]
    scale = line["colorscale"]

    def colour(code: float) -> str:
        at = (code - line["cmin"]) / span
        return [c for pos, c in scale if pos <= at + 1e-9][-1]

    return [colour(code) for code in line["color"]]


def _top(trials: list[Trial], k: int) -> list[Trial]:
    """The k best by gain, ties by iteration (the trials are in iteration order)."""
    return sorted(trials, key=lambda t: -_gain(t))[:k]


@pytest.mark.usefixtures("app_env")
def test_compare_page_colours_the_session_chain_by_session(store: Store, search: Search) -> None:
    from test_ui_app import open_page

    first, second = search.first.name, search.second.name
    at = open_page("page_compare.py")
    scope = at.selectbox(key="cmp_scope")
    assert f"session chain: {second}" in scope.options
    assert f"session chain: {first}" not in scope.options  # a first session: its study
    scope.set_value(f"session chain: {second}").run()
    at.selectbox(key="cmp_colour").set_value("session").run()
    assert not at.exception and not at.error
    trace = _chart(at)
    assert trace["dimensions"][0]["label"] == "max gain"
    legend = _legend(at)
    assert list(legend) == [f"session 1 · {first}", f"session 2 · {second}"]
    colours = _line_colours(trace)
    gains = trace["dimensions"][0]["values"]
    for session, group in ((1, f"session 1 · {first}"), (2, f"session 2 · {second}")):
        mine = [g for g, c in zip(gains, colours, strict=True) if c == legend[group]]
        want = [_gain(t) for t in search.trials if t.session == session]
        assert sorted(mine) == pytest.approx(sorted(want)), group
    assert len(colours) == len(search.trials)


@pytest.mark.usefixtures("app_env")
def test_compare_page_starts_the_next_session_from_the_top_k(store: Store, search: Search) -> None:
    from test_ui_app import frames, open_page

    second = search.second.name
    at = open_page("page_compare.py")
    at.selectbox(key="cmp_scope").set_value(f"session chain: {second}").run()
    at.toggle(key=f"cmp_next:{second}").set_value(True).run()
    mine = [t for t in search.trials if t.session == 2]
    assert at.number_input(key=f"cmp_next_k:{second}").value == min(10, len(mine))
    assert at.text_input(key=f"cmp_next_name:{second}").value == f"{second}-s3"
    at.number_input(key=f"cmp_next_k:{second}").set_value(3).run()
    at.multiselect(key=f"cmp_next_narrow:{second}").set_value(["learning_rate"]).run()
    at.text_input(key=f"cmp_next_reason:{second}").set_value("top 3 on the chart").run()

    # the top 3 (by gain) keep their colours; every other line is grey, below the scale
    line = _chart(at)["line"]
    top3 = _top(mine, 3)
    lit = [c for c in line["color"] if c > line["cmin"]]
    assert sorted(lit) == pytest.approx(sorted(_gain(t) for t in top3))
    assert len(line["color"]) - len(lit) == len(search.trials) - 3
    assert line["colorscale"][0][1] == line["colorscale"][1][1]  # the grey of the others
    assert "other runs (not selected)" in _legend(at)

    at.button(key="cmp_next_preview").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    plan = KnowledgeBase(store).preview_next_study(
        second, f"{second}-s3", top=3, narrow=["learning_rate"]
    )
    ranges = next(f for f in frames(at) if "after" in f.columns)
    shown = {r["hyperparameter"]: (r["before"], r["after"], r["change"])
             for r in ranges.to_dict("records")}  # fmt: skip
    parent_space = search.second.settings["space"]
    assert set(shown) == set(plan.space) == set(parent_space)
    for name, spec in plan.space.items():
        assert json.loads(shown[name][0]) == plan.parent_space[name] == parent_space[name]
        assert json.loads(shown[name][1]) == spec
    lrs = [t.params["learning_rate"] for t in top3]
    step = parent_space["learning_rate"][2]
    assert json.loads(shown["learning_rate"][1]) == pytest.approx([min(lrs), max(lrs), step])
    assert shown["learning_rate"][2] == "narrowed" and shown["momentum"][2] == "kept"
    kept = next(f for f in frames(at) if "rank" in f.columns)
    assert list(kept["runId"]) == [k.run_id for k in plan.kept] == [t.run_id for t in top3]
    with pytest.raises(ProvKBError, match="no study named"):
        KnowledgeBase(store).study(f"{second}-s3")  # a preview writes nothing

    at.button(key="cmp_next_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(f"Started study {second}-s3: session 3" in s.value for s in at.success)
    settings = KnowledgeBase(store).study(f"{second}-s3").settings()
    assert (settings["parentStudy"], settings["session"]) == (second, 3)
    assert settings["space"] == plan.space
    lineage = registry.run(store, "study-lineage", study=f"{second}-s3").rows
    assert [(r["session"], r["study"], r["parent"]) for r in lineage] == [
        (1, search.first.name, None),
        (2, second, search.first.name),
        (3, f"{second}-s3", second),
    ]
    assert lineage[2]["reason"] == "top 3 on the chart" and lineage[2]["top"] == 3
    assert lineage[2]["keptRuns"] == [t.run_id for t in top3]


@pytest.mark.usefixtures("app_env")
def test_compare_page_refuses_a_bad_next_session(store: Store, search: Search) -> None:
    from test_ui_app import open_page

    first = search.first.name
    at = open_page("page_compare.py")
    at.selectbox(key="cmp_scope").set_value(f"study: {first}").run()
    at.toggle(key=f"cmp_next:{first}").set_value(True).run()
    assert at.number_input(key=f"cmp_next_k:{first}").value == 4  # min(10, 4 finished)
    new = _name("refused")
    at.text_input(key=f"cmp_next_name:{first}").set_value(new).run()
    for add, message in (
        ("momentum=0.5:0.9", "give start:end:step"),
        ("momentum", "is not name=start:end:step"),
        ("learning_rate=0.1:0.2:0.05", "in the space of"),
    ):
        at.text_input(key=f"cmp_next_add:{first}").set_value(add).run()
        at.button(key="cmp_next_preview").click().run()
        assert not at.exception
        assert any(message in e.value for e in at.error), (add, [e.value for e in at.error])
        assert not [b for b in at.button if b.key == "cmp_next_start"]  # nothing to start
    at.text_input(key=f"cmp_next_add:{first}").set_value("").run()
    at.text_input(key=f"cmp_next_name:{first}").set_value(search.second.name).run()
    at.button(key="cmp_next_preview").click().run()
    assert any("exists already" in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if b.key == "cmp_next_start"]
    with pytest.raises(ProvKBError, match="no study named"):
        KnowledgeBase(store).study(new)
    sessions = [r["session"] for r in registry.run(store, "study-lineage",
                                                   study=search.second.name).rows]  # fmt: skip
    assert sessions == [1, 2]  # the existing study is untouched


def test_pruning_callback_stops_a_trial_worse_than_the_median() -> None:
    keras = pytest.importorskip("keras")
    from provkb.capture.study import _pruning_callback

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    rule = pruning.MedianPruning(after_epoch=2, min_trials=2)
    medians = pruning.Medians(2, {1: [0.5, 0.7], 2: [0.6, 0.8], 3: [0.9, 0.9]})
    callback = _pruning_callback(rule, medians, "max", "val_accuracy")
    callback.set_model(model)
    model.stop_training = False
    callback.on_epoch_end(0, {"val_accuracy": 0.1})  # epoch 1: before after_epoch
    callback.on_epoch_end(1, {"val_accuracy": 0.75})  # best 0.75 >= median 0.7: goes on
    assert not model.stop_training and callback.pruned is None
    callback.on_epoch_end(2, {"val_accuracy": float("nan")})  # best still 0.75 < 0.9
    assert model.stop_training
    assert callback.pruned == {"prunedEpoch": 3, "prunedValue": 0.75, "pruneMedian": 0.9}
