"""Studies: steerable trial queues stored in the knowledge base (docs/graph-model.md).

A study expands a hyperparameter space into queue items, evaluated one by one
("iterations"). Each item is a chain of `:Entity:TrialItem` versions; only the current
version of a *pending* item may change, and every change is a queue edit (a
`:SteeringAction` of the person) that used the study state the person saw (iterations
finished, last gain, moving average of the last k gains) and the old version, and
generated the new version (`WAS_REVISION_OF` the old one).

Concurrency: every write of a study is one managed write transaction that first changes
the study node (`queueRevision`), then reads and checks what it changes. Concurrent
writers of one study therefore serialise: ArcadeDB detects the conflict at commit and the
driver retries the transaction; Neo4j holds the study node's lock. A version is created
with a deterministic id (`.../item/<n>/v<k>`), so two writers that both read version
k-1 cannot both create version k: the loser re-runs on the new state (edits apply
serially) or, when it named the version it expected, is refused. No update is lost.

Numbers: iterations are 1-based. A queue edit's `iteration` is the number of iterations
started when it was made (it takes effect from iteration + 1, the next claim); its study
state's `iteration` is the number finished (what the person could see). Item positions are
sort keys; users see and give places among the pending items (1 = evaluated next).

Space syntax (per hyperparameter):
- `[start, end, step]`: a range, end inclusive within float tolerance, when the three are
  numbers with `step > 0`, `start <= end` and `step <= end - start` (or `start == end`);
  e.g. `[0.01, 0.05, 0.01]` -> 0.01, 0.02, 0.03, 0.04, 0.05. Any other list is an
  explicit list of values (`[16, 32, 64]`, `[100]`); force either reading with
  `{"range": [start, end, step]}` or `{"values": [...]}`. A scalar is a single value.
- grid sampler: the cartesian product, first hyperparameter varying slowest, in the
  order the space gives them; random sampler: `n_samples` distinct combinations drawn
  with `random.Random(seed)` (reproducible), in draw order.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import (
    ClaimConflict,
    DanglingRelation,
    ProvKBError,
    QueryError,
    StoreBusy,
    StudyEditRefused,
)
from ..ontology import (
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
from .cypher import STUDY as Q
from .identity import default_person, now_iso
from .records import GraphBatch, encode_props
from .store import Store, Transaction

PENDING, RUNNING, DONE, FAILED, REMOVED = "pending", "running", "done", "failed", "removed"
ITEM_STATUSES = (PENDING, RUNNING, DONE, FAILED, REMOVED)
ADD, EDIT, REMOVE, MOVE, RESPACE = "add", "edit", "remove", "move", "respace"
GRID, RANDOM = "grid", "random"
SAMPLERS = (GRID, RANDOM)
MODES = ("max", "min")
# Study status: created (never run), running, paused (run() returned, items pending),
# completed (nothing pending when run() returned).
CREATED, STUDY_RUNNING, PAUSED, COMPLETED = "created", "running", "paused", "completed"

MAX_ITEMS = 100_000
_WRITE_ATTEMPTS = 20
T = TypeVar("T")


study_node_id = ids.study
item_node_id = ids.trial_item
state_node_id = ids.study_state
edit_node_id = ids.study_edit
person_node_id = ids.person


# -- space expansion -------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tidy(value: float) -> float:
    """Drop float noise: 0.1 + 2 * 0.1 is 0.3, not 0.30000000000000004."""
    return float(f"{value:.12g}")


def range_values(start: float, end: float, step: float) -> list[int | float]:
    """start, start + step, ... up to end inclusive (within float tolerance)."""
    if not all(_is_number(v) and math.isfinite(v) for v in (start, end, step)):
        raise ProvKBError(f"a range needs finite numbers, got {[start, end, step]}")
    if step <= 0:
        raise ProvKBError(f"a range's step must be > 0, got {step}")
    if start > end:
        raise ProvKBError(f"a range's start {start} is after its end {end}")
    count = math.floor((end - start) / step + 1e-9) + 1
    if count > MAX_ITEMS:
        raise ProvKBError(f"the range {[start, end, step]} has {count} values (max {MAX_ITEMS})")
    if all(isinstance(v, int) for v in (start, end, step)):
        return [start + i * step for i in range(count)]
    return [_tidy(start + i * step) for i in range(count)]


def _looks_like_range(spec: Sequence[Any]) -> bool:
    if len(spec) != 3 or not all(_is_number(v) for v in spec):
        return False
    start, end, step = spec
    span = end - start
    return step > 0 and start <= end and (step <= span * (1 + 1e-9) or start == end)


def _plain_list(values: Iterable[Any]) -> list[Any]:
    out = []
    for v in values:
        item = getattr(v, "item", None)  # numpy scalars
        out.append(item() if callable(item) and getattr(v, "ndim", 0) == 0 else v)
    return out


def dimension_values(name: str, spec: Any) -> list[Any]:
    """The values a space entry stands for (see the module docstring)."""
    if isinstance(spec, Mapping):
        keys = set(spec)
        if keys == {"range"}:
            values = list(spec["range"])
            if len(values) != 3:
                raise ProvKBError(f"{name}: a range is [start, end, step], got {values}")
            return range_values(*values)
        if keys == {"values"}:
            spec = list(spec["values"])
        else:
            raise ProvKBError(
                f"{name}: use [start, end, step], a list of values, {{'range': [...]}} "
                f"or {{'values': [...]}}; got {spec!r}"
            )
    elif isinstance(spec, range):
        spec = list(spec)
    elif isinstance(spec, list | tuple) or hasattr(spec, "tolist"):
        spec = _plain_list(spec.tolist() if hasattr(spec, "tolist") else spec)
        if _looks_like_range(spec):
            return range_values(*spec)
    else:
        spec = [spec]
    if not spec:
        raise ProvKBError(f"{name}: no values")
    for value in spec:
        _check_json(name, value)
    return list(spec)


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProvKBError(f"{name}: {value!r} is not a JSON value ({exc})") from exc


def normalize_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """The space in JSON-ready form (validated: every entry expands)."""
    if not isinstance(space, Mapping) or not space:
        raise ProvKBError("a space maps each hyperparameter name to a range or a list of values")
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name.strip():
            raise ProvKBError(f"hyperparameter names are non-empty text, got {name!r}")
        dimension_values(name, spec)
        if isinstance(spec, Mapping):
            ((form, values),) = spec.items()
            values = _plain_list(values)
            # keep the explicit form only where the bare list would read otherwise
            plain = _looks_like_range(values) == (form == "range")
            out[name] = values if plain else {form: values}
        elif isinstance(spec, range):
            out[name] = list(spec)
        elif isinstance(spec, list | tuple) or hasattr(spec, "tolist"):
            out[name] = _plain_list(spec.tolist() if hasattr(spec, "tolist") else spec)
        else:
            out[name] = spec
    return out


def expand(
    space: Mapping[str, Any],
    sampler: str = GRID,
    n_samples: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The parameter combinations of a space, in queue order (see the module docstring)."""
    if sampler not in SAMPLERS:
        raise ProvKBError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    names = list(space)
    dims = [dimension_values(n, space[n]) for n in names]
    total = math.prod(len(d) for d in dims)
    if sampler == GRID:
        if total > MAX_ITEMS:
            raise ProvKBError(f"the grid has {total} combinations (max {MAX_ITEMS})")
        combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*dims)]
        return combos if n_samples is None else combos[: max(0, n_samples)]
    count = total if n_samples is None else min(max(0, n_samples), total)
    if count > MAX_ITEMS:
        raise ProvKBError(f"{count} samples asked (max {MAX_ITEMS})")
    out = []
    for index in random.Random(seed).sample(range(total), count):
        values = []
        for d in reversed(dims):  # mixed-radix decoding, last dimension fastest
            index, digit = divmod(index, len(d))
            values.append(d[digit])
        out.append(dict(zip(names, reversed(values), strict=True)))
    return out


