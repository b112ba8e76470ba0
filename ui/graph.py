"""The lineage browser's graph: nodes and relations gathered around a focus node,
drawn with Graphviz in PROV's notation (entities yellow ellipses, activities blue
rectangles, agents orange pentagons), relations named as in PROV (`wasGeneratedBy`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import graphviz

from ..ontology import (
    ACTIVITY,
    ADAPTATION,
    AGENT,
    ENTITY,
    ENVIRONMENT,
    EPOCH,
    EVALUATION,
    HYPERPARAMETER,
    KIND_BY_LABEL,
    METRICS,
    PLAN,
    RELATION_BY_TYPE,
    SCRIPT,
    STEERING_ACTION,
    STEERING_REQUEST,
    STUDY,
    STUDY_STATE,
    TRAINING_RUN,
    TRIAL_ITEM,
    Prop,
)
from ..queries.library import Steer
from .common import fmt

PROV_STYLE: dict[str, dict[str, str]] = {
    ENTITY.label: {"shape": "ellipse", "fillcolor": "#FFFC87", "color": "#808080"},
    ACTIVITY.label: {"shape": "box", "fillcolor": "#9FB1FC", "color": "#0000FF"},
    AGENT.label: {"shape": "house", "fillcolor": "#FED37F", "color": "#000000"},
}
OTHER_STYLE = {"shape": "ellipse", "fillcolor": "#EEEEEE", "color": "#999999"}


def kind_of(labels: Iterable[str]) -> str | None:
    """The PROV core label (Entity, Activity, Agent) among a node's labels."""
    return next((label for label in labels if label in KIND_BY_LABEL), None)


def domain_of(labels: Iterable[str]) -> str | None:
    """The first label that is not a PROV core label (e.g. Hyperparameter)."""
    return next((label for label in sorted(labels) if label not in KIND_BY_LABEL), None)


def display_name(labels: Iterable[str], props: Mapping[str, Any]) -> str:
    """A short caption for a node: what a person would call it."""
    labels = list(labels)
    domain = domain_of(labels) or ""
    name = props.get(Prop.NAME) or props.get(Prop.HOSTNAME)
    hp = props.get(Prop.HYPERPARAMETER)
    if domain == HYPERPARAMETER.label:
        return f"{props.get(Prop.NAME)} = {fmt(props.get(Prop.VALUE))} (v{props.get(Prop.VERSION)})"
    if domain == EPOCH.label:
        return f"epoch {props.get(Prop.EPOCH)}"
    if domain == METRICS.label:
        if props.get(Prop.EPOCH) is not None:
            return f"metrics of epoch {props.get(Prop.EPOCH)}"
        return f"{props.get(Prop.KIND) or ''} metrics".strip()
    if domain == ADAPTATION.label:
        return f"adaptation {hp or props.get(Prop.KIND) or ''}".strip()
    if domain == STEERING_ACTION.label:
        what = props.get(Steer.ACTION) or ""
        target = hp or props.get(Steer.ITEM_ID) or ""
        return f"steering {what} {target}".strip()
    if domain == STEERING_REQUEST.label:
        return f"request {props.get(Steer.ACTION) or ''} {hp or ''}".strip()
    if domain == TRIAL_ITEM.label:
        item, version = props.get(Steer.ITEM_ID), props.get(Prop.VERSION)
        return f"item {item} v{version} ({props.get(Prop.STATUS)})"
    if domain == STUDY_STATE.label:
        return f"study state after iteration {props.get(Steer.ITERATION)}"
    if domain == STUDY.label:
        return f"study {name}"
    if domain == TRAINING_RUN.label:
        return f"run {name or props.get(Prop.RUN_ID)}"
    if domain == SCRIPT.label:
        path = str(props.get(Prop.PATH) or "")
        return f"script {path.rsplit('/', 1)[-1]}"
    if domain in (ENVIRONMENT.label, PLAN.label, EVALUATION.label) or (not name and domain):
        return domain.lower()
    if name:
        return str(name) if not domain else f"{name}"
    node_id = str(props.get(Prop.ID) or "")
    return node_id.rsplit("/", 1)[-1] or node_id


def relation_name(rel_type: str) -> str:
    relation = RELATION_BY_TYPE.get(rel_type)
    return relation.name if relation else rel_type


