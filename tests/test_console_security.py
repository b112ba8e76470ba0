"""The read-only console cannot escalate (issue 10, section 1) and the embedded store's
accounts cannot be taken over or locked out (section 5): on the real engines.

Hostile statements are refused before they run and leave nothing behind (no label, type,
property key, user, index or constraint); reads keep working; every query has a time
limit that cancels it on the server and a row limit; the embedded server runs with
ProvKB's own accounts (a writer without administration rights, a reader the engine
itself keeps from writing), whose random names no other local process can lock out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import neo4j
import pytest
from helpers import cli
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, Neo4jError
from streamlit.testing.v1 import AppTest

from provkb.config import resolve_settings
from provkb.errors import ConfigError, ConsoleTimeout, ReadOnlyViolation, StoreUnavailable
from provkb.kb import console_guard
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.embedded_files import DATABASE_NAME, ServerFiles
from provkb.kb.store import Store
from provkb.ui import common

APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")

HOSTILE = [
    # write clauses, in every case and spacing
    "CREATE (n:Hostile {hostileProp: 1})",
    "create (n:Hostile)",
    "MATCH (n) WITH n LIMIT 1 SET n.hostileProp = 1 RETURN n",
    "MATCH (n) WITH n LIMIT 1 SET n:Hostile",
    "MATCH (n:Hostile) DETACH DELETE n",
    "MATCH (n:Hostile) DELETE n",
    "MERGE (n:Hostile {id: 'x'}) RETURN n",
    "MATCH (n) WITH n LIMIT 1 REMOVE n.id",
    "FOREACH (i IN [1, 2] | CREATE (:Hostile {i: i}))",
    "MATCH (a), (b) WITH a, b LIMIT 1 CREATE (a)-[:HOSTILE_REL]->(b)",
    "INSERT (n:Hostile)",
    "MATCH (n)\nWITH n LIMIT 1\n\tSET\n n.hostileProp = 2",
    # subqueries and batched transactions
    "CALL { CREATE (n:Hostile) RETURN n } RETURN count(n)",
    "MATCH (n) CALL (n) { SET n.hostileProp = 3 } RETURN count(n)",
    "CALL { MATCH (n) RETURN n } IN TRANSACTIONS RETURN 1",
    "UNWIND [1] AS i CALL { CREATE (:Hostile) } IN TRANSACTIONS OF 1 ROWS",
    "USING PERIODIC COMMIT LOAD CSV FROM 'file:///etc/passwd' AS l CREATE (:Hostile)",
    # procedures
    "CALL dbms.security.createUser('eve', 'secret', false)",
    "CALL db.createLabel('Hostile')",
    "CALL db.createRelationshipType('HOSTILE_REL')",
    "CALL db.createProperty('hostileProp')",
    "CALL apoc.create.node(['Hostile'], {})",
    "CALL dbms.listConfig()",
    "CALL dbms.components()",
    "CALL `dbms`.`security`.`createUser`('eve', 'secret')",
    "MATCH (n) WITH n LIMIT 1 CALL db.index.fulltext.createNodeIndex('h', ['Hostile'], ['x'])",
    "CALL db.labels() YIELD label CREATE (:Hostile {label: label})",
    "RETURN apoc.load.json('file:///etc/passwd') AS x",
    # administration and schema
    "CREATE USER eve SET PASSWORD 'secret-pass'",
    "CREATE USER eve IF NOT EXISTS SET PLAINTEXT PASSWORD 'secret-pass' CHANGE NOT REQUIRED",
    "ALTER USER root SET PASSWORD 'taken-over'",
    "ALTER CURRENT USER SET PASSWORD FROM 'a' TO 'b'",
    "DROP USER eve",
    "RENAME USER eve TO mallory",
    "SHOW USERS",
    "SHOW CURRENT USER",
    "SHOW SETTINGS",
    "SHOW PROCEDURES",
    "SHOW TRANSACTIONS",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "CREATE ROLE hostile",
    "GRANT ROLE admin TO eve",
    "DENY READ ON GRAPH * TO reader",
    "REVOKE ROLE admin FROM eve",
    "CREATE DATABASE hostile",
    "CREATE OR REPLACE DATABASE neo4j",
    "DROP DATABASE neo4j",
    "STOP DATABASE neo4j",
    "START DATABASE neo4j",
    "CREATE ALIAS hostile FOR DATABASE neo4j",
    "USE system SHOW USERS",
    "CREATE INDEX hostile_idx IF NOT EXISTS FOR (n:Hostile) ON (n.hostileProp)",
    "CREATE TEXT INDEX hostile_text FOR (n:Hostile) ON (n.hostileProp)",
    "CREATE CONSTRAINT hostile_c IF NOT EXISTS FOR (n:Hostile) REQUIRE n.id IS UNIQUE",
    "DROP INDEX hostile_idx IF EXISTS",
    "DROP CONSTRAINT hostile_c IF EXISTS",
    "SHOW INDEXES",
    # file and URL access
    "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
    "LOAD CSV WITH HEADERS FROM 'http://127.0.0.1:9/x.csv' AS l RETURN l",
    "load csv from 'https://example.org/a.csv' as l return l",
    # several statements
    "MATCH (n) RETURN n; CREATE (x:Hostile)",
    "RETURN 1; RETURN 2",
    "RETURN 1;;",
    # comments hiding or splitting keywords
    "CR/**/EATE (n:Hostile)",
    "/* harmless */ CREATE (n:Hostile)",
    "// a comment\nCREATE (n:Hostile)",
    "MATCH (n) RETURN n /* never closed CREATE (x)",
    "// ends at a unicode line separator for some lexers\u2028CREATE (n:Hostile)",
    "RETURN 'never closed",
    # unicode tricks
    "\uff23\uff32\uff25\uff21\uff34\uff25 (n:Hostile)",  # fullwidth CREATE
    "CRE\u200bATE (n:Hostile)",  # zero-width space
    "MATCH\u00a0(n) RETURN n",  # no-break space
    "MATCH (n)\u2003RETURN n",  # em space
    "MATCH (n)\x0bRETURN n",  # vertical tab
    "\u0421REATE (n:Hostile)",  # Cyrillic Es
    "RETURN 1\ufeff",  # byte order mark
]

ALLOWED = [
    ("RETURN 'CREATE' AS x", [{"x": "CREATE"}]),
    ('RETURN "DROP USER root; LOAD CSV" AS x', [{"x": "DROP USER root; LOAD CSV"}]),
    ("RETURN 'it\\'s a \\'DELETE\\'' AS x", [{"x": "it's a 'DELETE'"}]),
    (
        "RETURN '\uff23\uff32\uff25\uff21\uff34\uff25' AS x",
        [{"x": "\uff23\uff32\uff25\uff21\uff34\uff25"}],
    ),
    ("RETURN {created: 1, deleted: 2}.created AS created", [{"created": 1}]),
    ("RETURN 1 AS `CREATE`", [{"CREATE": 1}]),
    ("RETURN $set AS x", [{"x": 5}]),
    ("MATCH (n:TrainingRun) WHERE n.createdAt IS NULL AND n.id = $none RETURN n.name", []),
    ("MATCH (n:TrainingRun) WHERE n.id = $none RETURN n.name // CREATE later", []),
    ("/* reads only */ MATCH (n:TrainingRun) WHERE n.id = $none RETURN count(n) AS c", [{"c": 0}]),
    ("MATCH (n:Entity) WHERE n.id = $none AND EXISTS { MATCH (n)-->() } RETURN n", []),
    ("CALL { RETURN 1 AS x UNION RETURN 2 AS x } RETURN x ORDER BY x", [{"x": 1}, {"x": 2}]),
    ("MATCH (n:Entity) WHERE n.id = $none CALL { WITH n MATCH (n)-->(m) RETURN m } RETURN m", []),
    ("UNWIND range(1, 3) AS i RETURN sum(i) AS total;", [{"total": 6}]),
    ("RETURN date('2024-02-03').year AS y", [{"y": 2024}]),
    ("UNWIND [1, 2] AS start WITH start AS stop RETURN stop", [{"stop": 1}, {"stop": 2}]),
]


# -- helpers -------------------------------------------------------------------------------
def _sorted_values(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def _try(store: Store, statement: str) -> list[str]:
    """A trusted statement's rows, sorted, or the error it gave (the same both times)."""
    try:
        return _sorted_values(store.execute(statement))
    except Exception as exc:  # the snapshot records what the engine says, both times
        return [f"error: {type(exc).__name__}"]


