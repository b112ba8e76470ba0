"""Search sessions (VisualHyperTuner): a study started from another one's best trials.

`plan_next` (pure) works out the next session's space from the parent's finished trials:
the parent's top `top` trials by gain (best first by the study's mode; ties by
iteration) are kept, and
- a narrowed numeric range `[start, end, step]` becomes `[min, max, step]` of the values
  the kept trials used (the step kept); a narrowed list keeps the values they used (in
  the list's order); a single value stays;
- `narrow=None` narrows every hyperparameter of the parent's space but those in `keep`;
  the others keep the parent's ranges;
- `add` brings in hyperparameters the parent's space lacks; `ranges` gives entries by
  hand (they win over narrowing).
`start_next` creates the new study (settings inherited: gain, mode, k, sampler,
experiment, pruning) and records the narrowing as PROV (docs/graph-model.md, "Sessions"):
a `:Narrowing` activity associated with the person, that USED the parent's space entity,
each kept trial's item version and the model its run trained (`rank` 1 = best), was
informed by the parent study, and generated the new space entity (derived from the parent's),
which the new study USED; the new study WAS_INFORMED_BY the narrowing, so sessions form a
chain (`study-lineage`). Bad input raises `SessionRefused` and creates nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import SessionRefused
from ...ontology import (
    ACTIVITY,
    AGENT,
    ENTITY,
    MODEL,
    NARROWING,
    PERSON,
    STUDY_SPACE,
    USED,
    WAS_ASSOCIATED_WITH,
    WAS_DERIVED_FROM,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    Prop,
    ids,
)
from ..identity import default_person, now_iso
from ..records import GraphBatch
from ..store import Store
from .model import DONE, TrialItem
from .queue import StudyQueue
from .space import _looks_like_range, expand, normalize_space

# Settings a next session takes from its parent (the study node's properties).
INHERITED = (
    Prop.GAIN_METRIC,
    Prop.GAIN_FUNCTION,
    Prop.MODE,
    Prop.K,
    Prop.SAMPLER,
    Prop.N_SAMPLES,
    Prop.SEED,
    Prop.EXPERIMENT,
    Prop.PRUNING,
)


@dataclass
class Kept:
    """One of the parent's best trials a narrowing kept."""

    rank: int
    item_id: int
    iteration: int | None
    gain: float
    params: dict[str, Any]
    run_id: str | None
    node_id: str


@dataclass
class Plan:
    """What a next session will be (see the module docstring)."""

    parent: str
    name: str
    top: int
    mode: str
    kept: list[Kept]
    parent_space: dict[str, Any]
    space: dict[str, Any]
    narrowed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)
    reason: str | None = None

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """name -> (parent's entry or None, new entry), for every entry that differs."""
        names = [*self.parent_space, *(n for n in self.space if n not in self.parent_space)]
        return {
            n: (self.parent_space.get(n), self.space.get(n))
            for n in names
            if self.parent_space.get(n) != self.space.get(n)
        }


@dataclass
class Session:
    """A started next session: the plan, the new study's queue and the narrowing's id."""

    plan: Plan
    queue: StudyQueue
    session: int
    node_id: str
    items: int


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def top_trials(study: str, items: Iterable[TrialItem], mode: str, top: Any) -> list[Kept]:
    """The `top` finished trials with the best gain (best first; ties by iteration)."""
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise SessionRefused(f"top is an integer >= 1, got {top!r}")
    done = [i for i in items if i.status == DONE and _finite(i.gain)]
    if not done:
        raise SessionRefused(
            f"study {study!r} has no finished trial with a gain: nothing to narrow from"
        )
    if top > len(done):
        raise SessionRefused(
            f"top {top} is more than the {len(done)} finished trial(s) of study {study!r}"
        )
    sign = -1.0 if mode == "max" else 1.0
    done.sort(key=lambda i: (sign * float(i.gain), i.iteration or 0, i.item_id))  # type: ignore[arg-type]
    return [
        Kept(n, i.item_id, i.iteration, float(i.gain), dict(i.params), i.run_id, i.node_id)  # type: ignore[arg-type]
        for n, i in enumerate(done[:top], start=1)
    ]


def _is_range(spec: Any) -> bool:
    if isinstance(spec, Mapping):
        return set(spec) == {"range"}
    return isinstance(spec, list) and _looks_like_range(spec)


