"""Node-id builders shared by capture, kb and the app: `provkb:<path>` qualified names.

Names are data, so a path segment escapes anything but `[A-Za-z0-9-_.~]`; an escaped
name over `MAX_SEGMENT` characters becomes its first characters, `~` and its sha256
(ids are indexed, and Neo4j indexes at most 8 KB a key; the node keeps the whole name
in a property).
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from .vocabulary import PROVKB_PREFIX

MAX_SEGMENT = 256
_SHORT_HEAD = 64  # characters of the escaped start a shortened segment keeps


def segment(text: object) -> str:
    """One path segment of a name (escaped, shortened when long)."""
    name = str(text)
    escaped = quote(name, safe="-_.~")
    if len(escaped) <= MAX_SEGMENT:
        return escaped
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    head = ""
    for char in name:
        longer = head + quote(char, safe="-_.")
        if len(longer) > _SHORT_HEAD:
            break
        head = longer
    return f"{head}~{digest}"


def qualified(path: str) -> str:
    """`provkb:<path>`."""
    return f"{PROVKB_PREFIX}:{path}"


def person(name: str) -> str:
    """A person agent: `provkb:person/<name>`."""
    return qualified(f"person/{segment(name)}")


def run(run_id: str) -> str:
    """A training run: `provkb:run/<run id>`."""
    return qualified(f"run/{run_id}")


def steering_request(run_id: str, request_id: str) -> str:
    """A run's steering request: `provkb:run/<run>/request/<request id>`."""
    return f"{run(run_id)}/request/{request_id}"


def steering_claim(request_node: str) -> str:
    """The unique claim token of a steering request node."""
    return f"claim:{request_node}"


def study(name: str) -> str:
    """A study: `provkb:study/<name>`."""
    return qualified(f"study/{segment(name)}")


def trial_item(study_name: str, item_id: int, version: int) -> str:
    """Version `version` of a study's queue item."""
    return f"{study(study_name)}/item/{item_id}/v{version}"


def study_state(study_name: str, request_id: str) -> str:
    """The study state a queue edit used."""
    return f"{study(study_name)}/state/{request_id}"


def study_edit(study_name: str, request_id: str) -> str:
    """A queue edit (a SteeringAction of the study)."""
    return f"{study(study_name)}/steering/{request_id}"


def deletion(deletion_id: str) -> str:
    """A deletion (provkb delete): `provkb:deletion/<deletion id>`."""
    return qualified(f"deletion/{segment(deletion_id)}")


def study_space(study_name: str, digest: str) -> str:
    """A study's space as a narrowing used or generated it (`digest`: of its JSON)."""
    return f"{study(study_name)}/space/{segment(digest)}"


def narrowing(study_name: str) -> str:
    """The narrowing that started study `study_name` from its parent (one per study)."""
    return f"{study(study_name)}/narrowing"


def script_plan(sha256: str) -> str:
    """The Plan of a script version (provkb scan --record): `provkb:plan/script/<sha256>`."""
    return qualified(f"plan/script/{segment(sha256)}")