def snapshot(store: Store) -> dict[str, object]:
    """What a hostile statement could leave behind, read through trusted calls."""
    found: dict[str, object] = {
        "counts": store.counts(),
        "labels": _try(store, "CALL db.labels()"),
        "types": _try(store, "CALL db.relationshipTypes()"),
        "keys": _try(store, "CALL db.propertyKeys()"),
        "indexes": _try(store, "SHOW INDEXES YIELD name"),
        "constraints": _try(store, "SHOW CONSTRAINTS YIELD name"),
        "users": _try(store, "SHOW USERS YIELD user"),
    }
    settings = store.settings
    if settings.embedded:  # the engine's own account list
        users_file = settings.home / "databases" / "config" / "server-users.jsonl"
        found["system_users"] = sorted(
            json.loads(line)["name"] for line in users_file.read_text().splitlines() if line
        )
    else:  # Neo4j keeps users, roles and databases in its system database
        auth = (settings.user, settings.password or "")
        with GraphDatabase.driver(settings.uri, auth=auth) as driver:
            for statement in ("SHOW USERS", "SHOW ROLES", "SHOW DATABASES YIELD name"):
                try:
                    rows = driver.execute_query(statement, database_="system").records
                    found[statement] = _sorted_values([r.data() for r in rows])
                except Neo4jError as exc:  # Community has no roles
                    found[statement] = [f"error: {exc.code}"]
    return found


