"""A study's queue in the store: create, read, claim, finish and edit items.

Concurrency: every write of a study is one `Store.transaction` that first changes the
study node (`queueRevision`), then reads and checks what it changes. Concurrent writers
of one study therefore serialise: ArcadeDB detects the conflict at commit and the driver
retries the transaction; Neo4j holds the study node's lock. A version is created with a
deterministic id (`.../item/<n>/v<k>`), so two writers that both read version k-1
cannot both create version k: the loser re-runs on the new state (edits apply serially)
or, when it named the version it expected, is refused. No update is lost.

An edit of an item goes through the guarded `retire` statement (current, pending and
at the version read, in the edit's transaction): a claim that took the item first
makes it match nothing, the transaction starts over and is refused (`StaleStudyEdit`:
"item 6 already started; nothing changed"). It never moves on to another item.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...errors import (
    ClaimConflict,
    DanglingRelation,
    ProvKBError,
    QueryError,
    StoreBusy,
    StudyEditRefused,
)
from ...ontology import (
    ACTIVITY,
    AGENT,
    ENTITY,
    PERSON,
    STEERING_ACTION,
    STUDY,
    STUDY_STATE,
    TRIAL_ITEM,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    WAS_REVISION_OF,
    Prop,
    ids,
)
from ..cypher import STUDY as Q
from ..identity import default_person, host_name, now_iso
from ..records import GraphBatch, encode_props
from ..store import Store, Transaction
from .model import (
    ADD,
    CREATED,
    DEFAULT_K,
    DONE,
    EDIT,
    FAILED,
    MOVE,
    PENDING,
    REMOVE,
    REMOVED,
    RESPACE,
    RUNNING,
    STUDY_RUNNING,
    Claim,
    EditResult,
    StudyState,
    TrialItem,
    changed,
    pending_item,
    position_for,
    queue_order,
    ranked,
    study_state,
)
from .space import GRID, check_params, expand, normalize_space

_WRITE_ATTEMPTS = 20
EDIT_ACTIONS = (EDIT, MOVE, REMOVE, ADD, RESPACE)
ITEM_ACTIONS = (EDIT, MOVE, REMOVE)  # they name an item version
T = TypeVar("T")

study_node_id = ids.study
item_node_id = ids.trial_item
state_node_id = ids.study_state
edit_node_id = ids.study_edit
person_node_id = ids.person


class _Retry(Exception):
    """A version this transaction meant to create exists already: start over."""


class StudyQueue:
    """The stored queue of one study: create, read, claim, finish and edit items."""

    def __init__(self, store: Store, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ProvKBError("a study needs a non-empty name")
        self.store = store
        self.name = name
        self.node_id = study_node_id(name)

    # -- transactions ---------------------------------------------------------------
    def _transact(self, work: Callable[[Transaction], T]) -> T:
        """Run `work` in one `Store.transaction`; start over when a version it creates
        exists already or another writer changed what it read (a concurrent writer won),
        or the study stayed busy (`StoreBusy`).

        Engine difference: concurrent edits of one study deadlock now and then on Neo4j
        (the study node is locked by every edit and its relationship groups by the
        relations added to it); on ArcadeDB, while a concurrent transaction creates the
        same version id, the node this transaction merged is not found by id
        (`DanglingRelation`). Either way the transaction was rolled back whole, so it is
        simply run again."""
        last: Exception | None = None
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return self.store.transaction(work)
            except (_Retry, ClaimConflict, DanglingRelation, StoreBusy) as exc:
                last = exc
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        if isinstance(last, StoreBusy):
            raise StudyEditRefused(
                f"study {self.name!r} is busy (concurrent writers): nothing changed, "
                f"try again ({last})"
            ) from last
        raise StudyEditRefused(
            f"study {self.name!r} changed meanwhile ({last}); try again"
        ) from last

    def _lock(self, tx: Transaction) -> dict[str, Any]:
        rows = tx.run(Q["lock"], study=self.node_id)
        if not rows:
            raise ProvKBError(f"no study named {self.name!r}")
        return rows[0]["study"]

    def _current_items(self, tx: Transaction) -> list[TrialItem]:
        rows = tx.run(Q["items"], name=self.name, all=False)
        return ranked([TrialItem.from_props(r["item"]) for r in rows])

    def _state(self, tx: Transaction, k: int) -> StudyState:
        return study_state([r["gain"] for r in tx.run(Q["finished"], name=self.name)], k)

    # -- creation and reads ---------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.store.read(Q["get"], study=self.node_id).rows)

    def settings(self) -> dict[str, Any]:
        """The study node's properties (space decoded)."""
        rows = self.store.read(Q["get"], study=self.node_id).rows
        if not rows:
            raise ProvKBError(f"no study named {self.name!r}")
        props = dict(rows[0]["study"])
        props[Prop.SPACE] = json.loads(props.get(Prop.SPACE) or "{}")
        return props

    def create(
        self,
        space: Mapping[str, Any],
        params: Sequence[Mapping[str, Any]],
        person: str,
        **props: Any,
    ) -> bool:
        """Create the study with its first item versions; False when it exists already."""
        at = now_iso()

        def work(tx: Transaction) -> bool:
            if tx.run(Q["get"], study=self.node_id):
                return False
            batch = GraphBatch()
            study = batch.add_node(
                self.node_id,
                ACTIVITY,
                STUDY,
                **{
                    Prop.NAME: self.name,
                    Prop.SPACE: json.dumps(space),
                    Prop.STATUS: CREATED,
                    Prop.ITERATIONS: 0,
                    Prop.QUEUE_REVISION: 0,
                    Prop.PERSON: person,
                    Prop.CREATED: at,
                    **props,
                },
            )
            # Engine difference: two concurrent MERGEs of one new node both succeed on
            # Neo4j (the second waits, then matches the first's node); a CREATE lets the
            # uniqueness constraint refuse the second creator (ArcadeDB reports that as
            # a general "error executing" SemanticError), which then answers False.
            (created,) = batch.nodes
            tx.create(GraphBatch(nodes=[created]))
            who = batch.add_node(person_node_id(person), AGENT, PERSON, **{Prop.NAME: person})
            batch.add_edge(WAS_ASSOCIATED_WITH, study, who)
            for n, p in enumerate(params, start=1):
                node = self._item_node(batch, n, 1, p, float(n), PENDING, at)
                batch.add_edge(WAS_GENERATED_BY, node, study)
            tx.write(batch)
            return True

        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return self._transact(work)
            except QueryError:
                # On ArcadeDB the loser of a race fails before the winner has committed:
                # look again a moment later.
                time.sleep(0.1 * (attempt + 1))
                if self.exists():
                    return False  # a concurrent creator won
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _item_node(
        self,
        batch: GraphBatch,
        item_id: int,
        version: int,
        params: Mapping[str, Any],
        position: float,
        status: str,
        at: str,
    ) -> str:
        return batch.add_node(
            item_node_id(self.name, item_id, version),
            ENTITY,
            TRIAL_ITEM,
            **{
                Prop.STUDY: self.name,
                Prop.ITEM_ID: item_id,
                Prop.VERSION: version,
                Prop.PARAMS: json.dumps(dict(params)),
                Prop.POSITION: float(position),
                Prop.STATUS: status,
                Prop.CURRENT: True,
                Prop.CREATED: at,
            },
        )

    def items(self, include_removed: bool = False) -> list[TrialItem]:
        """Current versions, in queue order: started items by iteration, then pending
        ones by position, then (optionally) removed ones."""
        rows = self.store.read(Q["items"], name=self.name, all=False).rows
        items = ranked([TrialItem.from_props(r["item"]) for r in rows])
        if not include_removed:
            items = [i for i in items if i.status != REMOVED]
        return queue_order(items)

    def item(self, item_id: int) -> TrialItem:
        for found in self.items(include_removed=True):
            if found.item_id == item_id:
                return found
        raise StudyEditRefused(f"study {self.name!r} has no item {item_id}")

    def versions(self, item_id: int) -> list[TrialItem]:
        """Every version of an item, oldest first."""
        rows = self.store.read(Q["item_versions"], name=self.name, item=item_id).rows
        return [TrialItem.from_props(r["item"]) for r in rows]

    def state(self) -> StudyState:
        k = int(self.settings().get(Prop.K) or DEFAULT_K)
        rows = self.store.read(Q["finished"], name=self.name).rows
        return study_state([r["gain"] for r in rows], k)

    def edits(self) -> list[dict[str, Any]]:
        """The queue edits, oldest first (before/after decoded)."""
        out = []
        for row in self.store.read(Q["edits"], study=self.node_id).rows:
            edit = dict(row["edit"])
            for key in (Prop.BEFORE, Prop.AFTER):
                if edit.get(key) is not None:
                    edit[key] = json.loads(edit[key])
            out.append(edit)
        return out

    def update(self, **props: Any) -> None:
        """Set properties of the study node (status, times)."""

        def work(tx: Transaction) -> None:
            self._lock(tx)
            tx.run(Q["update_study"], study=self.node_id, props=encode_props(props))

        self._transact(work)

    # -- evaluation -----------------------------------------------------------------
    def claim(self, run_id: str, claimer: str | None = None) -> Claim | None:
        """Atomically take the first pending item (pending -> running); None when none."""
        claimer = claimer or f"{host_name()}:{os.getpid()}"
        at = now_iso()

        def work(tx: Transaction) -> Claim | None:
            study = self._lock(tx)
            rows = tx.run(Q["next_pending"], name=self.name)
            if not rows:
                return None
            item = TrialItem.from_props(rows[0]["item"])
            iteration = int(study.get(Prop.ITERATIONS) or 0) + 1
            props = {
                Prop.ITERATION: iteration,
                Prop.RUN: run_id,
                Prop.CLAIMED_BY: claimer,
                Prop.STARTED: at,
            }
            taken = tx.run(Q["start_item"], item=item.node_id, props=props)
            if not taken or not taken[0]["changed"]:
                raise _Retry(f"item {item.item_id} changed meanwhile")
            update = {Prop.ITERATIONS: iteration, Prop.STATUS: STUDY_RUNNING}
            if not study.get(Prop.STARTED):
                update[Prop.STARTED] = at
            tx.run(Q["update_study"], study=self.node_id, props=update)
            item.status, item.iteration, item.run_id, item.started = RUNNING, iteration, run_id, at
            return Claim(item, iteration)

        return self._transact(work)

    def finish(
        self,
        item: TrialItem,
        status: str,
        gain: float | None = None,
        run_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record the outcome of a running item (done or failed)."""
        if status not in (DONE, FAILED):
            raise ProvKBError(f"an evaluated item is done or failed, not {status!r}")
        props = encode_props(
            {
                Prop.STATUS: status,
                Prop.GAIN: gain,
                Prop.RUN: run_id or item.run_id,
                Prop.ERROR: error,
                Prop.ENDED: now_iso(),
            }
        )

        def work(tx: Transaction) -> None:
            self._lock(tx)
            tx.run(Q["finish_item"], item=item.node_id, props=props)

        self._transact(work)

    # -- edits ----------------------------------------------------------------------
    def _edit(
        self,
        action: str,
        person: str | None,
        reason: str | None,
        body: Callable[[Transaction, _EditContext], None],
    ) -> EditResult:
        person = default_person(person)
        request_id = uuid.uuid4().hex[:12]

        def work(tx: Transaction) -> EditResult:
            study = self._lock(tx)
            k = int(study.get(Prop.K) or DEFAULT_K)
            ctx = _EditContext(
                queue=self,
                study=study,
                items=self._current_items(tx),
                action_id=edit_node_id(self.name, request_id),
                at=now_iso(),
                batch=GraphBatch(),
            )
            body(tx, ctx)  # checks, retires old versions, adds new ones to ctx.batch
            state = self._state(tx, k)
            started = int(study.get(Prop.ITERATIONS) or 0)
            b = ctx.batch
            one = ctx.item_ids[0] if len(ctx.item_ids) == 1 and action != RESPACE else None
            b.add_node(
                ctx.action_id,
                ACTIVITY,
                STEERING_ACTION,
                **{
                    Prop.STUDY: self.name,
                    Prop.REQUEST_ID: request_id,
                    Prop.ACTION: action,
                    Prop.ITEM_ID: one,
                    Prop.ITERATION: started,
                    Prop.REASON: reason,
                    Prop.PERSON: person,
                    Prop.BEFORE: None if ctx.before is None else json.dumps(ctx.before),
                    Prop.AFTER: None if ctx.after is None else json.dumps(ctx.after),
                    Prop.STARTED: ctx.at,
                    Prop.ENDED: ctx.at,
                },
            )
            state_id = b.add_node(
                state_node_id(self.name, request_id),
                ENTITY,
                STUDY_STATE,
                **{
                    Prop.STUDY: self.name,
                    Prop.ITERATION: state.iterations,
                    Prop.LAST_GAIN: state.last_gain,
                    Prop.MOVING_AVERAGE: state.moving_average,
                    Prop.K: k,
                    Prop.GENERATED: ctx.at,
                },
            )
            who = b.add_node(person_node_id(person), AGENT, PERSON, **{Prop.NAME: person})
            b.add_edge(WAS_ASSOCIATED_WITH, ctx.action_id, who)  # the action holds requestId
            b.add_edge(WAS_INFORMED_BY, ctx.action_id, self.node_id)
            b.add_edge(USED, ctx.action_id, state_id)
            tx.write(b)
            return EditResult(
                request_id=request_id,
                action=action,
                node_id=ctx.action_id,
                item_ids=ctx.item_ids,
                versions=ctx.versions,
                state=state,
                effective_from=started + 1,
            )

        return self._transact(work)

    def add(
        self,
        params: Mapping[str, Any],
        position: int | None = None,
        reason: str | None = None,
        person: str | None = None,
    ) -> EditResult:
        """Add a pending item (at the end, or at 1-based place `position` among pending)."""
        params = check_params(params)

        def body(tx: Transaction, ctx: _EditContext) -> None:
            item_id = ctx.next_item_id()
            node = self._item_node(
                ctx.batch, item_id, 1, params, ctx.position_for(position, None), PENDING, ctx.at
            )
            ctx.batch.add_edge(WAS_GENERATED_BY, node, ctx.action_id)
            ctx.item_ids.append(item_id)
            ctx.versions[item_id] = 1
            ctx.before, ctx.after = None, params

        return self._edit(ADD, person, reason, body)

    def edit(
        self,
        item_id: int,
        params: Mapping[str, Any],
        reason: str | None = None,
        person: str | None = None,
        replace: bool = False,
        expected_version: int | None = None,
    ) -> EditResult:
        """Change a pending item's parameters: `params` is merged into the current ones
        (keys the item lacks are refused) or, with `replace`, replaces them. With
        `expected_version`, refused when the item has another version by then."""
        params = check_params(params)

        def body(tx: Transaction, ctx: _EditContext) -> None:
            old = ctx.pending(item_id, expected_version)
            if replace:
                new_params = dict(params)
            else:
                unknown = [k for k in params if k not in old.params]
                if unknown:
                    raise StudyEditRefused(
                        f"item {item_id} has no hyperparameter {', '.join(map(repr, unknown))} "
                        f"(it has {', '.join(old.params) or 'none'}); to give other ones, "
                        f"replace all its parameters (replace=True; provkb study edit "
                        f"--replace; the Study page's 'Replace all its parameters')"
                    )
                new_params = {**old.params, **params}
            if new_params == old.params:
                raise StudyEditRefused(f"item {item_id} already has these parameters")
            ctx.before, ctx.after = changed(old.params, new_params)
            ctx.revise(tx, old, params=new_params)

        return self._edit(EDIT, person, reason, body)

    def remove(
        self,
        item_id: int,
        reason: str | None = None,
        person: str | None = None,
        expected_version: int | None = None,
    ) -> EditResult:
        """Remove a pending item (a new version with status `removed`)."""

        def body(tx: Transaction, ctx: _EditContext) -> None:
            old = ctx.pending(item_id, expected_version)
            ctx.before, ctx.after = old.params, None
            ctx.revise(tx, old, status=REMOVED)

        return self._edit(REMOVE, person, reason, body)

    def move(
        self,
        item_id: int,
        position: int,
        reason: str | None = None,
        person: str | None = None,
        expected_version: int | None = None,
    ) -> EditResult:
        """Move a pending item to 1-based place `position` among the pending items
        (1 = evaluated next)."""
        if not isinstance(position, int) or isinstance(position, bool) or position < 1:
            raise ProvKBError(f"a queue position is an integer >= 1, got {position!r}")

        def body(tx: Transaction, ctx: _EditContext) -> None:
            old = ctx.pending(item_id, expected_version)
            key = ctx.position_for(position, item_id)
            ctx.before, ctx.after = {"position": old.rank}, {"position": position}
            ctx.revise(tx, old, position=key)

        return self._edit(MOVE, person, reason, body)

    def apply(
        self,
        action: str,
        *,
        item: int | None = None,
        version: int | None = None,
        params: Mapping[str, Any] | None = None,
        place: int | None = None,
        reason: str | None = None,
        person: str | None = None,
        replace: bool = False,
        merge: bool = True,
    ) -> EditResult:
        """One queue edit by name, as a person gives it (the app, `KnowledgeBase.
        edit_study`). `edit`, `move` and `remove` name the exact item version the person
        saw (`item`, `version`): refused with `StaleStudyEdit`, nothing changed, when that
        item has started, finished or was removed, or has a newer version by then (the
        edit's guarded `retire` in the same transaction). `place` is 1-based among the
        pending items; `params` the item's values (add, edit) or the space (respace)."""
        if action not in EDIT_ACTIONS:
            raise ProvKBError(f"unknown queue edit {action!r} (known: {', '.join(EDIT_ACTIONS)})")
        if action in ITEM_ACTIONS:
            for what, value in (("item", item), ("version", version)):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ProvKBError(
                        f"a queue {action} names the item and the version of it the "
                        f"person saw (see the queue); got {what}={value!r}"
                    )
            assert item is not None
            if action == EDIT:
                return self.edit(item, params or {}, reason, person, replace, version)
            if action == MOVE:
                return self.move(item, place or 1, reason, person, version)
            return self.remove(item, reason, person, version)
        if action == ADD:
            return self.add(params or {}, place, reason, person)
        return self.respace(params or {}, reason, person, merge=merge)

    def respace(
        self,
        space: Mapping[str, Any],
        reason: str | None = None,
        person: str | None = None,
        merge: bool = True,
    ) -> EditResult:
        """Replace every pending item by the expansion of a new space (each pending item
        gets a `removed` version; each new combination a new item). With `merge`, the
        given entries replace those of the current space and the others stay."""
        given = normalize_space(space)

        def body(tx: Transaction, ctx: _EditContext) -> None:
            old_space = json.loads(ctx.study.get(Prop.SPACE) or "{}")
            new_space = {**old_space, **given} if merge else given
            ctx.before, ctx.after = changed(old_space, new_space)
            combos = expand(
                new_space,
                ctx.study.get(Prop.SAMPLER) or GRID,
                ctx.study.get(Prop.N_SAMPLES),
                int(ctx.study.get(Prop.SEED) or 0),
            )
            for old in [i for i in ctx.items if i.status == PENDING]:
                ctx.revise(tx, old, status=REMOVED)
            base = max((i.position for i in ctx.items), default=0.0)
            for offset, params in enumerate(combos, start=1):
                item_id = ctx.next_item_id()
                node = self._item_node(
                    ctx.batch, item_id, 1, params, base + offset, PENDING, ctx.at
                )
                ctx.batch.add_edge(WAS_GENERATED_BY, node, ctx.action_id)
                ctx.item_ids.append(item_id)
                ctx.versions[item_id] = 1
            new = {Prop.SPACE: json.dumps(new_space)}
            tx.run(Q["update_study"], study=self.node_id, props=new)

        return self._edit(RESPACE, person, reason, body)


@dataclass
class _EditContext:
    """What one edit transaction sees and builds."""

    queue: StudyQueue
    study: dict[str, Any]
    items: list[TrialItem]
    action_id: str
    at: str
    batch: GraphBatch
    item_ids: list[int] = field(default_factory=list)
    versions: dict[int, int] = field(default_factory=dict)
    before: Any = None
    after: Any = None
    _next_id: int | None = None

    def next_item_id(self) -> int:
        if self._next_id is None:
            self._next_id = max((i.item_id for i in self.items), default=0)
        self._next_id += 1
        return self._next_id

    def pending(self, item_id: int, expected_version: int | None) -> TrialItem:
        """The current version of a pending item, or a clear refusal."""
        return pending_item(self.queue.name, self.items, item_id, expected_version)

    def position_for(self, rank: int | None, moving: int | None) -> float:
        """A position key placing an item at 1-based `rank` among pending items (end: None)."""
        return position_for(self.items, rank, moving)

    def revise(self, tx: Transaction, old: TrialItem, **changes: Any) -> None:
        """Retire `old` (still current and pending) and add its next version."""
        retired = tx.run(Q["retire"], item=old.node_id, version=old.version)
        if not retired or not retired[0]["changed"]:
            raise _Retry(f"item {old.item_id} changed meanwhile")
        node = self.queue._item_node(  # noqa: SLF001
            self.batch,
            old.item_id,
            old.version + 1,
            changes.get("params", old.params),
            changes.get("position", old.position),
            changes.get("status", PENDING),
            self.at,
        )
        self.batch.add_edge(WAS_REVISION_OF, node, old.node_id)
        self.batch.add_edge(WAS_GENERATED_BY, node, self.action_id)
        self.batch.add_edge(USED, self.action_id, old.node_id)
        self.item_ids.append(old.item_id)
        self.versions[old.item_id] = old.version + 1


def list_studies(store: Store) -> list[dict[str, Any]]:
    """Every study node's properties, by name."""
    return [dict(r["study"]) for r in store.read(Q["list"]).rows]
