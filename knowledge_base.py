"""`KnowledgeBase`: the one API the CLI and the app use (a thin facade over the store).

    from provkb import KnowledgeBase

    with KnowledgeBase() as kb:                      # default settings; or store="DIR"
        print(kb.query("runs", experiment="digits").rows)
        kb.steer("3f2a9c1b7d4e", set={"learning_rate": 0.001}, reason="plateau")
        kb.study("digits-lr").edit(7, {"batch_size": 1000}, reason="faster")

Like MLflow's `MlflowClient`: it holds settings, opens the store on first use (nothing
is read, started or connected in the constructor) and closes what it opened. Named
queries come from `provkb.queries`; trusted reads of the app's own queries go through
`read`; untrusted Cypher only through `cypher` (the read-only console).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .config import Settings, resolve_settings
from .errors import JournalError, ProvKBError, QueryError

if TYPE_CHECKING:
    from prov.model import ProvDocument

    from .kb.deletion import DeletionPlan, DeletionReport
    from .kb.embedded import ServerInfo
    from .kb.journal import JournalStatus, ReplayReport
    from .kb.model_test import ModelTestResult
    from .kb.provimport import ImportReport
    from .kb.quarantine import QuarantinedEntry
    from .kb.steering import SteeringRequest
    from .kb.store import ConsoleStream, QueryResult, Store
    from .kb.study import EditResult, StudyQueue
    from .kb.study.sessions import Plan, Session
    from .queries.spec import NamedQuery


@dataclass
class Backlog:
    """One capture journal: its status, or why it cannot be read."""

    name: str
    status: JournalStatus | None = None
    error: str | None = None


@dataclass
class Status:
    """What `provkb status` shows: where the knowledge base is and the capture backlog."""

    settings: Settings
    server: ServerInfo | None
    journal_folder: Path
    journals: list[Backlog] = field(default_factory=list)
    quarantined: list[QuarantinedEntry] = field(default_factory=list)


@dataclass
class Settled:
    """What settling runs after a replay did: runs recorded as interrupted, and how
    many steering requests of ended runs were rejected."""

    interrupted: list[dict[str, Any]] = field(default_factory=list)
    rejected_requests: int = 0


INT64 = (-(2**63), 2**63 - 1)  # the integers a Bolt store holds


def _check_integers(params: Mapping[str, Any] | None, where: str = "") -> None:
    """QueryError naming a parameter whose integer (or an integer inside it) does not
    fit in 64 bits; such a value never reaches the driver."""
    for key, value in (params or {}).items():
        name = f"{where}{key}"
        if isinstance(value, Mapping):
            _check_integers(value, f"{name}.")
        elif isinstance(value, list | tuple):
            _check_integers(dict(enumerate(value)), f"{name}.")
        elif isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
            raise QueryError(
                f"parameter {name!r}: {value} does not fit in a 64-bit integer "
                f"({INT64[0]} to {INT64[1]}); nothing ran"
            )


class KnowledgeBase:
    """The knowledge base behind one set of settings.

    `store` is a `Store` (used as is, never closed here), an embedded store folder, or
    None (settings from `settings`, else arguments > environment > config file, see
    `provkb.config`). A context manager; `close()` closes the store it opened.
    """

    def __init__(
        self, store: Store | str | os.PathLike | None = None, settings: Settings | None = None
    ) -> None:
        from .kb.store import Store

        self._given = store if isinstance(store, Store) else None
        self._folder = None if isinstance(store, Store) else store
        self._settings = settings
        self._store: Store | None = self._given

    # -- connection ---------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The resolved settings (resolved on first use)."""
        if self._given is not None:
            return self._given.settings
        if self._settings is None:
            self._settings = resolve_settings(store=self._folder)
        return self._settings

    @property
    def store(self) -> Store:
        """The connected store (connects, and starts the embedded server, on first use)."""
        from .kb.store import Store

        if self._store is None:
            self._store = Store(self.settings)
        return self._store.connect()

    def server_running(self) -> bool:
        """Whether the store is reachable without starting anything (a server setting,
        or an embedded server already running)."""
        return not self.settings.embedded or self.server() is not None

    def close(self) -> None:
        """Close the store this object opened (a given `Store` stays open)."""
        if self._store is not None and self._store is not self._given:
            self._store.close()
            self._store = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> str:
        """`arcadedb` (embedded) or `neo4j`."""
        return self.store.engine

    def counts(self) -> dict[str, int]:
        """Numbers of nodes and relationships."""
        return self.store.counts()

    # -- the embedded server --------------------------------------------------------------
    def _embedded(self):
        from .kb.embedded import EmbeddedServer

        return EmbeddedServer(self.settings.home)

    def server(self) -> ServerInfo | None:
        """The running embedded server of the store folder (None: not running)."""
        return self._embedded().status()

    def start_server(self) -> ServerInfo:
        """Start the embedded server in the background, or find the running one."""
        return self._embedded().ensure_running()

    def stop_server(self) -> bool:
        """Stop the embedded server (data stays); False when none was running."""
        self.close()
        return self._embedded().stop()

    # -- reading ----------------------------------------------------------------------------
    @staticmethod
    def queries() -> list[NamedQuery]:
        """The named lineage queries, by name."""
        from .queries import registry

        return [registry.QUERIES[name] for name in registry.names()]

    @staticmethod
    def check_query(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The Cypher parameters of named query `name` (QueryError when the name or a
        parameter is wrong); needs no store."""
        from .queries import library_sessions, registry

        given = registry.coerce_params(name, params)
        library_sessions.check_params(name, given)  # seed-q6's pairs (issue 16)
        return given

    def query(self, name: str, **params: Any) -> QueryResult:
        """Run named query `name` with user values (checked before connecting).

        QueryError when no row came back because the run or study it names does not
        exist (rather than an empty answer)."""
        from .queries import app, registry

        query = registry.get(name)
        given = self.check_query(name, params)
        result = self.store.read(query.cypher, **given)
        if not result.rows:
            run, study = given.get("run"), given.get("study")
            if query.param("run") and run is not None and not app.run_exists(self, run):
                raise QueryError(f"no run with id or name {run!r} (provkb query runs lists them)")
            if query.param("study") and study is not None and not app.study_exists(self, study):
                raise QueryError(f"no study named {study!r} (provkb studies lists them)")
        return result

    def read(self, query: str, /, **params: Any) -> QueryResult:
        """A trusted read of ProvKB's own query texts (`provkb.queries`)."""
        return self.store.read(query, **params)

    def reproduction_script(self, run: str, filename: str = "train_again.py") -> str:
        """A runnable Keras script that trains `run` again from its provenance, with
        capture on and linked to it (`provkb reproduce`); ReproduceError for an unknown run."""
        from .queries import reproduce, reproduce_script

        return reproduce_script.render(reproduce.read(self, run), filename)

    def cypher(
        self,
        text: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        """Untrusted Cypher through the read-only console (writes refused, limits kept)."""
        _check_integers(params)
        return self.store.read_only(text, params, timeout=timeout, max_rows=max_rows)

    def stream_cypher(
        self,
        text: str,
        params: Mapping[str, Any] | None,
        on_row: Callable[[list[str], dict[str, Any]], object],
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
    ) -> ConsoleStream:
        """`cypher`, handing each row to `on_row(columns, row)` as it arrives."""
        _check_integers(params)
        return self.store.stream_read_only(text, params, on_row, timeout=timeout, max_rows=max_rows)

    # -- export / import --------------------------------------------------------------------
    def document(self, run_id: str | None = None, experiment: str | None = None) -> ProvDocument:
        """The PROV document of a run, an experiment or everything."""
        from .kb import export

        return export.build_document(self.store, run_id=run_id, experiment=experiment)

    def diagram(self, run_id: str, output: str = "svg", attributes: bool = False) -> str | bytes:
        """A run's PROV diagram (`dot` or `svg` text, `png` bytes): short captions (kind
        and name, the full id as tooltip), causes left and effects right; `attributes`
        adds every attribute as a note (a much larger diagram)."""
        from .kb.prov_diagram import write_diagram

        return write_diagram(self.document(run_id=run_id), output, attributes=attributes)

    def export(
        self,
        fmt: str,
        target: str | Path | IO,
        run_id: str | None = None,
        experiment: str | None = None,
    ) -> int:
        """Write a run, an experiment or everything in `fmt`; returns the PROV records."""
        from .kb import export

        return export.export(self.store, fmt, target, run_id=run_id, experiment=experiment)

    def import_file(
        self,
        path: str | Path,
        fmt: str | None = None,
        on_conflict: str = "refuse",
        person: str | None = None,
    ) -> ImportReport:
        """Import a PROV file all or nothing (`on_conflict`: refuse, skip or replace),
        recorded as an Import activity."""
        from .kb import provimport

        return provimport.import_file(
            self.store, path, fmt, on_conflict, record=True, person=person
        )

    # -- stored models (issue 17) ----------------------------------------------------------
    def stored_models(self, run_id: str) -> list[dict[str, Any]]:
        """The saved `.keras` files of a run (StoredModel records, newest first)."""
        from .queries import predictions

        return predictions.stored_models(self, run_id)

    def test_model(
        self,
        model_id: str,
        inputs: Any,
        person: str | None = None,
        name: str | None = None,
    ) -> ModelTestResult:
        """Predict `inputs` (an array, or an uploaded file's bytes / CSV text called
        `name`) with the stored model `model_id` (a StoredModel node id), recorded as a
        Prediction by `person`; PredictionError for an unknown model, a missing or
        changed file, or an input the model cannot take (nothing recorded)."""
        from .errors import PredictionError
        from .kb.model_test import run_model_test
        from .queries import predictions

        stored = predictions.stored_model(self, model_id)
        if stored is None:
            raise PredictionError(f"no stored model {model_id!r} in the knowledge base")
        return run_model_test(self.store, stored, inputs, person, name)

    # -- steering ---------------------------------------------------------------------------
    def steer(
        self,
        run: str,
        set: Mapping[str, Any] | None = None,  # noqa: A002 - the API's word
        stop: bool = False,
        note: str | None = None,
        reason: str | None = None,
        person: str | None = None,
        wait: bool = False,
        timeout: float = 60.0,
    ) -> list[SteeringRequest]:
        """Ask a running training to change (see `provkb.steer`)."""
        from .kb.steering import steer

        return steer(
            run,
            set=set,
            stop=stop,
            note=note,
            reason=reason,
            person=person,
            store=self.store,
            wait=wait,
            timeout=timeout,
        )

    def request(
        self,
        run: str,
        action: str,
        hyperparameter: str | None = None,
        value: Any = None,
        reason: str | None = None,
        note: str | None = None,
        person: str | None = None,
        client: str | None = None,
    ) -> SteeringRequest:
        """Submit one steering request (`client`: the browser's address, when known);
        `SteeringRejected` when it cannot apply (recorded as rejected)."""
        from .kb.steering import Steering

        return Steering(self.store).submit(
            run, action, hyperparameter, value, reason, note, person, client
        )

    def steering_request(self, request_id: str) -> SteeringRequest:
        """A steering request as stored now (its status, when it applied)."""
        from .kb.steering import Steering

        return Steering(self.store).get(request_id)

    def run_state(self, run_id: str) -> dict[str, Any] | None:
        """A run's id, name and shown status (`interrupted` when its process went
        silent), heartbeat, start; None when there is no such run."""
        from .kb.steering import Steering

        return Steering(self.store).run_state(run_id)

    # -- studies ----------------------------------------------------------------------------
    def studies(self) -> list[dict[str, Any]]:
        """Every study's settings and state."""
        from .kb.study import list_studies

        return list_studies(self.store)

    def study(self, name: str) -> StudyQueue:
        """The queue of study `name` (read and edit its pending items); ProvKBError
        naming the known studies when there is none."""
        from .kb.study import StudyQueue

        queue = StudyQueue(self.store, name)
        if not queue.exists():
            known = ", ".join(s["name"] for s in self.studies()) or "none"
            raise ProvKBError(f"no study named {name!r} (studies: {known})")
        return queue

    def edit_study(
        self,
        name: str,
        action: str,
        *,
        item: int | None = None,
        version: int | None = None,
        params: Mapping[str, Any] | None = None,
        place: int | None = None,
        reason: str | None = None,
        person: str | None = None,
        replace: bool = False,
    ) -> EditResult:
        """One queue edit of study `name` (add, edit, move, remove, respace). An edit,
        move or remove names the exact item version the person saw (`item`, `version`)
        and is refused with `StaleStudyEdit` ("item 6 already started; nothing changed")
        when that item is no longer pending at that version (`StudyQueue.apply`)."""
        return self.study(name).apply(
            action,
            item=item,
            version=version,
            params=params,
            place=place,
            reason=reason,
            person=person,
            replace=replace,
        )

    def create_study(
        self,
        name: str,
        space: Mapping[str, Any],
        gain: str | None = None,
        mode: str = "max",
        k: int = 10,
        sampler: str = "grid",
        n_samples: int | None = None,
        seed: int = 0,
        experiment: str | None = None,
        person: str | None = None,
    ) -> StudyQueue:
        """Create study `name` (its queue: `space` expanded by `sampler`), or open it
        when it exists (its stored space is kept). `gain` is a metric name."""
        from .kb import study as kb_study

        if mode not in kb_study.MODES:
            raise ProvKBError(f"mode is 'max' or 'min', got {mode!r}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ProvKBError(f"k (moving-average window) is an integer >= 1, got {k!r}")
        normalized = kb_study.normalize_space(space)
        combos = kb_study.expand(normalized, sampler, n_samples, seed)
        queue = kb_study.StudyQueue(self.store, name)
        queue.create(
            normalized,
            combos,
            kb_study.default_person(person),
            gainMetric=gain,
            gainFunction=None,
            mode=mode,
            k=k,
            sampler=sampler,
            nSamples=n_samples,
            seed=seed,
            experiment=experiment or name,
        )
        return queue

    def next_study(
        self,
        parent: str,
        name: str,
        top: int = 10,
        narrow: Sequence[str] | None = None,
        add: Mapping[str, Any] | None = None,
        keep: Sequence[str] | None = None,
        ranges: Mapping[str, Any] | None = None,
        reason: str | None = None,
        person: str | None = None,
    ) -> Session:
        """Start study `name` as the next search session of `parent`, narrowed from its
        `top` best finished trials (kb/study/sessions.py); SessionRefused on bad input."""
        from .kb.study.sessions import start_next

        return start_next(
            self.store, parent, name, top, narrow, keep, add, ranges, reason, person
        )  # a next session (issue 16)

    def preview_next_study(
        self,
        parent: str,
        name: str,
        top: int = 10,
        narrow: Sequence[str] | None = None,
        add: Mapping[str, Any] | None = None,
        keep: Sequence[str] | None = None,
        ranges: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> Plan:
        """What `next_study` with these arguments would start (the kept trials, the
        narrowed space; `Plan.changes()`), writing nothing; SessionRefused on bad input."""
        from .kb.study.sessions import preview_next

        plan, _ = preview_next(self.store, parent, name, top, narrow, keep, add, ranges, reason)
        return plan

    # -- deleting ---------------------------------------------------------------------------
    def deletion_plan(
        self, run: str | None = None, experiment: str | None = None, study: str | None = None
    ) -> DeletionPlan:
        """What `delete` would remove (exactly one of run id, experiment, study name);
        ProvKBError when it names nothing. Changes nothing."""
        from .kb import deletion

        named = zip(deletion.SCOPES, (run, experiment, study), strict=True)
        given = [(scope, name) for scope, name in named if name]
        if len(given) != 1:
            raise ProvKBError("delete exactly one of: a run (id), an experiment, a study")
        return deletion.plan(self.store, *given[0])

    def delete(
        self,
        run: str | None = None,
        experiment: str | None = None,
        study: str | None = None,
        person: str | None = None,
    ) -> DeletionReport:
        """Remove a run, an experiment's runs or a study with everything only they
        produced (shared datasets, scripts and agents stay while used), recorded as a
        Deletion activity (who, when, what) that outlives them."""
        from .kb import deletion

        return deletion.delete(self.store, self.deletion_plan(run, experiment, study), person)

    # -- the capture journal ------------------------------------------------------------------
    @property
    def journal_folder(self) -> Path:
        """Where capture journals what did not reach the store yet."""
        from .kb.journal import journal_folder

        return journal_folder(self.settings.home)

    def status(self) -> Status:
        """Where the knowledge base is, its embedded server, each journal's backlog and
        what sync set aside (JournalError when the journal folder cannot be read)."""
        from .kb.journal import describe_os_error, journals
        from .kb.quarantine import quarantined

        folder = self.journal_folder
        server = self.server() if self.settings.embedded else None
        try:
            backlog = []
            for journal in journals(folder):
                try:
                    backlog.append(Backlog(journal.name, journal.status()))
                except OSError as exc:
                    backlog.append(Backlog(journal.name, error=describe_os_error(exc)))
            held = quarantined(folder)
        except OSError as exc:
            raise JournalError(
                f"cannot read the journals in {folder}: {describe_os_error(exc)}"
            ) from exc
        return Status(self.settings, server, folder, backlog, held)

    def sync(self, include_live: bool = False) -> list[ReplayReport]:
        """Replay journaled records that did not reach the store (idempotent);
        JournalError when the journal folder cannot be read."""
        from .kb.journal import describe_os_error, sync

        try:
            return sync(self.store, self.journal_folder, include_live)
        except OSError as exc:
            raise JournalError(f"cannot read the journals: {describe_os_error(exc)}") from exc

    def settle_runs(self) -> Settled:
        """Record silent runs as interrupted and reject what no run will apply."""
        from .kb import lifecycle

        interrupted = lifecycle.record_interrupted(self.store)
        return Settled(interrupted, lifecycle.reject_orphaned(self.store))


__all__ = ["Backlog", "KnowledgeBase", "Settled", "Status"]
