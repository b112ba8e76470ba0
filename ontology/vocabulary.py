"""The PROV vocabulary as ProvKB stores it: one table, the single source of truth.

Every PROV concept maps to a Neo4j label (element kinds and subtypes) or relationship
type (relations), a PROV-O IRI and a PROV-JSON key. Nothing else in ProvKB spells a
label or relationship type: it imports them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROV_NS = "http://www.w3.org/ns/prov#"
PROVKB_NS = "https://provkb.org/ns#"
PROVKB_PREFIX = "provkb"
# Instance IRIs (node and relation ids) in exports: a data namespace of their own, distinct
# from the vocabulary (PROVKB_DATA_NAMESPACE overrides the base; kb.prov_names).
PROVKB_DATA_NS = "https://provkb.org/data/"
PROVKB_DATA_PREFIX = "provkbdata"


@dataclass(frozen=True)
class Kind:
    """A PROV element kind (Entity, Activity, Agent): the node's core label."""

    name: str
    label: str
    iri: str
    provjson_key: str


@dataclass(frozen=True)
class Subtype:
    """A specialisation: an extra node label on top of a core kind."""

    name: str
    label: str
    kind: Kind
    iri: str
    provjson_type: str  # the value written as prov:type in PROV-JSON ("prov:Person")


@dataclass(frozen=True)
class Relation:
    """A PROV relation stored as a relationship from `source` to `target`.

    `source_key`/`target_key` are the PROV-JSON attribute names of both ends;
    `extra_keys` maps secondary PROV-JSON references (e.g. the plan of an
    association) to the relationship property that holds the referenced node id.
    """

    name: str
    rel_type: str
    iri: str
    provjson_key: str
    source: Kind
    target: Kind
    source_key: str
    target_key: str
    time_key: str | None = None
    extra_keys: dict[str, str] = field(default_factory=dict)
    provjson_type: str | None = None  # e.g. "prov:Revision" for a wasRevisionOf derivation


ENTITY = Kind("Entity", "Entity", PROV_NS + "Entity", "entity")
ACTIVITY = Kind("Activity", "Activity", PROV_NS + "Activity", "activity")
AGENT = Kind("Agent", "Agent", PROV_NS + "Agent", "agent")
KINDS: tuple[Kind, ...] = (ENTITY, ACTIVITY, AGENT)

PERSON = Subtype("Person", "Person", AGENT, PROV_NS + "Person", "prov:Person")
SOFTWARE_AGENT = Subtype(
    "SoftwareAgent", "SoftwareAgent", AGENT, PROV_NS + "SoftwareAgent", "prov:SoftwareAgent"
)
ORGANIZATION = Subtype(
    "Organization", "Organization", AGENT, PROV_NS + "Organization", "prov:Organization"
)
PLAN = Subtype("Plan", "Plan", ENTITY, PROV_NS + "Plan", "prov:Plan")
COLLECTION = Subtype("Collection", "Collection", ENTITY, PROV_NS + "Collection", "prov:Collection")
BUNDLE = Subtype("Bundle", "Bundle", ENTITY, PROV_NS + "Bundle", "prov:Bundle")
PROV_SUBTYPES: tuple[Subtype, ...] = (
    PERSON,
    SOFTWARE_AGENT,
    ORGANIZATION,
    PLAN,
    COLLECTION,
    BUNDLE,
)

