"""The record model every writer speaks: PROV nodes and relations, ready for the store.

A `Node` is one PROV element (core kind + extra labels + properties); an `Edge` is one
PROV relation between two node ids. Property values are encoded to what both engines
store: primitives, lists of primitives, and JSON text for anything nested.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..ontology import Kind, Relation, Subtype

Primitive = str | int | float | bool


def encode_value(value: Any) -> Primitive | list[Primitive] | None:
    """Encode a Python value as a property value both engines store.

    None stays None (the property is dropped), numpy scalars become Python scalars,
    homogeneous lists of primitives stay lists, anything else becomes JSON text.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value
    item = getattr(value, "item", None)  # numpy / tensor scalars
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return encode_value(item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, list | tuple):
        if not value:
            return []
        items = [encode_value(v) for v in value]
        kinds = {type(v) for v in items}
        if items and len(kinds) == 1 and kinds <= {str, int, float, bool}:
            return items
        if items and kinds == {int, float}:  # property lists are homogeneous: widen ints
            return [float(v) for v in items]
        return json.dumps(_jsonable(value), sort_keys=True)
    return json.dumps(_jsonable(value), sort_keys=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return _jsonable(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _jsonable(tolist())
    return str(value)


def encode_props(props: Mapping[str, Any]) -> dict[str, Primitive | list[Primitive]]:
    """Encode a property map, dropping None values."""
    out: dict[str, Primitive | list[Primitive]] = {}
    for key, value in props.items():
        encoded = encode_value(value)
        if encoded is not None:
            out[str(key)] = encoded
    return out


@dataclass
class Node:
    """One PROV element: `id` is its qualified name (e.g. `provkb:run/ab12/epoch/3`)."""

    id: str
    kind: Kind
    subtypes: tuple[Subtype, ...] = ()
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_labels(self) -> tuple[str, ...]:
        """The labels beyond the core kind, in a stable order."""
        return tuple(sorted({s.label for s in self.subtypes}))


@dataclass
class Edge:
    """One PROV relation from node `src` to node `dst` (ids)."""

    relation: Relation
    src: str
    dst: str
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphBatch:
    """Nodes and edges to write together; nodes are always written first."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def add_node(
        self,
        id: str,
        kind: Kind,
        /,
        *subtypes: Subtype,
        **props: Any,
    ) -> str:
        """Append a node and return its id."""
        self.nodes.append(Node(id, kind, tuple(subtypes), dict(props)))
        return id

    def add_edge(self, relation: Relation, src: str, dst: str, /, **props: Any) -> None:
        """Append a relation from `src` to `dst`."""
        self.edges.append(Edge(relation, src, dst, dict(props)))

    def extend(self, other: GraphBatch) -> None:
        """Append everything of another batch."""
        self.nodes.extend(other.nodes)
        self.edges.extend(other.edges)

    def __len__(self) -> int:
        return len(self.nodes) + len(self.edges)

    @classmethod
    def concat(cls, batches: Iterable[GraphBatch]) -> GraphBatch:
        """One batch holding all of `batches`, in order."""
        out = cls()
        for batch in batches:
            out.extend(batch)
        return out


def batch_to_dict(batch: GraphBatch) -> dict[str, list]:
    """A JSON-ready form of a batch (labels and relation types by name)."""
    return {
        "nodes": [
            [n.id, n.kind.label, list(n.extra_labels), encode_props(n.props)] for n in batch.nodes
        ],
        "edges": [[e.relation.rel_type, e.src, e.dst, encode_props(e.props)] for e in batch.edges],
    }


def batch_from_dict(data: Mapping[str, Any]) -> GraphBatch:
    """Rebuild a batch from `batch_to_dict` output; labels are checked against the ontology."""
    from ..ontology import KIND_BY_LABEL, RELATION_BY_TYPE, SUBTYPE_BY_LABEL

    batch = GraphBatch()
    for node_id, kind, extra, props in data.get("nodes", []):
        subtypes = tuple(SUBTYPE_BY_LABEL[label] for label in extra)
        batch.nodes.append(Node(node_id, KIND_BY_LABEL[kind], subtypes, dict(props)))
    for rel_type, src, dst, props in data.get("edges", []):
        batch.edges.append(Edge(RELATION_BY_TYPE[rel_type], src, dst, dict(props)))
    return batch