def credentials(home: Path) -> dict:
    return ServerFiles(home).read_credentials()


def bolt(home: Path, user: str, password: str) -> neo4j.Driver:
    info = EmbeddedServer(home).status()
    assert info is not None
    return GraphDatabase.driver(info.uri, auth=(user, password), connection_timeout=10)


def run_as(home: Path, user: str, password: str, statement: str) -> list[dict]:
    with bolt(home, user, password) as driver, driver.session(database=DATABASE_NAME) as s:
        return s.run(statement).data()


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the guard ------------------------------------------------------------------------------
def test_hostile_list_is_long_enough() -> None:
    assert len(HOSTILE) >= 40 and len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("statement", HOSTILE)
def test_console_refuses_hostile_statement(store: Store, statement: str) -> None:
    with pytest.raises(ReadOnlyViolation, match="read-only") as refused:
        store.read_only(statement)
    assert "nothing ran" in str(refused.value)


def test_refusals_name_what_was_refused() -> None:
    cases = {
        "CREATE USER x SET PASSWORD 'y'": "CREATE USER (administration) is refused",
        "create index i for (n:X) on (n.y)": "CREATE INDEX (schema)",
        "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l": "LOAD CSV (file and URL access)",
        "CALL dbms.security.createUser('a', 'b')": "CALL dbms.security.createUser (a procedure",
        "MATCH (n) DETACH DELETE n": "DETACH (a write)",
        "MATCH (n) RETURN n; CREATE (x)": "several statements",
        "CR/**/EATE (n)": "'CR/**/EATE'",
        "\uff23\uff32\uff25\uff21\uff34\uff25 (n)": "which reads as 'CREATE'",
        "CRE\u200bATE (n)": "U+200B (ZERO WIDTH SPACE)",
    }
    for statement, expected in cases.items():
        with pytest.raises(ReadOnlyViolation) as refused:
            console_guard.check(statement)
        assert expected in str(refused.value), (statement, str(refused.value))


def settled_snapshot(store: Store, tries: int = 30) -> dict[str, object]:
    """`snapshot` once the engine has finished its own work: ArcadeDB defines a typed
    `id` property (and `constraint_<Kind>_id_type`) a moment after the first write of a
    kind, by itself; that must not count against the statements under test."""
    previous = snapshot(store)
    for _ in range(tries):
        time.sleep(1)
        current = snapshot(store)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the store's schema kept changing on its own")


def test_hostile_statements_leave_nothing_behind(store: Store) -> None:
    before = settled_snapshot(store)
    for statement in HOSTILE:
        with pytest.raises(ReadOnlyViolation):
            store.read_only(statement)
    after = snapshot(store)
    assert after == before
    assert "Hostile" not in json.dumps(after) and "eve" not in json.dumps(after.get("users"))


@pytest.mark.parametrize(("statement", "expected"), ALLOWED)
def test_console_keeps_answering_reads(store: Store, statement: str, expected: list) -> None:
    result = store.read_only(statement, {"set": 5, "none": "provkb:no-such-node"})
    assert result.rows == expected and not result.truncated


def test_console_allows_harmless_schema_procedures(store: Store) -> None:
    labels = {row["label"] for row in store.read_only("CALL db.labels() YIELD label").rows}
    trusted = {row["label"] for row in store.execute("CALL db.labels()")}
    assert labels == trusted
    assert store.read_only("CALL db.relationshipTypes()").columns == ["relationshipType"]
    assert store.read_only("CALL db.propertyKeys()").columns == ["propertyKey"]


