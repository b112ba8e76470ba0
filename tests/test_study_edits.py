"""Study edits land only on the exact item version the person saw (issue 15), on both
engines: through the queue API and `KnowledgeBase.edit_study`, the `provkb study` CLI and
the Study page (streamlit.testing), including a claim that races the edit; and the
Study page's gain axis, empty cells and replace action."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from helpers import cli
from streamlit.testing.v1 import AppTest

from provkb.capture.study import Study
from provkb.errors import ProvKBError, StaleStudyEdit, StudyEditRefused
from provkb.kb.store import Store
from provkb.knowledge_base import KnowledgeBase
from provkb.ui import common

PAGE = str(Path(__file__).resolve().parents[1] / "ui" / "page_study.py")
SPACE = {"learning_rate": {"values": list(range(1, 13))}, "batch_size": [32]}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def snapshot(store: Store, name: str) -> list[dict]:
    """Every item version, edit and study state of a study: what a refusal must keep."""
    return store.read(
        "MATCH (n) WHERE n.study = $name AND (n:TrialItem OR n:SteeringAction OR n:StudyState) "
        "RETURN n.id AS id, properties(n) AS props ORDER BY id",
        name=name,
    ).rows


def twelve_items(store: Store, name: str) -> KnowledgeBase:
    kb = KnowledgeBase(store)
    kb.create_study(name, SPACE, gain="val_accuracy", person="ada")
    return kb


# -- the queue API and KnowledgeBase --------------------------------------------------------
def test_an_edit_of_item_6_after_it_started_is_refused_and_item_11_is_untouched(
    store: Store,
) -> None:
    """The issue's scenario: the person saw item 6 pending at version 1; by the time
    they apply {"batch_size": 100}, items 1-6 have been claimed."""
    name = _name("six")
    kb = twelve_items(store, name)
    queue = kb.study(name)
    seen = queue.item(6)
    assert (seen.status, seen.version) == ("pending", 1)
    for n in range(1, 7):
        assert queue.claim(f"run-{n}").item.item_id == n
    before = snapshot(store, name)
    with pytest.raises(StaleStudyEdit) as refused:
        kb.edit_study(name, "edit", item=6, version=seen.version, params={"batch_size": 100})
    assert str(refused.value).startswith("item 6 already started; nothing changed")
    assert "is running (iteration 6)" in str(refused.value)
    exc = refused.value
    assert (exc.item_id, exc.seen_version, exc.status, exc.version) == (6, 1, "running", 1)
    assert snapshot(store, name) == before  # item 11 (and everything else) unchanged
    assert queue.item(11).params == {"learning_rate": 11, "batch_size": 32}
    # Finished, removed or re-versioned since: each refused the same way, nothing changed.
    queue.finish(queue.item(6), "done", gain=0.5)
    kb.edit_study(name, "remove", item=8, version=1, reason="not needed")
    kb.edit_study(name, "edit", item=9, version=1, params={"batch_size": 64})
    before = snapshot(store, name)
    for action, item, message in (
        ("edit", 6, "item 6 already started; nothing changed"),
        ("move", 6, "item 6 already started; nothing changed"),
        ("remove", 8, "item 8 was removed; nothing changed"),
        ("edit", 9, "item 9 changed meanwhile; nothing changed"),
        ("move", 9, "item 9 changed meanwhile; nothing changed"),
    ):
        with pytest.raises(StaleStudyEdit, match=message):
            kb.edit_study(name, action, item=item, version=1, params={"batch_size": 100}, place=1)
    assert snapshot(store, name) == before
    with pytest.raises(StaleStudyEdit, match="now version 2, .*64.* named version 1"):
        kb.edit_study(name, "remove", item=9, version=1)
    applied = kb.edit_study(name, "edit", item=9, version=2, params={"batch_size": 100})
    assert applied.versions == {9: 3} and queue.item(9).params["batch_size"] == 100


def test_an_item_edit_must_name_the_version_and_bad_edits_say_why(store: Store) -> None:
    name = _name("named")
    kb = twelve_items(store, name)
    before = snapshot(store, name)
    for kwargs, message in (
        ({"action": "edit", "item": 2, "params": {"batch_size": 64}}, "got version=None"),
        ({"action": "remove", "version": 1}, "got item=None"),
        ({"action": "move", "item": 2, "version": True}, "got version=True"),
        ({"action": "rename", "item": 2, "version": 1}, "unknown queue edit 'rename'"),
    ):
        with pytest.raises(ProvKBError, match=message):
            kb.edit_study(name, **kwargs)
    with pytest.raises(StudyEditRefused, match="has no item 99"):
        kb.edit_study(name, "edit", item=99, version=1, params={"batch_size": 64})
    # A key the item lacks: the message names the replace action every surface offers.
    with pytest.raises(StudyEditRefused) as unknown:
        kb.edit_study(name, "edit", item=2, version=1, params={"momentum": 0.9})
    assert "use replace" not in str(unknown.value)
    assert "replace=True" in str(unknown.value) and "--replace" in str(unknown.value)
    assert "'Replace all its parameters'" in str(unknown.value)
    assert snapshot(store, name) == before
    replaced = kb.edit_study(name, "edit", item=2, version=1, params={"momentum": 0.9},
                             replace=True, reason="other knobs")  # fmt: skip
    assert replaced.versions == {2: 2} and kb.study(name).item(2).params == {"momentum": 0.9}
    moved = kb.edit_study(name, "move", item=12, version=1, place=1)
    assert kb.study(name).items()[0].item_id == 12 and moved.versions == {12: 2}
    added = kb.edit_study(name, "add", params={"learning_rate": 99, "batch_size": 32})
    assert added.versions == {13: 1}


def test_a_claim_racing_the_edits_always_wins_cleanly(store: Store) -> None:
    """Claims and edits of the item about to be claimed, concurrently: every edit either
    applied to the version it named while it was pending, or was refused and changed
    nothing; no started item ever gets a later version."""
    name = _name("race")
    kb = twelve_items(store, name)
    queue = kb.study(name)
    claimed: list[int] = []
    applied: list[tuple[int, int]] = []  # (item, new version)
    refused: list[str] = []
    errors: list[BaseException] = []

    def claimer() -> None:
        try:
            while (claim := queue.claim(f"run-{len(claimed) + 1}")) is not None:
                claimed.append(claim.item.item_id)
                queue.finish(claim.item, "done", gain=float(len(claimed)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def editor() -> None:
        other = KnowledgeBase(store).study(name)
        try:
            for n in range(40):
                pending = other.items()
                first = next((i for i in pending if i.status == "pending"), None)
                if first is None:
                    return
                try:  # the item the claimer takes next, at the version just read
                    r = other.edit(first.item_id, {"batch_size": 100 + n},
                                   expected_version=first.version)  # fmt: skip
                    applied.append((first.item_id, r.versions[first.item_id]))
                except StudyEditRefused as exc:  # stale; or busy past the retries
                    refused.append(str(exc))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer), threading.Thread(target=editor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert sorted(claimed) == list(range(1, 13))  # each item claimed exactly once
    stale = ("already started; nothing changed", "changed meanwhile; nothing changed", "busy")
    assert all(any(m in r for m in stale) for r in refused), refused
    versions = store.read(
        "MATCH (i:TrialItem {study: $name}) RETURN i.itemId AS item, i.version AS v, "
        "i.current AS current, i.status AS status ORDER BY item, v",
        name=name,
    ).rows
    for item in range(1, 13):
        chain = [r for r in versions if r["item"] == item]
        assert [r["v"] for r in chain] == list(range(1, len(chain) + 1))
        assert [r["current"] for r in chain] == [False] * (len(chain) - 1) + [True]
        assert all(r["status"] == "pending" for r in chain[:-1])  # retired only while pending
        assert chain[-1]["status"] == "done"  # the claimed version is the last one
    made = sorted(applied)
    assert made == sorted((r["item"], r["v"]) for r in versions if r["v"] > 1)
    actions = store.read(
        "MATCH (a:SteeringAction {study: $name}) RETURN count(a) AS n", name=name
    ).rows
    assert actions == [{"n": len(applied)}]  # a refused edit left no action behind


# -- the CLI ----------------------------------------------------------------------------------
def test_cli_refuses_edits_of_items_that_moved_on(store: Store) -> None:
    name = _name("cli")
    kb = twelve_items(store, name)
    kb.study(name).claim("run-1")
    started = cli(store, "study", "edit", name, "1", "-p", "batch_size=100", "--version", "1")
    stale_move = cli(store, "study", "move", name, "2", "--to", "3", "--version", "7")
    unknown = cli(store, "study", "edit", name, "2", "-p", "momentum=0.9")
    ok = cli(store, "study", "move", name, "3", "--to", "1", "--version", "1")
    assert started.returncode == 3, started.stderr
    assert "refused: item 1 already started; nothing changed" in started.stderr
    assert started.stderr.count("nothing changed") == 1
    assert stale_move.returncode == 3 and "item 2 changed meanwhile" in stale_move.stderr
    assert "named version 7" in stale_move.stderr
    assert unknown.returncode == 3 and "--replace" in unknown.stderr
    assert "use replace" not in unknown.stderr
    assert ok.returncode == 0, ok.stderr
    assert "item 3 -> v2" in ok.stdout
    pending = [i.item_id for i in kb.study(name).items() if i.status == "pending"]
    assert pending[:2] == [3, 2]
    assert kb.study(name).item(1).params == {"learning_rate": 1, "batch_size": 32}


# -- the Study page (streamlit.testing) --------------------------------------------------------
@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, store_env: dict[str, str]) -> None:
    """The environment `provkb ui` gives the app, pointed at the engine under test."""
    for var, value in store_env.items():
        if value:
            monkeypatch.setenv(var, value)
        else:
            monkeypatch.delenv(var, raising=False)
    if "PROVKB_HOME" in store_env:
        monkeypatch.setenv(common.ENV_EMBEDDED, "1")
    else:
        monkeypatch.delenv(common.ENV_EMBEDDED, raising=False)


def study_page(name: str) -> AppTest:
    import streamlit as st

    st.cache_data.clear()  # the study list and the page's reads, fresh
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["study_name"] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def apply(at: AppTest, params: str) -> AppTest:
    at.text_area(key="st_params_edit").input(params)
    next(b for b in at.button if b.label == "Apply").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_study_page_never_edits_another_item_when_the_picked_one_started(
    store: Store, app_env: None
) -> None:
    name = _name("page")
    kb = twelve_items(store, name)
    at = study_page(name)
    picker = at.selectbox(key="st_item")
    assert picker.options[5] == '#6 · item 6 · v1 · {"learning_rate": 6, "batch_size": 32}'
    at.selectbox(key="st_item").set_value(6).run()  # the person picks item 6 ...
    queue = kb.study(name)
    for n in range(1, 7):  # ... items 1-6 start meanwhile (the race) ...
        queue.claim(f"run-{n}")
    before = snapshot(store, name)
    apply(at, '{"batch_size": 100}')  # ... then they apply
    errors = [e.value for e in at.error]
    assert any("Refused: item 6 already started; nothing changed" in e for e in errors), errors
    assert snapshot(store, name) == before  # item 11 (and 7, the first pending) untouched
    # The picker still holds item 6, said to be no longer pending; no other item is chosen.
    picker = at.selectbox(key="st_item")
    assert picker.value == 6 and picker.options[-1] == "item 6 · v1 · no longer pending"
    assert picker.options[0].startswith("#1 · item 7 · v1")
    warnings = [w.value for w in at.warning]
    assert any("item 6 already started (running, iteration 6)" in w for w in warnings)
    at.run()  # the page's own refresh (and any rerun) keeps the refusal in view
    assert any("Refused: item 6 already started" in e.value for e in at.error)
    # Picking a pending item again: the edit applies to exactly the version shown.
    at.selectbox(key="st_item").set_value(11).run()
    apply(at, '{"batch_size": 100}')
    assert any("edit applied" in s.value and "item(s) 11" in s.value for s in at.success)
    assert queue.item(11).params == {"learning_rate": 11, "batch_size": 100}
    assert queue.item(11).version == 2 and queue.item(7).version == 1


def test_study_page_refuses_an_item_edited_since_it_was_shown(store: Store, app_env: None) -> None:
    name = _name("page-v")
    kb = twelve_items(store, name)
    at = study_page(name)
    at.selectbox(key="st_item").set_value(3).run()
    kb.edit_study(name, "edit", item=3, version=1, params={"batch_size": 64}, person="bob")
    before = snapshot(store, name)
    apply(at, '{"batch_size": 100}')
    errors = [e.value for e in at.error]
    assert any("Refused: item 3 changed meanwhile; nothing changed" in e for e in errors)
    assert snapshot(store, name) == before
    # Now the page shows version 2 (bob's): the next Apply edits that version.
    assert at.selectbox(key="st_item").options[2].startswith("#3 · item 3 · v2")
    apply(at, '{"batch_size": 100}')
    assert kb.study(name).item(3).params["batch_size"] == 100
    # Replace is an action of the page: a key the item lacks, with and without it.
    at.selectbox(key="st_item").set_value(4).run()
    apply(at, '{"momentum": 0.9}')
    assert any("'Replace all its parameters'" in e.value for e in at.error)
    at.checkbox(key="st_replace").check()
    apply(at, '{"momentum": 0.9}')
    assert kb.study(name).item(4).params == {"momentum": 0.9}


def test_study_page_axis_names_the_gain_metric_and_empty_cells_are_blank(
    store: Store, app_env: None
) -> None:
    name = _name("page-g")
    study = Study(name, {"learning_rate": [0.01, 0.03, 0.01]}, gain="val_accuracy", k=2,
                  store=store, person="ada")  # fmt: skip
    study.run(lambda params, callbacks: {"val_accuracy": [0.5, 0.6]}, max_iterations=2)
    study.add({"learning_rate": 0.5})  # an edit without a reason or a before
    study.remove(3, reason="covered")
    at = study_page(name)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["yaxis"]["title"]["text"] == "val_accuracy (gain)"
    assert any("Gain per iteration: val_accuracy (gain)" in m.value for m in at.markdown)
    # a missing value is an empty cell (Streamlit's placeholder), never "None" or "—",
    # and a column of numbers with gaps stays numbers (it sorts as numbers)
    assert all(f.proto.HasField("placeholder") and f.proto.placeholder == "" for f in at.dataframe)
    frames = [f.value for f in at.dataframe]
    cells = [v for f in frames for v in f.astype(object).to_numpy().ravel().tolist()]
    assert "None" not in cells and "—" not in cells
    edits = next(f for f in frames if "from iteration" in f.columns)
    assert list(edits["action"]) == ["add", "remove"]
    assert list(edits["reason"]) == ["", "covered"]  # a text column: empty text
    removed = next(f for f in frames if "params" in f.columns and list(f["item"]) == [3])
    assert removed["iteration"].isna().all() and removed["gain"].isna().all()
    done = next(f for f in frames if "gain" in f.columns and f["gain"].notna().any())
    assert str(done["gain"].dtype) == "float64"
