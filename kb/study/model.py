"""The study model: statuses, queue items and edits, and the pure queue rules (ranks,
positions, which items may change, the moving average of gains)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import StaleStudyEdit, StudyEditRefused
from ...ontology import ItemStatus, Prop, QueueEdit, StudyStatus

PENDING, RUNNING, DONE = ItemStatus.PENDING, ItemStatus.RUNNING, ItemStatus.DONE
FAILED, REMOVED = ItemStatus.FAILED, ItemStatus.REMOVED
ITEM_STATUSES = (PENDING, RUNNING, DONE, FAILED, REMOVED)
ADD, EDIT, REMOVE = QueueEdit.ADD, QueueEdit.EDIT, QueueEdit.REMOVE
MOVE, RESPACE = QueueEdit.MOVE, QueueEdit.RESPACE
MODES = ("max", "min")
# Study status: created (never run), running, paused (run() returned, items pending),
# completed (nothing pending when run() returned).
CREATED, STUDY_RUNNING = StudyStatus.CREATED, StudyStatus.RUNNING
PAUSED, COMPLETED = StudyStatus.PAUSED, StudyStatus.COMPLETED
DEFAULT_K = 10  # window of the moving average when a study does not say


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
            item_id=props[Prop.ITEM_ID],
            version=props[Prop.VERSION],
            params=json.loads(props.get(Prop.PARAMS) or "{}"),
            status=props.get(Prop.STATUS, PENDING),
            position=props.get(Prop.POSITION, 0.0),
            iteration=props.get(Prop.ITERATION),
            gain=props.get(Prop.GAIN),
            run_id=props.get(Prop.RUN),
            error=props.get(Prop.ERROR),
            created=props.get(Prop.CREATED),
            started=props.get(Prop.STARTED),
            ended=props.get(Prop.ENDED),
            current=bool(props.get(Prop.CURRENT)),
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


def study_state(gains: Sequence[float | None], k: int) -> StudyState:
    """The state after these finished iterations' gains (in iteration order)."""
    present = [g for g in gains if g is not None]
    return StudyState(len(gains), present[-1] if present else None, moving_average(gains, k), k)


_MISSING = object()


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict, dict]:
    """(before, after): the entries that differ, as each side has them."""
    keys = [k for k in {**old, **new} if old.get(k, _MISSING) != new.get(k, _MISSING)]
    return {k: old[k] for k in keys if k in old}, {k: new[k] for k in keys if k in new}


def ranked(items: list[TrialItem]) -> list[TrialItem]:
    """The items, each pending one given its 1-based `rank` (by position, then id)."""
    pending = sorted(
        (i for i in items if i.status == PENDING), key=lambda i: (i.position, i.item_id)
    )
    for rank, item in enumerate(pending, start=1):
        item.rank = rank
    return items


def queue_order(items: list[TrialItem]) -> list[TrialItem]:
    """Started items by iteration, then pending ones by position, then the others."""

    def key(i: TrialItem) -> tuple:
        if i.iteration is not None:
            return (0, i.iteration, 0.0, i.item_id)
        if i.status == PENDING:
            return (1, 0, i.position, i.item_id)
        return (2, 0, i.position, i.item_id)

    return sorted(items, key=key)


def pending_item(
    study: str, items: Sequence[TrialItem], item_id: int, expected_version: int | None
) -> TrialItem:
    """The current version of a pending item, or a clear refusal: `StudyEditRefused`
    when there is no such item, `StaleStudyEdit` when it is no longer pending (started,
    finished, removed) or, with `expected_version` (the version the person saw), when
    another edit made a newer one."""
    found = next((i for i in items if i.item_id == item_id), None)
    if found is None:
        raise StudyEditRefused(f"study {study!r} has no item {item_id}")
    if found.status != PENDING:
        raise StaleStudyEdit(
            not_pending_message(study, found),
            item_id=item_id,
            seen_version=expected_version,
            status=found.status,
            version=found.version,
        )
    if expected_version is not None and found.version != expected_version:
        raise StaleStudyEdit(
            f"item {item_id} changed meanwhile; nothing changed (item {item_id} of study "
            f"{study!r} is now version {found.version}, {json.dumps(found.params)}; the "
            f"edit named version {expected_version}): look at it again and retry",
            item_id=item_id,
            seen_version=expected_version,
            status=found.status,
            version=found.version,
        )
    return found


def not_pending_message(study: str, item: TrialItem) -> str:
    """Why item `item` (not pending) cannot change: 'item 6 already started; nothing
    changed (...)'."""
    what = f"item {item.item_id} of study {study!r} is {item.status}"
    if item.status == REMOVED:
        return (
            f"item {item.item_id} was removed; nothing changed ({what}; only pending "
            f"items can change)"
        )
    detail = f" (iteration {item.iteration})" if item.iteration else ""
    return (
        f"item {item.item_id} already started; nothing changed ({what}{detail}; only "
        f"pending items, not yet started, can change)"
    )


def position_for(items: Sequence[TrialItem], rank: int | None, moving: int | None) -> float:
    """A position key placing an item at 1-based `rank` among pending items (end: None);
    `moving` is the item being moved (not counted)."""
    keys = sorted(i.position for i in items if i.status == PENDING and i.item_id != moving)
    last = max((i.position for i in items), default=0.0)
    if rank is None or rank > len(keys):
        return float(math.floor(max(last, keys[-1] if keys else 0.0)) + 1)
    if rank <= 1:
        return keys[0] - 1.0
    return (keys[rank - 2] + keys[rank - 1]) / 2