# -- records ---------------------------------------------------------------------------
@dataclass
class TrialItem:
    """The current (or a given) version of one queue item."""

    item_id: int
    version: int
    params: dict[str, Any]
    status: str
    position: float
    rank: int | None = None  # 1-based place among pending items (None when not pending)
    iteration: int | None = None
    gain: float | None = None
    run_id: str | None = None
    error: str | None = None
    created: str | None = None
    started: str | None = None
    ended: str | None = None
    current: bool = True
    node_id: str = ""

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> TrialItem:
        return cls(
            item_id=props["itemId"],
            version=props[Prop.VERSION],
            params=json.loads(props.get("params") or "{}"),
            status=props.get(Prop.STATUS, PENDING),
            position=props.get("position", 0.0),
            iteration=props.get("iteration"),
            gain=props.get("gain"),
            run_id=props.get("run"),
            error=props.get(Prop.ERROR),
            created=props.get("createdAtTime"),
            started=props.get(Prop.STARTED),
            ended=props.get(Prop.ENDED),
            current=bool(props.get("current")),
            node_id=props.get(Prop.ID, ""),
        )


@dataclass
class StudyState:
    """What a person could see when editing: iterations finished, last gain, moving average."""

    iterations: int
    last_gain: float | None
    moving_average: float | None
    k: int


