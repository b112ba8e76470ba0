"""Studies: steerable trial queues stored in the knowledge base (docs/graph-model.md).

A study expands a hyperparameter space into queue items, evaluated one by one
("iterations"). Each item is a chain of `:Entity:TrialItem` versions; only the current
version of a *pending* item may change, and every change is a queue edit (a
`:SteeringAction` of the person) that used the study state the person saw (iterations
finished, last gain, moving average of the last k gains) and the old version, and
generated the new version (`WAS_REVISION_OF` the old one).

Numbers: iterations are 1-based. A queue edit's `iteration` is the number of iterations
started when it was made (it takes effect from iteration + 1, the next claim); its study
state's `iteration` is the number finished (what the person could see). Item positions are
sort keys; users see and give places among the pending items (1 = evaluated next).

Modules: `space` (the space grammar and sampling), `model` (statuses, items, edits and
the pure queue rules, the moving average), `queue` (`StudyQueue`: the store side, one
`Store.transaction` per write), `sessions` (a study narrowed from another one's best
trials: the next search session, its PROV), `pruning` (the optional median pruning rule).
The training-side runner is `provkb.capture.study`.
"""

from ..identity import default_person, now_iso
from .model import (
    ADD,
    COMPLETED,
    CREATED,
    DEFAULT_K,
    DONE,
    EDIT,
    FAILED,
    ITEM_STATUSES,
    MODES,
    MOVE,
    PAUSED,
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
    moving_average,
    study_state,
)
from .pruning import MedianPruning
from .queue import (
    StudyQueue,
    edit_node_id,
    item_node_id,
    list_studies,
    person_node_id,
    state_node_id,
    study_node_id,
)
from .sessions import Plan, Session, SessionRefused, plan_next, preview_next, start_next
from .space import (
    GRID,
    MAX_ITEMS,
    RANDOM,
    SAMPLERS,
    check_params,
    dimension_values,
    expand,
    normalize_space,
    range_values,
)

__all__ = [
    "ADD", "COMPLETED", "CREATED", "DEFAULT_K", "DONE", "EDIT", "FAILED", "GRID",
    "ITEM_STATUSES", "MAX_ITEMS", "MODES", "MOVE", "PAUSED", "PENDING", "RANDOM", "REMOVE",
    "REMOVED", "RESPACE", "RUNNING", "SAMPLERS", "STUDY_RUNNING", "Claim", "EditResult",
    "MedianPruning", "Plan", "Session", "SessionRefused", "plan_next", "preview_next",
    "start_next",
    "StudyQueue", "StudyState", "TrialItem", "check_params", "default_person",
    "dimension_values", "edit_node_id", "expand", "item_node_id", "list_studies",
    "moving_average", "normalize_space", "now_iso", "person_node_id", "range_values",
    "state_node_id", "study_node_id", "study_state",
]  # fmt: skip