# -- limits ---------------------------------------------------------------------------------
def test_row_limit_cuts_and_says_so(store: Store) -> None:
    cut = store.read_only("UNWIND range(1, 50) AS i RETURN i", max_rows=20)
    assert [r["i"] for r in cut.rows] == list(range(1, 21)) and cut.truncated
    exact = store.read_only("UNWIND range(1, 20) AS i RETURN i", max_rows=20)
    assert len(exact.rows) == 20 and not exact.truncated
    default = store.read_only("UNWIND range(1, 1500) AS i RETURN i")
    assert len(default.rows) == 1000 and default.truncated
    configured = Store(dataclasses.replace(store.settings, console_rows=7))
    try:
        assert len(configured.read_only("UNWIND range(1, 50) AS i RETURN i").rows) == 7
    finally:
        configured.close()


def test_console_account_of_a_neo4j_server_is_its_own_setting(store: Store) -> None:
    """On Neo4j the console logs in as PROVKB_CONSOLE_USER when set (Enterprise: a user
    with only the reader role); the embedded store always uses its own reader."""
    settings = store.settings
    same = Store(
        dataclasses.replace(
            settings, console_user=settings.user, console_password=settings.password
        )
    )
    wrong = Store(
        dataclasses.replace(
            settings, console_user="provkb_no_such_console_user", console_password="nope"
        )
    )
    try:
        assert same.read_only("RETURN 3 AS three").rows == [{"three": 3}]
        if settings.embedded:
            assert wrong.read_only("RETURN 4 AS four").rows == [{"four": 4}]
        else:
            with pytest.raises(StoreUnavailable, match="PROVKB_CONSOLE_USER"):
                wrong.read_only("RETURN 4 AS four")
    finally:
        same.close()
        wrong.close()