@dataclass
class EditResult:
    """One applied queue edit."""

    request_id: str
    action: str
    node_id: str
    item_ids: list[int]
    versions: dict[int, int]  # item -> its new version
    state: StudyState
    effective_from: int  # the first iteration the edit can affect


@dataclass
class Claim:
    """An item taken for evaluation."""

    item: TrialItem
    iteration: int


def moving_average(gains: Sequence[float | None], k: int) -> float | None:
    """Mean of the last k gains present (None, NaN skipped); None when there is none."""
    present = [g for g in gains if g is not None and not (isinstance(g, float) and math.isnan(g))]
    window = present[-k:] if k > 0 else present
    return sum(window) / len(window) if window else None


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict, dict]:
    keys = [k for k in {**old, **new} if old.get(k, _MISSING) != new.get(k, _MISSING)]
    return {k: old[k] for k in keys if k in old}, {k: new[k] for k in keys if k in new}


_MISSING = object()


class _Retry(Exception):
    """A version this transaction meant to create exists already: start over."""


# -- the queue -------------------------------------------------------------------------
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
        return _ranked([TrialItem.from_props(r["item"]) for r in rows])

    def _state(self, tx: Transaction, k: int) -> StudyState:
        rows = tx.run(Q["finished"], name=self.name)
        gains = [r["gain"] for r in rows]
        present = [g for g in gains if g is not None]
        return StudyState(
            iterations=len(rows),
            last_gain=present[-1] if present else None,
            moving_average=moving_average(gains, k),
            k=k,
        )

    # -- creation and reads ---------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.store.read(Q["get"], study=self.node_id).rows)

    def settings(self) -> dict[str, Any]:
        """The study node's properties (space decoded)."""
        rows = self.store.read(Q["get"], study=self.node_id).rows
        if not rows:
            raise ProvKBError(f"no study named {self.name!r}")
        props = dict(rows[0]["study"])
        props["space"] = json.loads(props.get("space") or "{}")
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
                name=self.name,
                space=json.dumps(space),
                status=CREATED,
                iterations=0,
                queueRevision=0,
                person=person,
                createdAtTime=at,
                **props,
            )
            # Engine difference: two concurrent MERGEs of one new node both succeed on
            # Neo4j (the second waits, then matches the first's node); a CREATE lets the
            # uniqueness constraint refuse the second creator (ArcadeDB reports that as
            # a general "error executing" SemanticError), which then answers False.
            (created,) = batch.nodes
            tx.create(GraphBatch(nodes=[created]))
            who = batch.add_node(person_node_id(person), AGENT, PERSON, name=person)
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
            study=self.name,
            itemId=item_id,
            version=version,
            params=json.dumps(dict(params)),
            position=float(position),
            status=status,
            current=True,
            createdAtTime=at,
        )

    def items(self, include_removed: bool = False) -> list[TrialItem]:
        """Current versions, in queue order: started items by iteration, then pending
        ones by position, then (optionally) removed ones."""
        rows = self.store.read(Q["items"], name=self.name, all=False).rows
        items = _ranked([TrialItem.from_props(r["item"]) for r in rows])
        if not include_removed:
            items = [i for i in items if i.status != REMOVED]
        return _queue_order(items)

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
        k = int(self.settings().get("k") or 10)
        rows = self.store.read(Q["finished"], name=self.name).rows
        gains = [r["gain"] for r in rows]
        present = [g for g in gains if g is not None]
        return StudyState(len(rows), present[-1] if present else None, moving_average(gains, k), k)

    def edits(self) -> list[dict[str, Any]]:
        """The queue edits, oldest first (before/after decoded)."""
        out = []
        for row in self.store.read(Q["edits"], study=self.node_id).rows:
            edit = dict(row["edit"])
            for key in ("before", "after"):
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
        claimer = claimer or f"{socket.gethostname()}:{os.getpid()}"
        at = now_iso()

        def work(tx: Transaction) -> Claim | None:
            study = self._lock(tx)
            rows = tx.run(Q["next_pending"], name=self.name)
            if not rows:
                return None
            item = TrialItem.from_props(rows[0]["item"])
            iteration = int(study.get("iterations") or 0) + 1
            props = {
                "iteration": iteration,
                "run": run_id,
                "claimedBy": claimer,
                Prop.STARTED: at,
            }
            changed = tx.run(Q["start_item"], item=item.node_id, props=props)
            if not changed or not changed[0]["changed"]:
                raise _Retry(f"item {item.item_id} changed meanwhile")
            update = {"iterations": iteration, Prop.STATUS: STUDY_RUNNING}
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
                "gain": gain,
                "run": run_id or item.run_id,
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
            k = int(study.get("k") or 10)
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
            started = int(study.get("iterations") or 0)
            b = ctx.batch
            b.add_node(
                ctx.action_id,
                ACTIVITY,
                STEERING_ACTION,
                study=self.name,
                requestId=request_id,
                action=action,
                itemId=ctx.item_ids[0] if len(ctx.item_ids) == 1 and action != RESPACE else None,
                iteration=started,
                reason=reason,
                person=person,
                before=None if ctx.before is None else json.dumps(ctx.before),
                after=None if ctx.after is None else json.dumps(ctx.after),
                startedAtTime=ctx.at,
                endedAtTime=ctx.at,
            )
            state_id = b.add_node(
                state_node_id(self.name, request_id),
                ENTITY,
                STUDY_STATE,
                study=self.name,
                iteration=state.iterations,
                lastGain=state.last_gain,
                movingAverage=state.moving_average,
                k=k,
                generatedAtTime=ctx.at,
            )
            who = b.add_node(person_node_id(person), AGENT, PERSON, name=person)
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
        params = _check_params(params)

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
        params = _check_params(params)

        def body(tx: Transaction, ctx: _EditContext) -> None:
            old = ctx.pending(item_id, expected_version)
            if replace:
                new_params = dict(params)
            else:
                unknown = [k for k in params if k not in old.params]
                if unknown:
                    raise StudyEditRefused(
                        f"item {item_id} has no hyperparameter {', '.join(map(repr, unknown))} "
                        f"(it has {', '.join(old.params) or 'none'}); use replace to set "
                        f"other ones"
                    )
                new_params = {**old.params, **params}
            if new_params == old.params:
                raise StudyEditRefused(f"item {item_id} already has these parameters")
            ctx.before, ctx.after = _changed(old.params, new_params)
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
            old_space = json.loads(ctx.study.get("space") or "{}")
            new_space = {**old_space, **given} if merge else given
            ctx.before, ctx.after = _changed(old_space, new_space)
            combos = expand(
                new_space,
                ctx.study.get("sampler") or GRID,
                ctx.study.get("nSamples"),
                int(ctx.study.get("seed") or 0),
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
            tx.run(Q["update_study"], study=self.node_id, props={"space": json.dumps(new_space)})

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
        found = next((i for i in self.items if i.item_id == item_id), None)
        name = self.queue.name
        if found is None:
            raise StudyEditRefused(f"study {name!r} has no item {item_id}")
        if found.status != PENDING:
            detail = f" (iteration {found.iteration})" if found.iteration else ""
            raise StudyEditRefused(
                f"item {item_id} of study {name!r} is {found.status}{detail}: only pending "
                f"items (not yet started) can change"
            )
        if expected_version is not None and found.version != expected_version:
            raise StudyEditRefused(
                f"item {item_id} of study {name!r} changed meanwhile (now version "
                f"{found.version}, expected {expected_version}); try again"
            )
        return found

    def position_for(self, rank: int | None, moving: int | None) -> float:
        """A position key placing an item at 1-based `rank` among pending items (end: None)."""
        keys = sorted(i.position for i in self.items if i.status == PENDING and i.item_id != moving)
        last = max((i.position for i in self.items), default=0.0)
        if rank is None or rank > len(keys):
            return float(math.floor(max(last, keys[-1] if keys else 0.0)) + 1)
        if rank <= 1:
            return keys[0] - 1.0
        return (keys[rank - 2] + keys[rank - 1]) / 2

    def revise(self, tx: Transaction, old: TrialItem, **changes: Any) -> None:
        """Retire `old` (still current and pending) and add its next version."""
        changed = tx.run(Q["retire"], item=old.node_id, version=old.version)
        if not changed or not changed[0]["changed"]:
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


def _check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(params, Mapping) or not params:
        raise ProvKBError("an item's parameters are a non-empty mapping of name -> value")
    out = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name.strip():
            raise ProvKBError(f"hyperparameter names are non-empty text, got {name!r}")
        value = _plain_list([value])[0]
        _check_json(name, value)
        out[name] = value
    return out


def _ranked(items: list[TrialItem]) -> list[TrialItem]:
    pending = sorted(
        (i for i in items if i.status == PENDING), key=lambda i: (i.position, i.item_id)
    )
    for rank, item in enumerate(pending, start=1):
        item.rank = rank
    return items


def _queue_order(items: list[TrialItem]) -> list[TrialItem]:
    def key(i: TrialItem) -> tuple:
        if i.iteration is not None:
            return (0, i.iteration, 0.0, i.item_id)
        if i.status == PENDING:
            return (1, 0, i.position, i.item_id)
        return (2, 0, i.position, i.item_id)

    return sorted(items, key=key)


def list_studies(store: Store) -> list[dict[str, Any]]:
    """Every study node's properties, by name."""
    return [dict(r["study"]) for r in store.read(Q["list"]).rows]
