"""`KnowledgeBase`, the facade the CLI and the app use, on both engines.

Runs are recorded through capture's `RunRecorder` (`builders`); nothing is mocked.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import builders
import pytest

import provkb
from provkb import KnowledgeBase
from provkb.errors import (
    ConfigError,
    ProvKBError,
    QueryError,
    ReadOnlyViolation,
    SteeringRejected,
)
from provkb.kb.store import Store
from provkb.ontology import ENTITY, RunStatus


def _run(store: Store, finished: bool = True, name: str = "kb-run") -> str:
    """A captured run of three epochs (still running unless `finished`); its id."""
    run_id = uuid.uuid4().hex[:12]
    run = builders.RunBuilder(
        run_id,
        name=name,
        experiment="facade",
        started=datetime.now(UTC).isoformat(),
        hyperparameters=[
            builders.facts.Hyperparameter(
                "learning_rate", 0.01, builders.facts.Source.OPTIMIZER, tracked=True, steerable=True
            ),
        ],
    )
    for epoch in (1, 2, 3):
        run.epoch(epoch, {"loss": 1.0 / epoch, "val_accuracy": 0.5 + epoch / 10})
    if finished:
        run.finish()
    run.write(store)
    return run_id


def test_the_facade_is_a_top_level_name_and_its_constructor_does_no_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "config.toml"
    broken.write_text("[store\n", encoding="utf-8")  # unreadable TOML
    monkeypatch.setenv("PROVKB_CONFIG", str(broken))
    folder = tmp_path / "never-created"
    assert provkb.KnowledgeBase is KnowledgeBase
    with KnowledgeBase(folder) as kb:  # nothing read, started or created
        assert not folder.exists()
    with pytest.raises(ConfigError, match="cannot read config file"):
        kb.settings  # noqa: B018 - the first use reads the settings
    assert not folder.exists()


def test_named_queries_and_the_console(clean_store: Store) -> None:
    run_id = _run(clean_store)
    with KnowledgeBase(clean_store) as kb:
        epochs = kb.query("epochs", run=run_id)
        assert [row["epoch"] for row in epochs.rows] == [1, 2, 3]
        assert kb.query("runs", experiment="facade").rows[0]["runId"] == run_id
        assert "epochs" in [q.name for q in kb.queries()]
        with pytest.raises(QueryError, match="no run with id or name 'nosuch'"):
            kb.query("epochs", run="nosuch")
        with pytest.raises(QueryError, match="needs parameter 'run'"):
            KnowledgeBase.check_query("epochs", {})
        with pytest.raises(QueryError, match="64-bit integer"):
            kb.query("runs", limit=2**63)
        with pytest.raises(QueryError, match="'x.1': 18446744073709551616 does not fit"):
            kb.cypher("RETURN $x AS x", {"x": [1, 2**64]})
        with pytest.raises(ReadOnlyViolation):
            kb.cypher("CREATE (n:Scratch) RETURN n")
        assert kb.cypher("RETURN $x AS x", {"x": 2**63 - 1}).rows == [{"x": 2**63 - 1}]
    # a Store given to the facade stays open after it
    assert clean_store.read("RETURN 1 AS one").rows == [{"one": 1}]


def test_an_empty_answer_about_a_known_run_is_no_error(clean_store: Store) -> None:
    run_id = _run(clean_store)
    with KnowledgeBase(clean_store) as kb:
        assert kb.query("steering-history", run=run_id).rows == []
        with pytest.raises(QueryError, match="no study named 'nosuch'"):
            kb.query("steering-history", study="nosuch")


def test_export_and_import(clean_store: Store, tmp_path: Path) -> None:
    run_id = _run(clean_store)
    target = tmp_path / "run.json"
    with KnowledgeBase(clean_store) as kb:
        written = kb.export("provjson", target, run_id=run_id)
        assert written > 10 and target.stat().st_size > 0
        before = kb.counts()
        again = kb.import_file(target, person="ada")
        assert again.records == 0 and again.unchanged > 0 and kb.counts() == before
        clean_store.clear()
        report = kb.import_file(target, person="ada")
        assert report.records == written and report.import_id and report.person == "ada"
        assert [row["epoch"] for row in kb.query("epochs", run=run_id).rows] == [1, 2, 3]
        assert kb.document(run_id=run_id).get_records()


def test_steering_through_the_facade(clean_store: Store) -> None:
    running, ended = _run(clean_store, finished=False), _run(clean_store, name="ended")
    with KnowledgeBase(clean_store) as kb:
        assert kb.run_state(running)["status"] == RunStatus.RUNNING
        assert kb.run_state("nosuch") is None
        (request,) = kb.steer(running, set={"learning_rate": 0.001}, reason="plateau")
        assert kb.steering_request(request.request_id).status == "pending"
        note = kb.request(running, "note", note="looks fine", person="ada", client="10.0.0.9")
        assert kb.steering_request(note.request_id).person == "ada"
        with pytest.raises(SteeringRejected) as rejected:
            kb.steer(ended, stop=True)
        assert [r.status for r in rejected.value.requests] == ["rejected"]


def test_studies_are_created_opened_and_edited(clean_store: Store) -> None:
    with KnowledgeBase(clean_store) as kb:
        queue = kb.create_study(
            "kb-study", {"learning_rate": [0.01, 0.03, 0.01]}, gain="val_accuracy", k=2
        )
        assert [i.params["learning_rate"] for i in queue.items()] == [0.01, 0.02, 0.03]
        result = kb.study("kb-study").edit(2, {"learning_rate": 0.5}, "try high", "ada")
        assert result.versions == {2: 2}
        assert kb.study("kb-study").item(2).params == {"learning_rate": 0.5}
        assert [s["name"] for s in kb.studies()] == ["kb-study"]
        again = kb.create_study("kb-study", {"learning_rate": [1, 2]})  # exists: kept
        assert len(again.items()) == 3
        with pytest.raises(ProvKBError, match=r"no study named 'other' \(studies: kb-study\)"):
            kb.study("other")
        with pytest.raises(ProvKBError, match="mode is 'max' or 'min'"):
            kb.create_study("bad", {"x": [1]}, mode="best")


def test_status_lists_the_capture_backlog(store: Store, tmp_path: Path) -> None:
    from dataclasses import replace

    from provkb.kb.journal import Journal, journal_folder
    from provkb.kb.records import GraphBatch

    settings = replace(store.settings, home=tmp_path)
    kb = KnowledgeBase(settings=settings)
    status = kb.status()
    assert (status.journals, status.quarantined, status.server) == ([], [], None)
    journal = Journal(journal_folder(tmp_path), "train-1")
    batch = GraphBatch()
    batch.add_node("provkb:test/1", ENTITY, name="x", runId="r1")
    journal.append(batch)
    journal.close()
    (backlog,) = kb.status().journals
    assert backlog.name == "train-1" and backlog.status.pending_by_run == {"r1": 1}


def test_every_setting_names_its_layers() -> None:
    """config.SOURCES names each setting's environment variable and file key."""
    from dataclasses import fields

    from provkb import config

    assert config.LAYERS == ("argument", "environment", "config file", "default")
    assert set(config.SOURCES) == {f.name for f in fields(config.Settings)}
    assert config.SOURCES["console_rows"] == ("PROVKB_CONSOLE_ROWS", "console_rows")


