"""The subjects of the query builder (`queries.builder`): what each can be asked about.

Each `Subject` is a MATCH over labels and relationship types of `provkb.ontology` and a
whitelist of fields, each a Cypher expression over the MATCH's variables built from
`ontology.Prop` names only (`r` a run, `e` an epoch, `m` its Metrics, `h` a
hyperparameter value, `a` an adaptation or steering action, `s` a study).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..ontology import (
    ADAPTATION,
    ENTITY,
    EPOCH,
    HYPERPARAMETER,
    METRICS,
    STEERING_ACTION,
    STUDY,
    TRAINING_RUN,
    WAS_GENERATED_BY,
    WAS_INFORMED_BY,
    HyperparameterName,
    Prop,
    RunStatus,
    StudyStatus,
    SummaryStat,
)
from .library import Metric, shown_status

TEXT, NUMBER, TIME, STATUS, VALUE = "text", "number", "time", "status", "value"


def _statuses(kind: type) -> tuple[str, ...]:
    return tuple(v for k, v in vars(kind).items() if k.isupper() and isinstance(v, str))


@dataclass(frozen=True)
class Field:
    expr: str  # Cypher over the subject's variables (names from ontology only)
    kind: str = TEXT


@dataclass(frozen=True)
class Subject:
    """What a question is about: its MATCH, its fields and what else it offers."""

    name: str
    title: str
    match: str  # the MATCH binding `base` variables, then optional clauses binding the rest
    base: tuple[str, ...]  # variables every row has
    optional: str  # OPTIONAL MATCH clauses (may be empty)
    variables: tuple[str, ...]  # all variables of match + optional, carried to the filters
    fields: Mapping[str, Field]
    columns: tuple[str, ...]  # shown when no columns are picked
    time_field: str  # what `since` / `until` compare
    statuses: tuple[str, ...] = ()
    has_run: bool = True  # `r` is a run: hp.*, summary.*, optimizer
    has_metrics: bool = False  # `m` is an epoch's Metrics: metric.*

    def field_names(self) -> list[str]:
        """Its own fields, then the patterns it accepts besides them."""
        extra = ["optimizer", "hp.<name>", "summary.<stat>.<metric>"] if self.has_run else []
        return [*self.fields, *extra, *(["metric.<key>"] if self.has_metrics else [])]

    def pickable(self, hp_names: Iterable[str] = (), metric_keys: Iterable[str] = ()) -> list[str]:
        """The fields a person can pick, given the hyperparameter names and metric keys
        the knowledge base holds (a run's summary: its min, max and mean of each)."""
        if not self.has_run:
            return list(self.fields)
        keys = list(metric_keys)
        out = [*self.fields, "optimizer"]
        out += [f"hp.{n}" for n in hp_names if n != HyperparameterName.OPTIMIZER]
        out += [f"metric.{k}" for k in keys] if self.has_metrics else []
        stats = (SummaryStat.MIN, SummaryStat.MAX, "mean")
        return out + [f"summary.{stat}.{k}" for k in keys for stat in stats]


_RUN, _HP = TRAINING_RUN.label, HYPERPARAMETER.label
_INF, _GEN = WAS_INFORMED_BY.rel_type, WAS_GENERATED_BY.rel_type
_RUN_STATUSES, _STUDY_STATUSES = _statuses(RunStatus), _statuses(StudyStatus)


def _props(var: str, *specs: tuple[str, str] | str) -> dict[str, Field]:
    """Fields that are properties of `var`: a name, or (name, kind)."""
    out = {}
    for spec in specs:
        name, kind = (spec, TEXT) if isinstance(spec, str) else spec
        out[name] = Field(f"{var}.{name}", kind)
    return out


def _run_fields(run_id: str = f"r.{Prop.RUN_ID}") -> dict[str, Field]:
    """What a row bound to a run `r` shows of it."""
    return {
        "runId": Field(run_id),
        "run": Field(f"r.{Prop.NAME}"),
        **_props("r", Prop.EXPERIMENT, Prop.PROJECT, Prop.STUDY),
        "status": Field(shown_status("r"), STATUS),
        "runStartedAtTime": Field(f"r.{Prop.STARTED}", TIME),
    }


_N, _T = NUMBER, TIME
_RUN_OWN = {
    "runId": Field(f"r.{Prop.RUN_ID}"),
    "name": Field(f"r.{Prop.NAME}"),
    **_props("r", Prop.EXPERIMENT, Prop.PROJECT),
    "status": Field(shown_status("r"), STATUS),
    **_props(
        "r",
        (Prop.STARTED, _T),
        (Prop.ENDED, _T),
        (Prop.EPOCHS_PLANNED, _N),
        (Prop.EPOCHS_COMPLETED, _N),
        (Prop.EPOCH_SECONDS, _N),
        (Prop.STOPPED_EPOCH, _N),
        Prop.STUDY,
        (Prop.ITERATION, _N),
        (Prop.GAIN, _N),
        Prop.ERROR,
    ),
}
# From the bound study: ArcadeDB scans every run for a comprehension from an unbound node
_GAINS = f"[(s)<-[:{_INF}]-(it:{_RUN}) WHERE it.{Prop.GAIN} = it.{Prop.GAIN} | it.{Prop.GAIN}]"


def _best(better: str) -> str:
    """The largest (`>`) or smallest (`<`) gain of a study's iteration runs."""
    pick = f"CASE WHEN b IS NULL OR g {better} b THEN g ELSE b END"
    return f"reduce(b = null, g IN {_GAINS} | {pick})"


def _subjects() -> dict[str, Subject]:
    epoch_time = f"coalesce(e.{Prop.ELAPSED}, m.{Prop.ELAPSED})"
    change = (Prop.HYPERPARAMETER, Prop.CALLBACK, Prop.KIND, (Prop.STARTED, _T))
    return {
        s.name: s
        for s in (
            Subject(
                "runs",
                "Training runs",
                f"MATCH (r:{_RUN})",
                ("r",),
                "",
                ("r",),
                _RUN_OWN,
                ("runId", "name", "experiment", "status", "optimizer", Prop.EPOCHS_COMPLETED),
                Prop.STARTED,
                _RUN_STATUSES,
            ),
            Subject(
                "epochs",
                "Epochs (with their metrics)",
                f"MATCH (e:{EPOCH.label})-[:{_INF}]->(r:{_RUN})",
                ("e", "r"),
                f"OPTIONAL MATCH (m:{METRICS.label})-[:{_GEN}]->(e)",
                ("e", "r", "m"),
                {
                    **_props("e", (Prop.EPOCH, _N), (Prop.STARTED, _T), (Prop.ENDED, _T)),
                    Prop.ELAPSED: Field(epoch_time, _N),
                    **_run_fields(),
                },
                ("run", "epoch", f"metric.{Metric.LOSS}", f"metric.{Metric.VAL_LOSS}"),
                Prop.ENDED,
                _RUN_STATUSES,
                has_metrics=True,
            ),
            Subject(
                "hyperparameters",
                "Hyperparameter values (every version)",
                f"MATCH (r:{_RUN})\nMATCH (h:{ENTITY.label} {{{Prop.RUN_ID}: r.{Prop.RUN_ID}}})",
                ("r", "h"),
                "",
                ("r", "h"),
                {
                    **_props(
                        "h",
                        Prop.NAME,
                        (Prop.VALUE, VALUE),
                        Prop.VALUE_TYPE,
                        Prop.SOURCE,
                        (Prop.FROM_EPOCH, _N),
                        (Prop.VERSION, _N),
                        (Prop.STEERABLE, VALUE),
                    ),
                    **_run_fields(),
                },
                ("run", "name", "value", "source", "fromEpoch", "version"),
                "runStartedAtTime",
                _RUN_STATUSES,
            ),
            Subject(
                "adaptations",
                "Adaptations (schedules, ReduceLROnPlateau, early stopping)",
                f"MATCH (a:{ADAPTATION.label})-[:{_INF}]->(r:{_RUN})",
                ("a", "r"),
                "",
                ("a", "r"),
                {
                    **_props("a", (Prop.EPOCH, _N), *change),
                    **_props("a", (Prop.OLD_VALUE, VALUE), (Prop.NEW_VALUE, VALUE)),
                    **_props("a", (Prop.AFTER_TRAINING, VALUE)),
                    **_run_fields(),
                },
                ("run", "epoch", "hyperparameter", "oldValue", "newValue", "kind", "callback"),
                Prop.STARTED,
                _RUN_STATUSES,
            ),
            Subject(
                "steering",
                "Steering actions (of runs) and queue edits (of studies)",
                f"MATCH (a:{STEERING_ACTION.label})",
                ("a",),
                f"OPTIONAL MATCH (a)-[:{_INF}]->(r:{_RUN})",
                ("a", "r"),
                {
                    **_props(
                        "a",
                        Prop.ACTION,
                        Prop.HYPERPARAMETER,
                        (Prop.EPOCH, _N),
                        (Prop.ITERATION, _N),
                        (Prop.ITEM_ID, _N),
                        Prop.REASON,
                        Prop.NOTE,
                        Prop.PERSON,
                        (Prop.STARTED, _T),
                    ),
                    Prop.OLD_VALUE: Field(f"coalesce(a.{Prop.OLD_VALUE}, a.{Prop.BEFORE})", VALUE),
                    Prop.NEW_VALUE: Field(f"coalesce(a.{Prop.NEW_VALUE}, a.{Prop.AFTER})", VALUE),
                    **_run_fields(f"a.{Prop.RUN_ID}"),
                    Prop.STUDY: Field(f"coalesce(a.{Prop.STUDY}, r.{Prop.STUDY})"),
                },
                ("runId", "study", "action", "hyperparameter", "oldValue", "newValue", "person"),
                Prop.STARTED,
                _RUN_STATUSES,
            ),
            Subject(
                "studies",
                "Studies (steerable trial queues)",
                f"MATCH (s:{STUDY.label})",
                ("s",),
                "",
                ("s",),
                {
                    **_props(
                        "s",
                        Prop.NAME,
                        (Prop.STATUS, STATUS),
                        Prop.GAIN_METRIC,
                        Prop.MODE,
                        (Prop.K, _N),
                        Prop.SAMPLER,
                        (Prop.ITERATIONS, _N),
                        (Prop.STARTED, _T),
                        (Prop.ENDED, _T),
                    ),
                    "trials": Field(f"size({_GAINS})", _N),
                    "maxGain": Field(_best(">"), _N),
                    "minGain": Field(_best("<"), _N),
                },
                ("name", "status", "gainMetric", "mode", "iterations", "trials", "maxGain"),
                Prop.STARTED,
                _STUDY_STATUSES,
                has_run=False,
            ),
        )
    }


SUBJECTS: dict[str, Subject] = _subjects()
BY_LABEL = {
    _RUN: "runs",
    EPOCH.label: "epochs",
    _HP: "hyperparameters",
    ADAPTATION.label: "adaptations",
    STEERING_ACTION.label: "steering",
    STUDY.label: "studies",
}
# The subject's own label, checked where a core-label lookup matched (index: kb.cypher).
LABEL_TEST = {"hyperparameters": f"h:{_HP}"}