def narrow_entry(name: str, spec: Any, values: Sequence[Any]) -> Any:
    """Entry `spec` of a space narrowed to the `values` the kept trials used."""
    if not values:
        raise SessionRefused(f"none of the kept trials has a value of {name!r} to narrow to")
    if _is_range(spec):
        start, end, step = spec["range"] if isinstance(spec, Mapping) else spec
        numbers = [v for v in values if _finite(v)]
        if len(numbers) != len(values):
            odd = next(v for v in values if not _finite(v))
            raise SessionRefused(
                f"{name!r} is a range, but a kept trial used {odd!r}: give its range by hand"
            )
        low, high = min(numbers), max(numbers)
        return {"range": [low, high, step]}
    if isinstance(spec, Mapping | list):
        listed = list(spec["values"]) if isinstance(spec, Mapping) else list(spec)
        used = [v for v in listed if v in values]
        for v in values:  # values of edited items, beyond the list: kept too
            if v not in used:
                used.append(v)
        return {"values": used}
    return spec  # a single value stays


def _names(given: Iterable[str] | None, what: str) -> list[str]:
    if given is None:
        return []
    if isinstance(given, str):
        return [given]
    out = list(given)
    bad = [n for n in out if not isinstance(n, str) or not n.strip()]
    if bad:
        raise SessionRefused(f"{what}: hyperparameter names are non-empty text, got {bad[0]!r}")
    return out