def _dataset_run(store: Store, experiment: str, *fingerprints: str) -> str:
    run_id = uuid.uuid4().hex[:12]
    roles = ("train", "validation")[: len(fingerprints)]
    datasets = {
        r: builders.dataset(f, f"data-{f}") for r, f in zip(roles, fingerprints, strict=True)
    }
    run = builders.RunBuilder(
        run_id,
        experiment=experiment,
        started=datetime.now(UTC).isoformat(),
        datasets=datasets,
    )
    run.epoch(1, {"loss": 0.5}).finish().write(store)
    return run_id


def test_delete_removes_only_what_the_runs_produced_and_records_it(clean_store: Store) -> None:
    shared, own = "f" * 16, "e" * 16
    a1 = _dataset_run(clean_store, "del-a", shared)
    a2 = _dataset_run(clean_store, "del-a", shared)
    b1 = _dataset_run(clean_store, "del-b", shared, own)
    fingerprints = "MATCH (d:Entity) WHERE d:Dataset RETURN d.fingerprint AS f ORDER BY f"
    with KnowledgeBase(clean_store) as kb:
        assert kb.deletion_plan(experiment="del-a").runs == sorted([a1, a2])
        report = kb.delete(run=a1, person="ada")
        assert report.plan.runs == [a1] and report.nodes >= 3 and report.person == "ada"
        with pytest.raises(QueryError, match="no run with id or name"):
            kb.query("epochs", run=a1)
        assert len(kb.query("epochs", run=a2).rows) == 1
        assert [r["f"] for r in kb.cypher(fingerprints).rows] == [own, shared]
        kb.delete(experiment="del-b")
        assert [r["f"] for r in kb.cypher(fingerprints).rows] == [shared]  # a2 uses it
        records = kb.cypher(
            "MATCH (d:Activity)-[:WAS_ASSOCIATED_WITH]->(p:Agent) WHERE d:Deletion "
            "RETURN d.deletedScope AS scope, d.deletedName AS name, d.deletedRuns AS runs, "
            "p.name AS person ORDER BY d.startedAtTime"
        ).rows
        assert [(r["scope"], r["runs"]) for r in records] == [("run", [a1]), ("experiment", [b1])]
        assert records[0]["person"] == "ada" and records[1]["name"] == "del-b"
        kb.create_study("del-study", {"learning_rate": [0.1, 0.2]})
        kb.delete(study="del-study")
        assert kb.studies() == []
        left = kb.cypher("MATCH (n) WHERE n.study = 'del-study' RETURN count(n) AS n").rows
        assert left == [{"n": 0}]
        with pytest.raises(ProvKBError, match="no run with id 'nosuch'; nothing deleted"):
            kb.delete(run="nosuch")
        with pytest.raises(ProvKBError, match="delete exactly one of"):
            kb.delete(run=a2, experiment="del-a")