@dataclass
class Neighbourhood:
    """The nodes shown and the relations among them."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {labels, props}
    edges: set[tuple[str, str, str]] = field(default_factory=set)  # (src, rel type, dst)

    def add_node(self, node_id: str, labels: list[str], props: dict[str, Any]) -> None:
        self.nodes[node_id] = {"labels": list(labels), "props": dict(props)}

    def kinds(self) -> dict[str, str | None]:
        return {i: kind_of(n["labels"]) for i, n in self.nodes.items()}

    def filtered(self, kinds: set[str], domains: set[str] | None, keep: set[str]) -> Neighbourhood:
        """Only nodes of these PROV kinds (and domain labels, when given); `keep` stays."""
        out = Neighbourhood()
        for node_id, n in self.nodes.items():
            kind_ok = kind_of(n["labels"]) in kinds
            domain = domain_of(n["labels"])
            domain_ok = domains is None or domain in domains or domain is None
            if node_id in keep or (kind_ok and domain_ok):
                out.nodes[node_id] = n
        out.edges = {e for e in self.edges if e[0] in out.nodes and e[2] in out.nodes}
        return out

    def grouped(self, limit: int, keep: set[str]) -> Neighbourhood:
        """At most `limit` neighbours per (node, relation, direction, label): the others
        are folded into one `+ n more` node (a node in `keep` is never folded)."""
        if limit <= 0:
            return self
        groups: dict[tuple[str, str, str, str], list[str]] = {}
        for src, rel, dst in sorted(self.edges):
            for centre, other, way in ((src, dst, "out"), (dst, src, "in")):
                if centre in keep and other not in keep:
                    label = domain_of(self.nodes[other]["labels"]) or ""
                    groups.setdefault((centre, rel, way, label), []).append(other)
        folded: dict[str, tuple[str, str, str, str, int]] = {}
        for (centre, rel, way, label), others in groups.items():
            if len(others) > limit:
                for other in others[limit - 1 :]:
                    folded[other] = (centre, rel, way, label, len(others) - limit + 1)
        if not folded:
            return self
        out = Neighbourhood()
        out.nodes = {i: n for i, n in self.nodes.items() if i not in folded}
        out.edges = {e for e in self.edges if e[0] not in folded and e[2] not in folded}
        for centre, rel, way, label, count in set(folded.values()):
            more = f"{MORE_PREFIX}{centre}:{rel}:{way}:{label}"
            out.nodes[more] = {"labels": [MORE], "props": {"count": count, "label": label}}
            out.edges.add((centre, rel, more) if way == "out" else (more, rel, centre))
        return out


MORE = "More"  # label of a folded group's placeholder node (not stored anywhere)
MORE_PREFIX = "more:"  # the id of a folded group's placeholder starts so
# PROV relations point from effect to cause: ranked right to left, causes come first.
TIME_LEFT_TO_RIGHT = "RL"


def to_dot(
    hood: Neighbourhood,
    focus: str | None = None,
    selected: str | None = None,
    direction: str = TIME_LEFT_TO_RIGHT,
) -> str:
    """Graphviz DOT text of the neighbourhood in PROV notation (relations point from
    effect to cause, as in `prov.dot`; by default causes on the left, so that time (and
    epochs) run left to right)."""
    dot = graphviz.Digraph(
        "lineage",
        graph_attr={
            "rankdir": direction,
            "fontname": "Helvetica",
            "fontsize": "12",
            "nodesep": "0.12",
            "ranksep": "0.5",
        },
        node_attr={"style": "filled", "fontname": "Helvetica", "fontsize": "12"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#555555"},
    )
    for node_id, n in sorted(hood.nodes.items()):
        style = dict(PROV_STYLE.get(kind_of(n["labels"]) or "", OTHER_STYLE))
        if node_id == focus:
            style["penwidth"] = "3"
        if node_id == selected:
            style["penwidth"] = "3"
            style["color"] = "#d62728"
        if MORE in n["labels"]:
            style = {"shape": "note", "fillcolor": "#F2F2F2", "color": "#999999"}
        dot.node(safe_name(node_id), label=caption(node_id, n), tooltip=node_id, **style)
    for src, rel, dst in sorted(hood.edges):
        dot.edge(safe_name(src), safe_name(dst), label=relation_name(rel))
    return dot.source


def caption(node_id: str, node: Mapping[str, Any], width: int = 38) -> str:
    """A node's short caption (a folded group says how many it holds), cut to `width`."""
    if MORE in node["labels"]:
        text = f"+ {node['props']['count']} more {node['props']['label'] or 'nodes'}"
    else:
        text = display_name(node["labels"], node["props"]) or node_id
    return text if len(text) <= width else text[: width - 1] + "…"


def safe_name(node_id: str) -> str:
    """The node's Graphviz name: ':' would mean a port (the graphviz package quotes)."""
    return node_id.replace(":", "∶")