USED = Relation(
    "used",
    "USED",
    PROV_NS + "used",
    "used",
    ACTIVITY,
    ENTITY,
    "prov:activity",
    "prov:entity",
    time_key="prov:time",
)
WAS_GENERATED_BY = Relation(
    "wasGeneratedBy",
    "WAS_GENERATED_BY",
    PROV_NS + "wasGeneratedBy",
    "wasGeneratedBy",
    ENTITY,
    ACTIVITY,
    "prov:entity",
    "prov:activity",
    time_key="prov:time",
)
WAS_ASSOCIATED_WITH = Relation(
    "wasAssociatedWith",
    "WAS_ASSOCIATED_WITH",
    PROV_NS + "wasAssociatedWith",
    "wasAssociatedWith",
    ACTIVITY,
    AGENT,
    "prov:activity",
    "prov:agent",
    extra_keys={"prov:plan": "plan"},
)
WAS_ATTRIBUTED_TO = Relation(
    "wasAttributedTo",
    "WAS_ATTRIBUTED_TO",
    PROV_NS + "wasAttributedTo",
    "wasAttributedTo",
    ENTITY,
    AGENT,
    "prov:entity",
    "prov:agent",
)
WAS_DERIVED_FROM = Relation(
    "wasDerivedFrom",
    "WAS_DERIVED_FROM",
    PROV_NS + "wasDerivedFrom",
    "wasDerivedFrom",
    ENTITY,
    ENTITY,
    "prov:generatedEntity",
    "prov:usedEntity",
    extra_keys={"prov:activity": "activity"},
)
WAS_REVISION_OF = Relation(
    "wasRevisionOf",
    "WAS_REVISION_OF",
    PROV_NS + "wasRevisionOf",
    "wasDerivedFrom",
    ENTITY,
    ENTITY,
    "prov:generatedEntity",
    "prov:usedEntity",
    extra_keys={"prov:activity": "activity"},
    provjson_type="prov:Revision",
)
WAS_INFORMED_BY = Relation(
    "wasInformedBy",
    "WAS_INFORMED_BY",
    PROV_NS + "wasInformedBy",
    "wasInformedBy",
    ACTIVITY,
    ACTIVITY,
    "prov:informed",
    "prov:informant",
)
ACTED_ON_BEHALF_OF = Relation(
    "actedOnBehalfOf",
    "ACTED_ON_BEHALF_OF",
    PROV_NS + "actedOnBehalfOf",
    "actedOnBehalfOf",
    AGENT,
    AGENT,
    "prov:delegate",
    "prov:responsible",
    extra_keys={"prov:activity": "activity"},
)
WAS_STARTED_BY = Relation(
    "wasStartedBy",
    "WAS_STARTED_BY",
    PROV_NS + "wasStartedBy",
    "wasStartedBy",
    ACTIVITY,
    ENTITY,
    "prov:activity",
    "prov:trigger",
    time_key="prov:time",
    extra_keys={"prov:starter": "starter"},
)
WAS_ENDED_BY = Relation(
    "wasEndedBy",
    "WAS_ENDED_BY",
    PROV_NS + "wasEndedBy",
    "wasEndedBy",
    ACTIVITY,
    ENTITY,
    "prov:activity",
    "prov:trigger",
    time_key="prov:time",
    extra_keys={"prov:ender": "ender"},
)
WAS_INVALIDATED_BY = Relation(
    "wasInvalidatedBy",
    "WAS_INVALIDATED_BY",
    PROV_NS + "wasInvalidatedBy",
    "wasInvalidatedBy",
    ENTITY,
    ACTIVITY,
    "prov:entity",
    "prov:activity",
    time_key="prov:time",
)
HAD_MEMBER = Relation(
    "hadMember",
    "HAD_MEMBER",
    PROV_NS + "hadMember",
    "hadMember",
    ENTITY,
    ENTITY,
    "prov:collection",
    "prov:entity",
)

RELATIONS: tuple[Relation, ...] = (
    USED,
    WAS_GENERATED_BY,
    WAS_ASSOCIATED_WITH,
    WAS_ATTRIBUTED_TO,
    WAS_DERIVED_FROM,
    WAS_REVISION_OF,
    WAS_INFORMED_BY,
    ACTED_ON_BEHALF_OF,
    WAS_STARTED_BY,
    WAS_ENDED_BY,
    WAS_INVALIDATED_BY,
    HAD_MEMBER,
)

KIND_BY_LABEL: dict[str, Kind] = {k.label: k for k in KINDS}
RELATION_BY_TYPE: dict[str, Relation] = {r.rel_type: r for r in RELATIONS}
RELATION_BY_NAME: dict[str, Relation] = {r.name: r for r in RELATIONS}
PROV_SUBTYPE_BY_LABEL: dict[str, Subtype] = {s.label: s for s in PROV_SUBTYPES}