def plan_next(
    parent: str,
    settings: Mapping[str, Any],
    items: Iterable[TrialItem],
    name: str,
    top: int = 10,
    narrow: Iterable[str] | None = None,
    keep: Iterable[str] | None = None,
    add: Mapping[str, Any] | None = None,
    ranges: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> Plan:
    """The next session of study `parent` (its `settings` and queue `items`)."""
    if not isinstance(name, str) or not name.strip():
        raise SessionRefused("the next session needs a non-empty study name")
    if name == parent:
        raise SessionRefused(f"the next session needs a name of its own, not {parent!r}")
    space = dict(settings.get(Prop.SPACE) or {})
    mode = settings.get(Prop.MODE) or "max"
    kept = top_trials(parent, items, mode, top)
    known = ", ".join(space) or "none"
    keep_names, add, ranges = _names(keep, "keep"), dict(add or {}), dict(ranges or {})
    for n in keep_names:
        if n not in space:
            raise SessionRefused(f"study {parent!r} has no hyperparameter {n!r} to keep ({known})")
    if narrow is None:
        narrow_names = [n for n in space if n not in keep_names and n not in ranges]
    else:
        narrow_names = _names(narrow, "narrow")
        for n in narrow_names:
            if n not in space:
                raise SessionRefused(
                    f"study {parent!r} has no hyperparameter {n!r} to narrow (its space: "
                    f"{known}); use add to bring in a new one"
                )
        both = [n for n in narrow_names if n in keep_names or n in ranges]
        if both:
            raise SessionRefused(
                f"{both[0]!r} is both narrowed and kept or given by hand: choose one"
            )
    for n in add:
        if n in space:
            raise SessionRefused(
                f"{n!r} is in the space of {parent!r} already: narrow it, keep it or give "
                f"its new range by hand (ranges / --range)"
            )
        if n in ranges:
            raise SessionRefused(f"{n!r} is both added and given by hand: choose one")
    new_space = dict(space)
    for n in narrow_names:
        values = [k.params[n] for k in kept if n in k.params]
        new_space[n] = narrow_entry(n, space[n], values)
    new_space.update(add)
    new_space.update(ranges)
    try:
        normalized = normalize_space(new_space)
        parent_space = normalize_space(space) if space else {}
    except Exception as exc:
        raise SessionRefused(f"the next session's space is not valid: {exc}") from exc
    return Plan(
        parent=parent,
        name=name,
        top=top,
        mode=mode,
        kept=kept,
        parent_space=parent_space,
        space=normalized,
        narrowed=narrow_names,
        added=list(add),
        given=list(ranges),
        reason=reason,
    )


def space_digest(space: Mapping[str, Any]) -> str:
    """A short content digest of a space (its JSON with sorted keys)."""
    text = json.dumps(space, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _space_node(
    batch: GraphBatch, study: str, space: Mapping[str, Any], at: str | None = None
) -> str:
    """A study's space entity (`at`: when it was generated, for a narrowing's new one;
    a parent's space was given by its creator or a respace, at a time not known here)."""
    props = {Prop.STUDY: study, Prop.SPACE: json.dumps(space)}
    if at is not None:
        props[Prop.GENERATED] = at
    return batch.add_node(ids.study_space(study, space_digest(space)), ENTITY, STUDY_SPACE, **props)


def narrowing_batch(
    plan: Plan, person: str, at: str, models: Mapping[str, list[str]]
) -> GraphBatch:
    """The PROV of a narrowing (the module docstring); `models`: run id -> the models
    (node ids) the kept trials' runs generated."""
    b = GraphBatch()
    act = b.add_node(
        ids.narrowing(plan.name),
        ACTIVITY,
        NARROWING,
        **{
            Prop.STUDY: plan.name,
            Prop.PARENT_STUDY: plan.parent,
            Prop.TOP: plan.top,
            Prop.NARROWED: plan.narrowed,
            Prop.ADDED: plan.added,
            Prop.GIVEN: plan.given,
            Prop.REASON: plan.reason,
            Prop.PERSON: person,
            Prop.BEFORE: json.dumps(plan.parent_space),
            Prop.AFTER: json.dumps(plan.space),
            Prop.STARTED: at,
            Prop.ENDED: at,
        },
    )
    parent_node, new_node = ids.study(plan.parent), ids.study(plan.name)
    old_space = _space_node(b, plan.parent, plan.parent_space)
    new_space = _space_node(b, plan.name, plan.space, at)
    who = b.add_node(ids.person(person), AGENT, PERSON, **{Prop.NAME: person})
    b.add_edge(WAS_ASSOCIATED_WITH, act, who)
    b.add_edge(USED, parent_node, old_space)
    b.add_edge(USED, act, old_space, **{Prop.ROLE: "parent space"})
    for kept in plan.kept:
        b.add_edge(USED, act, kept.node_id, **{Prop.ROLE: "kept trial", Prop.RANK: kept.rank})
        for model in models.get(kept.run_id or "", []):
            b.add_edge(USED, act, model, **{Prop.ROLE: "kept model", Prop.RANK: kept.rank})
    b.add_edge(WAS_INFORMED_BY, act, parent_node)
    b.add_edge(WAS_GENERATED_BY, new_space, act)
    b.add_edge(WAS_DERIVED_FROM, new_space, old_space, **{"activity": act})
    b.add_edge(USED, new_node, new_space)
    b.add_edge(WAS_INFORMED_BY, new_node, act)
    return b


# The models the kept trials' runs generated (runs found through the id index). Not a
# WAS_INFORMED_BY of the runs: the chain study <- narrowing <- parent study stays the
# only WAS_INFORMED_BY path out of a study, which study-lineage follows.
_MODELS = (
    f"UNWIND $ids AS id MATCH (r:{ACTIVITY.label} {{{Prop.ID}: id}}) "
    f"MATCH (m:{ENTITY.label})-[:{WAS_GENERATED_BY.rel_type}]->(r) WHERE m:{MODEL.label} "
    f"RETURN r.{Prop.RUN_ID} AS run, m.{Prop.ID} AS model ORDER BY run, model"
)


def _kept_models(store: Store, plan: Plan) -> dict[str, list[str]]:
    wanted = [ids.run(k.run_id) for k in plan.kept if k.run_id]
    out: dict[str, list[str]] = {}
    for row in store.read(_MODELS, ids=wanted).rows if wanted else []:
        out.setdefault(row["run"], []).append(row["model"])
    return out


def preview_next(
    store: Store,
    parent: str,
    name: str,
    top: int = 10,
    narrow: Iterable[str] | None = None,
    keep: Iterable[str] | None = None,
    add: Mapping[str, Any] | None = None,
    ranges: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> tuple[Plan, dict[str, Any]]:
    """The plan of the next session (nothing written) and the parent's settings."""
    parent_queue = StudyQueue(store, parent)
    if not parent_queue.exists():
        raise SessionRefused(f"no study named {parent!r} to start a next session from")
    if StudyQueue(store, name).exists():
        raise SessionRefused(f"a study named {name!r} exists already: choose another name")
    settings = parent_queue.settings()
    items = parent_queue.items(include_removed=False)
    plan = plan_next(parent, settings, items, name, top, narrow, keep, add, ranges, reason)
    return plan, settings


def start_next(
    store: Store,
    parent: str,
    name: str,
    top: int = 10,
    narrow: Iterable[str] | None = None,
    keep: Iterable[str] | None = None,
    add: Mapping[str, Any] | None = None,
    ranges: Mapping[str, Any] | None = None,
    reason: str | None = None,
    person: str | None = None,
) -> Session:
    """Create study `name` as the next session of `parent` (the module docstring)."""
    plan, settings = preview_next(store, parent, name, top, narrow, keep, add, ranges, reason)
    person = default_person(person)
    queue = StudyQueue(store, name)
    inherited = {p: settings.get(p) for p in INHERITED}
    combos = expand(
        plan.space,
        inherited[Prop.SAMPLER] or "grid",
        inherited[Prop.N_SAMPLES],
        int(inherited[Prop.SEED] or 0),
    )
    session = int(settings.get(Prop.SESSION) or 1) + 1
    if not queue.create(
        plan.space,
        combos,
        person,
        **{**inherited, Prop.PARENT_STUDY: parent, Prop.SESSION: session},
    ):
        raise SessionRefused(f"a study named {name!r} exists already: choose another name")
    batch = narrowing_batch(plan, person, now_iso(), _kept_models(store, plan))
    store.write(batch)
    return Session(plan, queue, session, ids.narrowing(name), len(combos))
