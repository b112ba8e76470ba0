"""The knowledge base: one `Store` over the official neo4j driver, for both engines.

`Store()` with no URI uses (and if needed starts) the embedded ArcadeDB server of the
store folder; with `uri=` or `PROVKB_URI` it talks to a Neo4j 5 server. All Cypher
runs through here: writes in batched, idempotent `UNWIND ... MERGE` transactions,
trusted reads, and a read-only console for ad-hoc queries.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import (
    AuthError,
    ConstraintError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from ..config import Settings, resolve_settings
from ..errors import (
    ClaimConflict,
    ConsoleTimeout,
    DanglingRelation,
    QueryError,
    ReadOnlyViolation,
    StoreBusy,
    StoreMisconfigured,
    StoreUnavailable,
)
from ..ontology import TRAINING_RUN, Prop, RunStatus, is_run_progress
from . import console_guard, cypher
from .embedded import EmbeddedServer
from .embedded_files import ServerFiles
from .records import GraphBatch, encode_props, sized_chunks

MAX_ROWS_PER_STATEMENT = 5000
CREATE_RACE_RETRIES = 5  # tries more for a write whose new node another one created first
_DUPLICATE_KEY = "Neo.ClientError.Schema.ConstraintValidationFailed"
_DUPLICATE_TEXTS = ("Duplicated key", "already exists")  # ArcadeDB's words for it
T = TypeVar("T")
_UNREACHABLE = (ServiceUnavailable, SessionExpired, OSError)
# Error codes that blame the statement or the data, not the connection: retrying the
# same write cannot help. Everything else is treated as the store being unavailable.
_STATEMENT_FAULTS = ("Neo.ClientError.Statement.", "Neo.ClientError.Schema.")
_CONNECTION_FAULTS = ("Neo.ClientError.Security.", "Neo.ClientError.Request.")
# A configuration error, not an outage: retrying cannot create the database.
_DATABASE_NOT_FOUND = "Neo.ClientError.Database.DatabaseNotFound"


def _quiet_driver_logs() -> None:
    """The driver logs every retry and dropped connection; ProvKB reports those itself
    (once, clearly). Leave a level the application chose alone."""
    driver_log = logging.getLogger("neo4j")
    if driver_log.level == logging.NOTSET:
        driver_log.setLevel(logging.CRITICAL)


@dataclass
class QueryResult:
    """Rows of a query with their column names."""

    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool = False  # the console stopped at its row limit: there were more rows


@dataclass
class ConsoleStream:
    """What a streamed console query gave: its columns, how many rows, whether the row
    limit cut it short."""

    columns: list[str]
    rows: int
    truncated: bool


# Engine refusals of a write in the console: ArcadeDB's read-only account, Neo4j's READ mode.
_REFUSED_WRITES = ("Neo.ClientError.Security.Forbidden", "Neo.ClientError.Statement.AccessMode")
_CANCEL_RETRY_S = 0.5
CONSOLE_DEADLINE = "until="  # in a console query's marker: its deadline, Unix seconds


def _console_timeout(limit: float) -> ConsoleTimeout:
    return ConsoleTimeout(
        f"the query ran past the console's time limit of {limit:g} s and was cancelled on "
        "the server; nothing changed. Narrow it (a LIMIT, a WHERE on an indexed property) "
        "or raise the limit (PROVKB_CONSOLE_TIMEOUT)"
    )


class _Canceller(threading.Thread):
    """At the time limit, terminate the console's transaction on the server (the one
    whose text carries `marker`), again until the query has ended."""

    def __init__(self, driver: neo4j.Driver, database: str | None, marker: str, limit: float):
        super().__init__(name="provkb-console-timeout", daemon=True)
        self.driver, self.database, self.marker, self.limit = driver, database, marker, limit
        self.finished = threading.Event()
        self.fired = False

    def run(self) -> None:
        if self.finished.wait(self.limit):
            return
        self.fired = True
        while not self.finished.is_set():
            self.terminate()
            self.finished.wait(_CANCEL_RETRY_S)

    def terminate(self) -> None:
        """Terminate the marked transaction now (best effort: the query may end
        meanwhile, or the server be gone)."""
        with contextlib.suppress(Exception), self.driver.session(database=self.database) as s:
            ids = [
                record["transactionId"]
                for record in s.run(cypher.SHOW_TRANSACTIONS)
                if self.marker in str(record.get("currentQuery") or "")
            ]
            if ids:
                s.run(cypher.TERMINATE_TRANSACTIONS, ids=ids).consume()


def _plain(value: Any) -> Any:
    """Driver values as plain Python (temporal values as ISO text, graph objects as dicts)."""
    if isinstance(value, neo4j.graph.Node):
        return {"labels": sorted(value.labels), **{k: _plain(v) for k, v in value.items()}}
    if isinstance(value, neo4j.graph.Relationship):
        return {"type": value.type, **{k: _plain(v) for k, v in value.items()}}
    if isinstance(value, neo4j.graph.Path):
        return [_plain(n) for n in value.nodes]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    iso = getattr(value, "iso_format", None)
    if callable(iso):
        return iso()
    return value


def _chunks(rows: list, size: int = MAX_ROWS_PER_STATEMENT) -> Iterable[list]:
    """Rows cut into statements of at most `size` rows and what one Bolt message carries."""
    return sized_chunks(rows, size)


NodeGroups = dict[tuple[str, tuple[str, ...]], list[dict]]
EdgeGroups = dict[str, tuple[Any, list[dict]]]


def _grouped(batch: GraphBatch) -> tuple[NodeGroups, EdgeGroups]:
    """Rows {id, props} per (kind, extra labels) and {src, dst, props} per relation type.

    A node or relationship that occurs several times becomes one row whose properties
    are the later ones laid over the earlier ones: what successive `SET n += props`
    would leave. A run's progress and status only move forward (`_run_row`).
    """
    nodes: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for node in batch.nodes:
        rows = nodes[(node.kind.label, node.extra_labels)]
        props = encode_props(node.props, node.id)
        row = rows.get(node.id)
        if TRAINING_RUN.label in node.extra_labels:
            rows[node.id] = _run_row(row, node.id, props)
        elif row is None:
            rows[node.id] = {"id": node.id, "props": props}
        else:
            row["props"].update(props)
    edges: dict[str, tuple[Any, dict[tuple[str, str], dict]]] = {}
    for edge in batch.edges:
        relation = edge.relation
        _, rows = edges.setdefault(relation.rel_type, (relation, {}))
        props = encode_props(edge.props)
        row = rows.get((edge.src, edge.dst))
        if row is None:
            rows[(edge.src, edge.dst)] = {"src": edge.src, "dst": edge.dst, "props": props}
        else:
            row["props"].update(props)
    return (
        {key: list(rows.values()) for key, rows in nodes.items()},
        {key: (rel, list(rows.values())) for key, (rel, rows) in edges.items()},
    )


def _run_row(row: dict | None, node_id: str, props: dict[str, Any]) -> dict:
    """A run node's row: plain `props`, plus its `progress` (`ontology.is_run_progress`)
    with the `epochs` they were computed from, and its `status`. Laid over an earlier
    row of the same run, progress is taken only when `epochs` is not lower, and a
    `running` status never replaces another: the rule `cypher.advance_run_progress` and
    `cypher.advance_run_status` apply against the store."""
    plain = {k: v for k, v in props.items() if k != Prop.STATUS and not is_run_progress(k)}
    progress = {k: v for k, v in props.items() if is_run_progress(k)}
    epochs, status = progress.get(Prop.EPOCHS_COMPLETED), props.get(Prop.STATUS)
    if row is None:
        row = {"id": node_id, "props": plain, "progress": progress, "epochs": epochs}
        return {**row, "status": status}
    row["props"].update(plain)
    if progress and _not_behind(epochs, row["epochs"]):
        row["progress"].update(progress)
        row["epochs"] = epochs
    if status is not None and (status != RunStatus.RUNNING or row["status"] in (None, status)):
        row["status"] = status
    return row


def _not_behind(epochs: Any, stored: Any) -> bool:
    """`coalesce(epochs, -1) >= coalesce(stored, -1)`, as `advance_run_progress` tests it."""
    new, old = (-1 if v is None else v for v in (epochs, stored))
    try:
        return new >= old
    except TypeError:
        return True


def _run_statements(
    kind: Any, extra: tuple[str, ...], rows: list[dict]
) -> Iterable[tuple[str, list[dict]]]:
    """The statements that move runs forward after their rows were merged."""
    progress = [
        {"id": r["id"], "epochs": r["epochs"], "progress": r["progress"]}
        for r in rows
        if r.get("progress")
    ]
    if progress:
        yield cypher.advance_run_progress(kind, extra), progress
    status = [
        {"id": r["id"], "status": r["status"], "weak": r["status"] == RunStatus.RUNNING}
        for r in rows
        if r.get("status") is not None
    ]
    if status:
        yield cypher.advance_run_status(kind, extra), status


def _update_or_create(
    tx: neo4j.ManagedTransaction, kind: Any, extra: tuple[str, ...], rows: list[dict]
) -> None:
    """Merge node rows as an update of those that exist, then a CREATE of the others."""
    found = {record["id"] for record in tx.run(cypher.update_nodes(kind, extra), rows=rows)}
    missing = [row for row in rows if row["id"] not in found]
    if missing:
        tx.run(cypher.create_nodes(kind, extra), rows=missing).consume()


def _duplicate(exc: Neo4jError, message: str) -> bool:
    """Whether the store refused a write because a concurrent transaction created a
    record with the same unique id first (`ClaimConflict`).

    Engine difference: ArcadeDB reports two transactions creating one id as
    `ConstraintValidationFailed` ("Duplicated key ... found on index") at commit, and
    a CREATE of an existing id as "... already exists"; Neo4j's MERGE serialises on
    the uniqueness constraint, its CREATE fails with `ConstraintValidationFailed`."""
    return (
        isinstance(exc, ConstraintError)
        or (exc.code or "") == _DUPLICATE_KEY
        or any(text in message for text in _DUPLICATE_TEXTS)
    )


def _write_batch(
    tx: neo4j.ManagedTransaction, batch: GraphBatch, split_merge: bool, create: bool = False
) -> int:
    """Merge a batch inside a transaction, nodes first: the one write path. Records
    repeated in a batch (a run node updated by every epoch) are sent once, their
    properties applied in order. With `split_merge` (ArcadeDB) nodes are merged as an
    indexed update of those that exist plus a CREATE of the others (see
    `cypher.update_nodes`), else with MERGE; with `create`, nodes are created (an id
    that exists refuses the transaction: `ClaimConflict`). Relations whose ends are
    missing raise `DanglingRelation` (the transaction rolls back)."""
    node_groups, edge_groups = _grouped(batch)
    for (kind_label, extra), rows in node_groups.items():
        kind = cypher.KIND_BY_LABEL[kind_label]
        for chunk in _chunks(rows):
            if create:
                tx.run(cypher.create_nodes(kind, extra), rows=chunk).consume()
            elif split_merge:
                _update_or_create(tx, kind, extra, chunk)
            else:
                tx.run(cypher.merge_nodes(kind, extra), rows=chunk).consume()
            if TRAINING_RUN.label in extra:
                for text, run_rows in _run_statements(kind, extra, chunk):
                    tx.run(text, rows=run_rows).consume()
    for relation, rows in edge_groups.values():
        text = cypher.merge_edges(relation)
        for chunk in _chunks(rows):
            _check_matched(text, chunk, tx.run(text, rows=chunk).data())
    return len(batch)


class Transaction:
    """One managed write transaction (`Store.transaction`): trusted Cypher, and batches
    through the store's one write path."""

    def __init__(self, tx: neo4j.ManagedTransaction, split_merge: bool) -> None:
        self._tx = tx
        self._split_merge = split_merge

    def run(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run trusted Cypher; its rows as plain Python."""
        return [{k: _plain(v) for k, v in r.items()} for r in self._tx.run(query, params)]

    def write(self, batch: GraphBatch) -> int:
        """Merge a batch (as `Store.write` does) inside this transaction."""
        return _write_batch(self._tx, batch, self._split_merge)

    def create(self, batch: GraphBatch) -> int:
        """Like `write`, but the batch's nodes must be new: a concurrent creator of one
        of them makes this transaction fail (`ClaimConflict`, or on ArcadeDB a
        `QueryError`) instead of merging into its node."""
        return _write_batch(self._tx, batch, self._split_merge, create=True)


def _check_matched(text: str, rows: list[dict], records: list[dict]) -> None:
    """Refuse (roll back) a relation statement some of whose rows found no ends."""
    matched = records[0].get("matched") if records else None
    if matched is not None and matched < len(rows):
        raise DanglingRelation(
            f"{len(rows) - matched} of {len(rows)} relations refer to nodes "
            f"that are not in the knowledge base (statement: {text[:60]}...)"
        )


class Store:
    """A connection to the knowledge base. Connects lazily; use as a context manager."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self._settings = settings
        self._overrides = overrides
        self._driver: neo4j.Driver | None = None
        self._database: str | None = None
        self._engine: str | None = None
        # the console's driver, logged in as the read-only account: (uri, auth), driver
        self._reader: tuple[tuple[Any, ...], neo4j.Driver] | None = None
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve_settings(**self._overrides)
        return self._settings

    @property
    def engine(self) -> str:
        """`arcadedb` (embedded) or `neo4j`."""
        self.connect()
        assert self._engine is not None
        return self._engine

    def connect(self) -> Store:
        """Open the driver (starting the embedded server if needed) and set up the schema."""
        with self._lock:
            if self._driver is not None:
                return self
            settings = self.settings
            _quiet_driver_logs()
            if settings.embedded:
                info = EmbeddedServer(settings.home).ensure_running()
                creds = ServerFiles(settings.home).read_credentials()
                uri, auth, database = info.uri, (creds["user"], creds["password"]), info.database
            else:
                uri = settings.uri
                auth = (settings.user, settings.password or "")
                database = settings.database
            try:
                driver = GraphDatabase.driver(
                    uri, auth=auth, connection_timeout=10, max_transaction_retry_time=15
                )
                driver.verify_connectivity()
                agent = driver.get_server_info().agent or ""
            except AuthError as exc:
                raise StoreUnavailable(
                    f"the {settings.describe()} refused the accounts of its credentials "
                    f"file {ServerFiles(settings.home).credentials}; restart it (provkb "
                    f"server stop) to renew them"
                    if settings.embedded
                    else f"authentication failed for {settings.describe()}: check "
                    f"PROVKB_USER and PROVKB_PASSWORD"
                ) from exc
            except (Neo4jError, *_UNREACHABLE, ValueError) as exc:
                raise StoreUnavailable(
                    f"cannot reach the knowledge base ({settings.describe()}): {exc}"
                ) from exc
            self._engine = cypher.ENGINE_ARCADEDB if "ArcadeDB" in agent else cypher.ENGINE_NEO4J
            self._driver, self._database = driver, database
        self.ensure_schema()
        return self

    def close(self) -> None:
        """Close the drivers (the embedded server keeps running for other clients)."""
        with self._lock:
            self._drop_reader()
            if self._driver is not None:
                self._driver.close()
                self._driver = None

    def __enter__(self) -> Store:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lost(self, exc: BaseException) -> StoreUnavailable:
        """Forget the driver after a connection loss, so the next call reconnects (and, for
        the embedded store, finds or restarts the server, whose port may have changed)."""
        with self._lock:
            driver, self._driver = self._driver, None
            self._drop_reader()
        if driver is not None:
            with contextlib.suppress(Exception):  # a dead driver may fail to close
                driver.close()
        return StoreUnavailable(f"lost the knowledge base ({self.settings.describe()}): {exc}")

    def _failed(
        self, what: str, exc: Neo4jError
    ) -> QueryError | StoreUnavailable | StoreMisconfigured:
        """A driver error as ProvKB's: a write that lost a race for a unique id
        (ClaimConflict), the statement's fault (QueryError), conflicts outlasting the
        driver's retries (StoreBusy) or the connection's (StoreUnavailable, retried by
        writers).

        Engine difference: right after a restart the embedded engine may answer a
        pipelined BEGIN with "not expected in state: AUTHENTICATION" or call the
        credentials expired; that is the connection's state, not the query's, so it
        counts as unavailable.
        """
        message = exc.message or str(exc)
        code = exc.code or ""
        if code == _DATABASE_NOT_FOUND:
            return StoreMisconfigured(
                f"{what}: {self.settings.describe()} has no database {self._database!r}; "
                f"check PROVKB_DATABASE (Neo4j Community has only 'neo4j')"
            )
        if what.startswith("write") and _duplicate(exc, message):
            return ClaimConflict(f"{what}: a concurrent writer created it first ({message})")
        if code.startswith(_STATEMENT_FAULTS):
            return QueryError(f"{what}: {message}")
        if isinstance(exc, TransientError):  # conflicts outlasting the driver's retries
            return StoreBusy(f"{what}: the store is busy, try again ({message})")
        if code.startswith(_CONNECTION_FAULTS) or "not expected in state" in message:
            return self._lost(exc)  # connection or security state: reconnect, retry
        if what.startswith("write"):  # unknown: writers keep the records and retry
            return StoreUnavailable(f"{what}: {message}")
        return QueryError(f"{what}: {message}")

    def _session(self, **kwargs: Any) -> neo4j.Session:
        self.connect()
        assert self._driver is not None
        return self._driver.session(database=self._database, **kwargs)

    # -- schema -----------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the constraints and indexes (idempotent).

        Engine difference: on Neo4j, two processes connecting for the first time race
        on `CREATE ... IF NOT EXISTS`; the loser is told the rule already exists
        (`...Schema.EquivalentSchemaRuleAlreadyExists` and kin), which is what it wanted,
        or they deadlock each other (retried).
        """
        for statement in cypher.schema_statements(self.engine):
            self._schema_statement(statement)

    def _schema_statement(self, statement: str, attempts: int = 8) -> None:
        """One schema statement; concurrent creators may deadlock each other on Neo4j
        (a TransientError): try again after a random pause."""
        for attempt in range(attempts):
            try:
                with self._session() as session:
                    session.run(statement).consume()
                return
            except _UNREACHABLE as exc:
                raise self._lost(exc) from exc
            except TransientError as exc:
                if attempt == attempts - 1:
                    raise self._failed("schema setup failed", exc) from exc
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
            except Neo4jError as exc:
                if "AlreadyExists" in (exc.code or ""):
                    return
                raise self._failed("schema setup failed", exc) from exc

    # -- writes -----------------------------------------------------------------
    def _once_more(self, operation, *args, **kwargs):
        """Run `operation`; after a lost connection, reconnect and try once more (every
        operation here is idempotent or rolled back)."""
        try:
            return operation(*args, **kwargs)
        except StoreUnavailable:
            return operation(*args, **kwargs)

    def write(self, batch: GraphBatch) -> int:
        """Write a batch in one transaction, nodes first; returns the records written.

        Idempotent: nodes and relationships are merged on their identity, so writing
        the same batch twice changes nothing (and a write cut by a lost connection is
        simply tried once more).
        """
        return self._once_more(self._write, batch)

    def _write(self, batch: GraphBatch) -> int:
        """One attempt of `write` (`_write_batch` in one transaction); a node another
        transaction created first is found and updated by trying again."""
        if not batch.nodes and not batch.edges:
            return 0
        for attempt in range(CREATE_RACE_RETRIES + 1):
            try:
                return self.transaction(lambda tx: tx.write(batch))
            except ClaimConflict:
                if attempt == CREATE_RACE_RETRIES:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def write_namespaces(self, namespaces: Mapping[str, str]) -> None:
        """Remember prefix -> IRI bindings (used by export)."""
        rows = [{"id": f"ns:{p}", "prefix": p, "uri": u} for p, u in namespaces.items()]
        if rows:
            self.execute(cypher.MERGE_NAMESPACES, rows=rows)

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        """Run `work(tx)` in one managed write transaction and return what it returns.

        The driver runs it again on transient conflicts (deadlocks, ArcadeDB's commit
        conflicts), so `work` must only read and write through `tx`. Errors come out as
        ProvKB's (`_failed`): `ClaimConflict` when a concurrent writer created one of its
        unique ids first, `StoreBusy` when conflicts outlast the driver's retries,
        `StoreUnavailable` after a lost connection (the next call reconnects),
        `QueryError` for the statement's faults; what `work` raises itself (e.g.
        `DanglingRelation`) rolls the transaction back and comes out as it is.
        """
        split_merge = self.engine == cypher.ENGINE_ARCADEDB
        try:
            with self._session() as session:
                return session.execute_write(lambda tx: work(Transaction(tx, split_merge)))
        except _UNREACHABLE as exc:
            raise self._lost(exc) from exc
        except Neo4jError as exc:
            raise self._failed("write failed", exc) from exc

    def execute_write(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run trusted Cypher in a managed write transaction (retried on conflicts)."""
        return self.transaction(lambda tx: tx.run(query, **params))

    def execute(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run trusted, idempotent Cypher (schema, reads) in an auto-commit call."""
        return self._once_more(self._execute, query, params)

    def _execute(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            with self._session() as session:
                result = session.run(query, params)
                return [{k: _plain(v) for k, v in r.items()} for r in result]
        except _UNREACHABLE as exc:
            raise self._lost(exc) from exc
        except Neo4jError as exc:
            raise self._failed("query failed", exc) from exc

    # -- reads ------------------------------------------------------------------
    def read(self, query: str, /, **params: Any) -> QueryResult:
        """Run a trusted read query in a read transaction."""
        return self._once_more(self._read, query, params)

    def _read(self, query: str, params: dict[str, Any]) -> QueryResult:

        def work(tx: neo4j.ManagedTransaction) -> QueryResult:
            result = tx.run(query, params)
            keys = list(result.keys())
            rows = [{k: _plain(v) for k, v in r.items()} for r in result]
            return QueryResult(keys, rows)

        try:
            with self._session(default_access_mode=neo4j.READ_ACCESS) as session:
                return session.execute_read(work)
        except _UNREACHABLE as exc:
            raise self._lost(exc) from exc
        except Neo4jError as exc:
            raise self._failed("query failed", exc) from exc

    def read_only(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        """Run untrusted Cypher read-only (see `stream_read_only`) and keep its rows:
        at most `max_rows` (default: the `console_rows` setting; `truncated` says when
        there were more), within `timeout` seconds (default: `console_timeout`)."""

        def attempt() -> QueryResult:
            rows: list[dict[str, Any]] = []
            streamed = self.stream_read_only(
                query, params, lambda _, row: rows.append(row), timeout=timeout, max_rows=max_rows
            )
            return QueryResult(streamed.columns, rows, streamed.truncated)

        return self._once_more(attempt)

    def stream_read_only(
        self,
        query: str,
        params: Mapping[str, Any] | None,
        on_row: Callable[[list[str], dict[str, Any]], object],
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
    ) -> ConsoleStream:
        """Run untrusted Cypher read-only, handing each row to `on_row(columns, row)`
        as it arrives (nothing is kept here); stops after `max_rows` rows.

        Defences, each enough for most attacks, together for all: `console_guard`
        refuses writes, administration, procedures, file access and several statements
        before anything runs; on the embedded store the query runs as its read-only
        account, whose writes the engine itself refuses (Neo4j Community has no roles:
        there the READ access mode refuses writes); the transaction is always rolled
        back; and a result whose summary reports updates or a query type other than a
        read is refused. Past `timeout` the query is cancelled on the server: Neo4j
        ends it by the transaction's timeout; ArcadeDB ignores that timeout, so the
        console then terminates its own transaction (found by a marker comment), which
        stops the server's work too.
        """
        statement = console_guard.check(query)
        limit = self.settings.console_timeout if timeout is None else timeout
        cap = self.settings.console_rows if max_rows is None else max_rows
        marker = f"provkb-console-{uuid.uuid4().hex}"
        canceller: _Canceller | None = None
        try:
            with self._console_driver() as driver:
                canceller = _Canceller(driver, self._database, marker, limit)
                canceller.start()
                # the deadline lets the embedded server end it if this client dies
                text = f"/* {marker} {CONSOLE_DEADLINE}{time.time() + limit:.1f} */ {statement}"
                try:
                    streamed, summary = self._console_run(
                        driver, text, dict(params or {}), on_row, cap, canceller
                    )
                finally:
                    canceller.finished.set()
        except AuthError as exc:
            raise StoreUnavailable(
                f"the {self.settings.describe()} refused the console's account from its "
                "credentials file; restart it (provkb server stop) to renew its accounts"
                if self.settings.embedded
                else f"the {self.settings.describe()} refused the console's account: check "
                "PROVKB_CONSOLE_USER and PROVKB_CONSOLE_PASSWORD"
            ) from exc
        except _UNREACHABLE as exc:
            if canceller is not None and canceller.fired:
                raise _console_timeout(limit) from exc
            raise self._lost(exc) from exc
        except Neo4jError as exc:
            code = exc.code or ""
            if (canceller is not None and canceller.fired) or "TimedOut" in code:
                raise _console_timeout(limit) from exc
            if code in _REFUSED_WRITES:  # the engine's words, without the account's name
                said = re.sub(r"User '[^']*' is ", "", exc.message or code)
                raise ReadOnlyViolation(
                    "the console is read-only: the store itself refused this query for "
                    f"the console's read-only access ({said}); nothing ran"
                ) from exc
            raise self._failed("query failed", exc) from exc
        counters = summary.counters
        if (
            counters.contains_updates
            or counters.contains_system_updates
            or summary.query_type not in (None, "r")
        ):
            raise ReadOnlyViolation(
                "the console is read-only: the store reports this query as one that "
                f"writes (query type {summary.query_type!r}); it was rolled back, nothing "
                "changed"
            )
        return streamed

    def _console_run(
        self,
        driver: neo4j.Driver,
        text: str,
        params: dict[str, Any],
        on_row: Callable[[list[str], dict[str, Any]], object],
        cap: int,
        canceller: _Canceller,
    ) -> tuple[ConsoleStream, neo4j.ResultSummary]:
        """One console query in a READ-mode transaction that is always rolled back."""
        with driver.session(
            database=self._database, default_access_mode=neo4j.READ_ACCESS
        ) as session:
            tx = session.begin_transaction(timeout=canceller.limit)
            try:
                result = tx.run(text, params)
                columns, count, truncated = list(result.keys()), 0, False
                for record in result:
                    if count == cap:
                        truncated = True
                        break
                    on_row(columns, {k: _plain(v) for k, v in record.items()})
                    count += 1
                summary = result.consume()
            except BaseException as exc:
                if not isinstance(exc, Neo4jError):  # interrupted here (^C, a closed pipe):
                    canceller.terminate()  # end it there too, before the rollback waits on it
                raise
            finally:
                with contextlib.suppress(Neo4jError, *_UNREACHABLE):  # may be cancelled
                    tx.rollback()
        return ConsoleStream(columns, count, truncated), summary

    @contextlib.contextmanager
    def _console_driver(self) -> Iterator[neo4j.Driver]:
        """The driver the console uses, logged in as the read-only account (kept for the
        next query, dropped after a lost connection or a refused login): the embedded
        store's own, or a Neo4j server's `console_user`; else
        the store's driver (Neo4j without a console user, or an embedded server started
        before it had a reader)."""
        self.connect()
        settings = self.settings
        if settings.embedded:
            reader = ServerFiles(settings.home).read_credentials()
            uri = EmbeddedServer(settings.home).ensure_running().uri
            auth = (reader["reader_user"], reader["reader_password"])
        else:
            uri, auth = settings.uri, (settings.console_user, settings.console_password or "")
        if not auth[0]:
            assert self._driver is not None
            yield self._driver
            return
        with self._lock:
            key = (uri, auth)
            if self._reader is None or self._reader[0] != key:
                self._drop_reader()
                self._reader = (key, GraphDatabase.driver(uri, auth=auth, connection_timeout=10))
            driver = self._reader[1]
        try:
            yield driver
        except (AuthError, *_UNREACHABLE):
            with self._lock:
                self._drop_reader()  # log in afresh next time (a restarted server)
            raise

    def _drop_reader(self) -> None:
        """Close the console's cached driver (caller holds the lock)."""
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader[1].close()
            self._reader = None

    # -- maintenance ------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Numbers of nodes and relationships."""
        nodes = self.execute(cypher.COUNT_NODES)[0]["count"]
        edges = self.execute(cypher.COUNT_EDGES)[0]["count"]
        return {"nodes": nodes, "relationships": edges}

    def clear(self, slice_size: int = 10_000) -> None:
        """Delete everything (tests, benchmarks), `slice_size` nodes per transaction so a
        large knowledge base does not need the whole delete in the server's heap."""
        while True:
            rows = self.execute(cypher.DELETE_SLICE, limit=int(slice_size))
            if not rows or not rows[0]["deleted"]:
                return