def test_console_settings_come_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVKB_CONSOLE_TIMEOUT", "2.5")
    monkeypatch.setenv("PROVKB_CONSOLE_ROWS", "12")
    settings = resolve_settings()
    assert settings.console_timeout == 2.5 and settings.console_rows == 12
    monkeypatch.setenv("PROVKB_CONSOLE_ROWS", "many")
    with pytest.raises(ConfigError, match="PROVKB_CONSOLE_ROWS"):
        resolve_settings()
    monkeypatch.delenv("PROVKB_CONSOLE_ROWS")
    monkeypatch.setenv("PROVKB_CONSOLE_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match="PROVKB_CONSOLE_TIMEOUT"):
        resolve_settings()


CARTESIAN = (
    "UNWIND range(1, 3000) AS a UNWIND range(1, 3000) AS b UNWIND range(1, 3000) AS c "
    "WITH a + b + c AS s WHERE s = -1 RETURN count(*) AS hits"
)


def test_time_limit_cancels_the_query_on_the_server(store: Store) -> None:
    started = time.monotonic()
    with pytest.raises(ConsoleTimeout, match=r"time limit of 1\.5 s"):
        store.read_only(CARTESIAN, timeout=1.5)
    ended = time.monotonic() - started
    if store.settings.embedded:  # the console's account sees no trace of it left
        home = store.settings.home
        reader = credentials(home)
        deadline = time.monotonic() + 30
        while True:
            rows = run_as(
                home, reader["reader_user"], reader["reader_password"], "SHOW TRANSACTIONS"
            )
            if not any("range(1, 3000)" in str(r.get("currentQuery")) for r in rows):
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        pid = EmbeddedServer(home).status().pid
        cpu = server_cpu_seconds(pid)
        time.sleep(3)
        print(
            f"\n[measure] {store.engine}: timeout 1.5 s raised after {ended:.2f} s; "
            f"server CPU in the 3 s after: {server_cpu_seconds(pid) - cpu:.2f} s"
        )
    else:
        print(f"\n[measure] {store.engine}: timeout 1.5 s raised after {ended:.2f} s")
    assert store.read_only("RETURN 1 AS one").rows == [{"one": 1}]


def test_embedded_server_ends_a_console_query_whose_client_died(embedded_home: Path) -> None:
    """A client killed mid-query cannot cancel it; the embedded server ends it itself
    soon after the query's deadline (the engine ignores Bolt's transaction timeout)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "provkb", "cypher", CARTESIAN, "--timeout", "2"]
        + ["--store", str(embedded_home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    reader = credentials(embedded_home)
    login = (embedded_home, reader["reader_user"], reader["reader_password"])

    def running() -> bool:
        rows = run_as(*login, "SHOW TRANSACTIONS")
        return any("range(1, 3000)" in str(r.get("currentQuery")) for r in rows)

    deadline = time.monotonic() + 120
    while not running():  # the child has started its query
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    child.kill()
    child.wait()
    killed = time.monotonic()
    while running():
        assert time.monotonic() < deadline, "the query outlived its dead client"
        time.sleep(0.2)
    print(f"\n[measure] query of a killed client ended {time.monotonic() - killed:.1f} s after")


# -- the CLI --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "statement",
    [
        "CREATE USER x SET PASSWORD 'y'",
        "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
    ],
)
def test_cli_refuses_with_a_clear_message(store: Store, statement: str) -> None:
    before = snapshot(store)
    out = cli(store, "cypher", statement)
    said = " ".join(out.stderr.split())  # as one line, whatever the terminal width
    assert out.returncode != 0
    assert "the console is read-only" in said and "nothing ran" in said
    assert statement.split(" FROM")[0].split(" x")[0] in said  # CREATE USER / LOAD CSV
    assert "root:" not in out.stdout + out.stderr  # no line of /etc/passwd
    assert snapshot(store) == before


def test_cli_streams_csv_and_json_within_the_row_limit(store: Store) -> None:
    query = "UNWIND range(1, 30) AS i RETURN i, 'x' + i AS label"
    out = cli(store, "cypher", query, "--format", "csv", "--max-rows", "5")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["i,label", "1,x1", "2,x2", "3,x3", "4,x4", "5,x5"]
    assert "showing the first 5 rows" in " ".join(out.stderr.split())
    out = cli(store, "cypher", query, "--format", "json", "--max-rows", "3")
    assert json.loads(out.stdout) == [{"i": n, "label": f"x{n}"} for n in (1, 2, 3)]
    out = cli(store, "cypher", "UNWIND [] AS i RETURN i", "--format", "json")
    assert json.loads(out.stdout) == [] and "showing" not in out.stderr
    out = cli(store, "cypher", "UNWIND range(1, 3) AS i RETURN i", "--format", "csv")
    assert out.stdout.splitlines() == ["i", "1", "2", "3"] and "showing" not in out.stderr


# -- the app --------------------------------------------------------------------------------
def test_app_cypher_editor_shows_row_limit_and_refusal(
    embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVKB_HOME", str(embedded_home))
    monkeypatch.setenv(common.ENV_EMBEDDED, "1")
    monkeypatch.delenv("PROVKB_URI", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("page_queries.py").run()
    at.text_area(key="cy_text").input("UNWIND range(1, 1005) AS i RETURN i")
    at.button(key="cy_run").click().run()
    assert any("Showing the first 1000 rows" in w.value for w in at.warning)
    at.text_area(key="cy_text").input("CREATE USER x SET PASSWORD 'y'")
    at.button(key="cy_run").click().run()
    assert any("CREATE USER (administration) is refused" in e.value for e in at.error)
    assert not at.exception


# -- the embedded server's accounts ------------------------------------------------------------
def test_embedded_store_uses_its_own_accounts_not_root(embedded_home: Path) -> None:
    creds = credentials(embedded_home)
    assert creds["user"].startswith("provkb_") and creds["user"] != "root"
    assert creds["reader_user"].startswith("provkb_reader_")
    for password in (creds["password"], creds["reader_password"]):  # root's is kept nowhere
        with pytest.raises(AuthError):
            run_as(embedded_home, "root", password, "RETURN 1")


def _all_forbidden(home: Path, account: tuple[str, str], *statements: str) -> None:
    """The engine refuses `account` each statement as forbidden (not as any error)."""
    for statement in statements:
        with pytest.raises(Neo4jError) as refused:
            run_as(home, *account, statement)
        assert refused.value.code == "Neo.ClientError.Security.Forbidden", statement


def test_engine_itself_refuses_the_reader_every_write(embedded_home: Path) -> None:
    kb = Store(resolve_settings(store=embedded_home)).connect()
    kb.write_namespaces({"readertest": "http://example.org/reader#"})  # something to change
    kb.close()
    creds = credentials(embedded_home)
    reader = (creds["reader_user"], creds["reader_password"])
    assert run_as(embedded_home, *reader, "RETURN 1 AS one") == [{"one": 1}]
    _all_forbidden(
        embedded_home,
        reader,
        "CREATE (n:Entity {id: 'provkb:reader-write'})",
        "MATCH (n {prefix: 'readertest'}) SET n.readerWrote = true",
        "MATCH (n {prefix: 'readertest'}) DETACH DELETE n",
        "CREATE INDEX reader_idx IF NOT EXISTS FOR (n:Entity) ON (n.readerWrote)",
        "CREATE USER eve SET PASSWORD 'secret-pass'",
        "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
    )
    writer = (creds["user"], creds["password"])
    _all_forbidden(  # the writer writes data, but administers nothing
        embedded_home,
        writer,
        "CREATE USER eve SET PASSWORD 'secret-pass'",
        "ALTER USER root SET PASSWORD 'taken-over'",
        "SHOW USERS",
        "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
    )
    left = run_as(
        embedded_home, *writer, "MATCH (n {prefix: 'readertest'}) RETURN n.readerWrote AS w"
    )
    assert left == [{"w": None}]
    assert not run_as(embedded_home, *writer, "MATCH (n {id: 'provkb:reader-write'}) RETURN n")


def test_wrong_passwords_from_other_processes_cannot_lock_provkb_out(embedded_home: Path) -> None:
    """The engine locks an account for 30 s after 5 wrong passwords; ProvKB's account
    names are random and kept in the 0600 credentials file, so a local process can only
    lock out the names it can guess."""
    guesses = ["root", "provkb", "provkb_reader", "provkb_writer", "neo4j", "admin"]
    for user in guesses:
        for attempt in range(6):
            with pytest.raises(AuthError):
                run_as(embedded_home, user, f"wrong-{attempt}", "RETURN 1")
    kb = Store(resolve_settings(store=embedded_home)).connect()
    try:
        kb.write_namespaces({"lockouttest": "http://example.org/lockout#"})
        assert kb.read_only("RETURN 1 AS one").rows == [{"one": 1}]
        uris = [
            r["uri"] for r in kb.execute("MATCH (n {prefix: 'lockouttest'}) RETURN n.uri AS uri")
        ]
        assert uris == ["http://example.org/lockout#"]
    finally:
        kb.close()


def test_refused_credentials_blame_the_store_folder_not_provkb_user(
    embedded_home: Path, tmp_path: Path
) -> None:
    home = tmp_path / "copy"
    home.mkdir(mode=0o700)
    creds = json.loads((embedded_home / "credentials.json").read_text())
    creds["user"] = "provkb_not_an_account"  # a wrong name: no lockout count on the real one
    (home / "credentials.json").write_text(json.dumps(creds))
    (home / "credentials.json").chmod(0o600)
    (home / "server.json").write_text((embedded_home / "server.json").read_text())
    try:
        with pytest.raises(StoreUnavailable) as refused:
            Store(resolve_settings(store=home)).connect()
    finally:
        (home / "server.json").unlink()  # not a server of its own: the session must not stop it
    message = str(refused.value)
    assert (
        "credentials" in message
        and "PROVKB_USER" not in message
        and "PROVKB_PASSWORD" not in message
    )


def test_old_root_store_is_migrated_and_foreign_accounts_removed(tmp_path: Path) -> None:
    """A store folder from before (ProvKB logged in as root, whose password it kept) gets
    ProvKB's own accounts; an account someone else created is gone after a restart."""
    home = tmp_path / "old-store"
    home.mkdir(mode=0o700)
    old = {"user": "root", "password": "old-root-password", "token": "old-token-value"}
    (home / "credentials.json").write_text(json.dumps(old))
    (home / "credentials.json").chmod(0o600)
    server = EmbeddedServer(home)
    try:
        server.ensure_running()
        creds = credentials(home)
        assert creds["user"] != "root" and creds["token"] == old["token"]
        with pytest.raises(AuthError):
            run_as(home, "root", old["password"], "RETURN 1")
        server.stop()
        users_file = home / "databases" / "config" / "server-users.jsonl"
        lines = users_file.read_text().splitlines()
        eve = {**json.loads(lines[-1]), "name": "eve"}  # an account created behind ProvKB's back
        users_file.write_text("\n".join([*lines, json.dumps(eve)]) + "\n")
        server.ensure_running()
        names = [json.loads(line)["name"] for line in users_file.read_text().splitlines() if line]
        assert sorted(names) == sorted(["root", creds["user"], creds["reader_user"]])
        kb = Store(resolve_settings(store=home)).connect()
        try:
            assert kb.read_only("RETURN 2 AS two").rows == [{"two": 2}]
        finally:
            kb.close()
    finally:
        server.stop()
