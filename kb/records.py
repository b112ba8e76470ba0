"""The record model every writer speaks: PROV nodes and relations, ready for the store.

A `Node` is one PROV element (core kind + extra labels + properties); an `Edge` is one
PROV relation between two node ids. Property values are encoded to what both engines
store: primitives, lists of primitives, and JSON text for anything nested. A value
over the size limit (`max_value_bytes`) is stored truncated beside its original size
and sha256, and statements are cut to what one Bolt message carries (`sized_chunks`),
so no record a user makes can block a writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RecordTooLarge
from ..ontology import Kind, Relation, Subtype, truncated_sha256_prop, truncated_size_prop

log = logging.getLogger("provkb.records")

Primitive = str | int | float | bool

# A longer string or list is stored truncated. 1 MB keeps model configurations whole
# (the Plan's modelConfig of a ResNet50 is 169 KB, of an EfficientNetB0 224 KB).
DEFAULT_MAX_VALUE_KB = 1024
MAX_VALUE_KB_ENV = "PROVKB_MAX_VALUE_KB"
# What one statement may send. ArcadeDB's Bolt server takes messages of up to 16 MB and
# never answers a larger one (the client waits forever); Neo4j has no such limit.
MAX_STATEMENT_BYTES = 8 * 1024 * 1024
_warned: set[tuple[str, str, str]] = set()  # (owner, property, sha256) warned about
MAX_WARNINGS = 20  # truncation warnings a process gives; later ones are only counted


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
    for method in ("item", "tolist"):  # NumPy / tensor values, when they really convert
        convert = getattr(value, method, None)
        if callable(convert) and (method == "tolist" or getattr(value, "ndim", 0) == 0):
            try:
                plain = convert()
            except Exception:
                continue
            if plain is None or isinstance(plain, bool | int | float | str | list | tuple):
                return _jsonable(plain)
    return str(value)  # anything else (a mock's `tolist()` is another mock) as its text


def max_value_bytes() -> int:
    """The largest string or list stored whole: `PROVKB_MAX_VALUE_KB` (default 1 MB,
    UTF-8 bytes of a string, JSON text of a list). A malformed setting falls back to the
    default with a warning: capture never fails on it."""
    raw = os.environ.get(MAX_VALUE_KB_ENV, "")
    try:
        kilobytes = float(raw) if raw else DEFAULT_MAX_VALUE_KB
        if not math.isfinite(kilobytes) or kilobytes < 1:
            raise ValueError(raw)
    except ValueError:
        if ("", MAX_VALUE_KB_ENV, raw) not in _warned:
            _warned.add(("", MAX_VALUE_KB_ENV, raw))
            log.warning(
                "provkb: %s must be a number of kilobytes >= 1, got %r; using %d",
                MAX_VALUE_KB_ENV,
                raw,
                DEFAULT_MAX_VALUE_KB,
            )
        kilobytes = DEFAULT_MAX_VALUE_KB
    return int(kilobytes * 1024)


def _list_json(items: list[Primitive]) -> str:
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _maybe_long(value: str | list[Primitive]) -> bool:
    """Cheap test: could `value` be over the smallest limit (1 KB)?"""
    if isinstance(value, str):
        return len(value) > 256
    return sum(len(v) if isinstance(v, str) else 8 for v in value) > 256


def _truncated(value: Primitive | list[Primitive], limit: int) -> tuple[Any, int, str] | None:
    """(truncated value, original size, sha256) of a value over `limit` bytes, else None."""
    if isinstance(value, str):
        if len(value) * 4 <= limit:  # UTF-8 needs at most 4 bytes a character
            return None
        data = _utf8(value)
        if len(data) <= limit:
            return None
        return data[:limit].decode("utf-8", "ignore"), len(data), hashlib.sha256(data).hexdigest()
    data = _utf8(_list_json(value))
    if len(data) <= limit:
        return None
    kept: list[Primitive] = []
    used = 2
    for item in value:
        used += len(_utf8(_list_json([item]))) - 1  # the item and its comma
        if used > limit:
            break
        kept.append(item)
    return kept, len(data), hashlib.sha256(data).hexdigest()


def encode_props(
    props: Mapping[str, Any], owner: str = ""
) -> dict[str, Primitive | list[Primitive]]:
    """Encode a property map, dropping None values.

    A string or list over `max_value_bytes` is cut to it, and its original size and
    sha256 are added (`truncated_size_prop`, `truncated_sha256_prop`); the first time a
    value is cut, one warning names it (`owner`: the record's id, for the message).
    """
    out: dict[str, Primitive | list[Primitive]] = {}
    limit: int | None = None
    for key, value in props.items():
        encoded = encode_value(value)
        if encoded is None:
            continue
        key = str(key)
        if isinstance(encoded, str | list) and _maybe_long(encoded):
            limit = limit or max_value_bytes()
            cut = _truncated(encoded, limit)
            if cut is not None:
                encoded, size, digest = cut
                out[truncated_size_prop(key)] = size
                out[truncated_sha256_prop(key)] = digest
                _warn_truncated(owner, key, size, digest, limit)
        out[key] = encoded
    return out


def _warn_truncated(owner: str, key: str, size: int, digest: str, limit: int) -> None:
    if (owner, key, digest) in _warned or len(_warned) > MAX_WARNINGS:
        return
    _warned.add((owner, key, digest))
    if len(_warned) > MAX_WARNINGS:
        log.warning("provkb: more values were stored truncated; no further warnings")
        return
    log.warning(
        "provkb: %s of %s is %s, over the %s limit (%s): stored truncated, with its "
        "size in %r and sha256 in %r",
        repr(key),
        owner or "a record",
        _size_text(size),
        _size_text(limit),
        MAX_VALUE_KB_ENV,
        truncated_size_prop(key),
        truncated_sha256_prop(key),
    )


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 2**20:.1f} MB"
    return f"{size / 1024:.0f} KB"


def payload_size(value: Any) -> int:
    """At least the bytes `value` takes in a Bolt message (cheap: text counts 4 bytes a
    character unless it is ASCII; every other scalar 9)."""
    kind = type(value)
    if kind is str:
        return 5 + (len(value) if value.isascii() else 4 * len(value))
    if kind is dict:
        size = 5
        for key, item in value.items():
            size += 5 + (len(key) if key.isascii() else 4 * len(key))
            size += payload_size(item) if type(item) in _NESTED else 9
        return size
    if kind is list or kind is tuple:
        return 5 + sum(payload_size(v) for v in value)
    if isinstance(value, Mapping):
        return payload_size(dict(value))
    return 9


_NESTED = frozenset({str, dict, list, tuple})


def sized_chunks(
    rows: list[Mapping[str, Any]], max_rows: int, max_bytes: int = MAX_STATEMENT_BYTES
) -> Iterator[list[Mapping[str, Any]]]:
    """`rows` in order, cut into statements of at most `max_rows` rows and `max_bytes`.

    RecordTooLarge for a row bigger than `max_bytes` on its own (many large values on
    one record): no engine may be sent it, and retrying cannot help."""
    chunk: list[Mapping[str, Any]] = []
    used = 0
    for row in rows:
        size = payload_size(row)
        if size > max_bytes:
            what = row.get("id") or f"{row.get('src')} -> {row.get('dst')}"
            raise RecordTooLarge(
                f"the record {what} carries {_size_text(size)} of properties, more than the "
                f"{_size_text(max_bytes)} one statement may send to the store; it was not "
                f"written (each value is cut to {MAX_VALUE_KB_ENV}, but it holds too many "
                f"large ones)"
            )
        if chunk and (len(chunk) >= max_rows or used + size > max_bytes):
            yield chunk
            chunk, used = [], 0
        chunk.append(row)
        used += size
    if chunk:
        yield chunk


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
            [n.id, n.kind.label, list(n.extra_labels), encode_props(n.props, n.id)]
            for n in batch.nodes
        ],
        "edges": [
            [e.relation.rel_type, e.src, e.dst, encode_props(e.props, f"{e.src} -> {e.dst}")]
            for e in batch.edges
        ],
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
