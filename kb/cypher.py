"""All Cypher the store itself runs: schema, batched idempotent writes, graph reads.

Labels and relationship types are taken from the ontology only, never from input;
values always travel as parameters. Named lineage queries live in `provkb.queries`.
"""

from __future__ import annotations

from ..ontology import (
    KIND_BY_LABEL,
    KINDS,
    NAMESPACE_LABEL,
    RELATION_BY_TYPE,
    SUBTYPE_BY_LABEL,
    Kind,
    Prop,
    Relation,
)

ENGINE_NEO4J = "neo4j"
ENGINE_ARCADEDB = "arcadedb"


def _checked_label(label: str) -> str:
    if label not in SUBTYPE_BY_LABEL and label not in KIND_BY_LABEL and label != NAMESPACE_LABEL:
        raise ValueError(f"not an ontology label: {label!r}")
    return label


def schema_statements(engine: str) -> list[str]:
    """Constraints (and, where the engine needs them, indexes) on PROV identifiers.

    Engine difference: ArcadeDB answers id lookups fastest with an explicit index
    beside the uniqueness constraint; Neo4j builds that index with the constraint
    and refuses a second one on the same property.
    """
    labels = [k.label for k in KINDS] + [NAMESPACE_LABEL]
    statements = [
        f"CREATE CONSTRAINT provkb_{label.lower()}_id IF NOT EXISTS "
        f"FOR (n:{label}) REQUIRE n.{Prop.ID} IS UNIQUE"
        for label in labels
    ]
    if engine == ENGINE_ARCADEDB:
        statements += [
            f"CREATE INDEX provkb_{label.lower()}_id_idx IF NOT EXISTS "
            f"FOR (n:{label}) ON (n.{Prop.ID})"
            for label in labels
        ]
    for kind in KINDS:
        statements.append(
            f"CREATE INDEX provkb_{kind.label.lower()}_run IF NOT EXISTS "
            f"FOR (n:{kind.label}) ON (n.{Prop.RUN_ID})"
        )
    return statements


def merge_nodes(kind: Kind, extra_labels: tuple[str, ...]) -> str:
    """UNWIND rows {id, props} and MERGE them on id with their full label set.

    Engine difference: ArcadeDB stores a label set as a type, so adding a label to an
    existing node re-creates it (and trips the uniqueness check inside a
    transaction). Nodes are therefore always merged with all their labels at once,
    and relationships never create placeholder nodes (see `merge_edges`).
    """
    labels = "".join(f":{_checked_label(label)}" for label in (kind.label, *extra_labels))
    return f"UNWIND $rows AS r MERGE (n{labels} {{{Prop.ID}: r.id}}) SET n += r.props"


def merge_edges(relation: Relation) -> str:
    """UNWIND rows {src, dst, props}; MERGE one relationship per (src, type, dst).

    Both ends must exist: the statement returns how many rows found both, so the
    store can refuse a batch that refers to unknown nodes.
    """
    if RELATION_BY_TYPE.get(relation.rel_type) is not relation:
        raise ValueError(f"not an ontology relation: {relation.rel_type!r}")
    return (
        f"UNWIND $rows AS r "
        f"MATCH (a:{relation.source.label} {{{Prop.ID}: r.src}}) "
        f"MATCH (b:{relation.target.label} {{{Prop.ID}: r.dst}}) "
        f"MERGE (a)-[e:{relation.rel_type}]->(b) SET e += r.props "
        f"RETURN count(*) AS matched"
    )


MERGE_NAMESPACES = (
    f"UNWIND $rows AS r MERGE (n:{NAMESPACE_LABEL} {{{Prop.ID}: r.id}}) "
    f"SET n.{Prop.PREFIX} = r.prefix, n.{Prop.URI} = r.uri"
)

READ_NAMESPACES = (
    f"MATCH (n:{NAMESPACE_LABEL}) RETURN n.{Prop.PREFIX} AS prefix, n.{Prop.URI} AS uri "
    f"ORDER BY prefix"
)

COUNT_NODES = "MATCH (n) RETURN count(n) AS count"
COUNT_EDGES = "MATCH ()-[e]->() RETURN count(e) AS count"
DELETE_ALL = "MATCH (n) DETACH DELETE n"


def read_nodes(kind: Kind) -> str:
    """Every node of a kind with its labels and properties, optionally only some ids."""
    return (
        f"MATCH (n:{kind.label}) WHERE $ids IS NULL OR n.{Prop.ID} IN $ids "
        f"RETURN n.{Prop.ID} AS id, labels(n) AS labels, properties(n) AS props "
        f"ORDER BY id"
    )


def read_edges(relation: Relation) -> str:
    """Every relationship of a type, optionally only those touching some ids."""
    return (
        f"MATCH (a:{relation.source.label})-[e:{relation.rel_type}]->"
        f"(b:{relation.target.label}) "
        f"WHERE $ids IS NULL OR (a.{Prop.ID} IN $ids AND b.{Prop.ID} IN $ids) "
        f"RETURN a.{Prop.ID} AS src, b.{Prop.ID} AS dst, properties(e) AS props "
        f"ORDER BY src, dst"
    )
