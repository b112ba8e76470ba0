"""The `provkb` command line and the layering it rests on.

Layering (read from the source files): no `cli_*` module nor `demo.py` imports `cli.py`;
the app imports nothing from `capture/` and no `importlib`; the CLI and the app reach
the store only through `KnowledgeBase`; no module outside `kb/` and `queries/` holds
Cypher. Behaviour: the real CLI in a child process on both engines (`helpers.cli`).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import uuid
from datetime import UTC, datetime
from pathlib import Path

import builders
import pytest
from helpers import cli

from provkb.errors import ProvKBError
from provkb.kb.store import Store
from provkb.typed_text import parse_pairs

ROOT = Path(__file__).resolve().parent.parent
CLI_MODULES = sorted(ROOT.glob("cli*.py")) + [ROOT / "demo.py"]
APP_MODULES = sorted((ROOT / "ui").glob("*.py"))
FACADE_USERS = sorted(ROOT.glob("cli*.py")) + APP_MODULES


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, as absolute `provkb....` names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["provkb", *path.parent.relative_to(ROOT).parts]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_cli_module_imports_cli() -> None:
    for path in CLI_MODULES:
        assert "provkb.cli" not in _imports(path), path.name


def test_the_app_imports_nothing_from_capture() -> None:
    for path in APP_MODULES:
        imported = _imports(path)
        assert not [m for m in imported if m.startswith("provkb.capture")], path.name
        assert "importlib" not in imported, path.name


def test_the_cli_and_the_app_reach_the_store_only_through_the_facade() -> None:
    reaching = ("provkb.kb.store", "provkb.kb.embedded", "provkb.kb.journal", "provkb.kb.export")
    reaching += ("provkb.kb.provimport", "provkb.kb.lifecycle", "provkb.kb.quarantine")
    for path in FACADE_USERS:
        imported = _imports(path)
        assert not [m for m in imported if m.startswith(reaching)], path.name
        calls = ("Steering", "StudyQueue", "list_studies", "steer", "Store")
        named = {m.rsplit(".", 1)[-1] for m in imported if m.startswith("provkb.kb")}
        assert not named & set(calls), path.name


CYPHER = re.compile(r"\b(OPTIONAL MATCH|MATCH|MERGE|CREATE|UNWIND)\s*\(|\bRETURN\s+[\w*`$]")


def _cypher_strings(path: Path) -> list[str]:
    """String literals of `path` that read as Cypher."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    kinds = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    return [t.string for t in tokens if t.type in kinds and CYPHER.search(t.string)]


def test_no_module_outside_kb_and_queries_holds_cypher() -> None:
    outside = [
        p
        for p in ROOT.rglob("*.py")
        if p.relative_to(ROOT).parts[0] not in ("kb", "queries", "tests", "benchmarks")
        and ".egg-info" not in str(p)
    ]
    assert ROOT / "ui" / "data.py" in outside
    found = {str(p.relative_to(ROOT)): _cypher_strings(p) for p in outside}
    assert {p: s for p, s in found.items() if s} == {}


def test_one_key_value_parser() -> None:
    assert parse_pairs(["run=a b", "k=5"]) == {"run": "a b", "k": "5"}
    assert parse_pairs(["x=[1, 2]"], convert=lambda t: t.upper()) == {"x": "[1, 2]"}
    with pytest.raises(ProvKBError, match="--param 'k' is not name=value"):
        parse_pairs(["k"])
    with pytest.raises(ProvKBError, match="--param names 'run' twice"):
        parse_pairs(["run=a", "run=b"])
    with pytest.raises(ProvKBError, match="--set 'lr=' is not name=value"):
        parse_pairs(["lr="], "--set", need_value=True)


def test_the_cli_loads_only_what_a_query_needs() -> None:
    """Each `provkb query` is a new process, and a person waits for its imports: the
    script scanner, the query builder and the study modules load only with the
    commands that use them (issue 15: `provkb query` under 1.5 s while training)."""
    import subprocess
    import sys

    heavy = ["provkb.capture.scan", "provkb.queries.builder", "provkb.kb.study"]
    probe = f"import sys, provkb.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
    import provkb.queries

    assert provkb.queries.build.__module__ == "provkb.queries.builder"
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        provkb.queries.nosuch  # noqa: B018


# -- the real CLI -----------------------------------------------------------------------
def _run(store: Store) -> str:
    run_id = uuid.uuid4().hex[:12]
    run = builders.RunBuilder(
        run_id, name="cli-run", experiment="cli", started=datetime.now(UTC).isoformat()
    )
    run.epoch(1, {"loss": 0.5}).finish().write(store)
    return run_id


def test_a_store_command_starts_without_the_drivers_data_frame_imports(store: Store) -> None:
    """`provkb query` answers from the store in a process where the neo4j driver did not
    import pandas (0.4 s of each start); a command that may train keeps them."""
    import subprocess
    import sys

    from helpers import store_child_env

    from provkb import cli as cli_module

    run_id = _run(store)
    env, store_args = store_child_env(store)
    probe = (
        "import sys\nfrom provkb import cli\n"
        "sys.argv = ['provkb', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print('pandas imported:', sys.modules.get('pandas') is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "query", "epochs", "-p", f"run={run_id}", *store_args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=180,
    )
    assert "1 row(s)" in done.stdout, done.stdout + done.stderr
    assert "pandas imported: False" in done.stdout
    assert cli_module.skip_dataframes(["provkb", "demo"]) is False
    assert cli_module.skip_dataframes(["provkb", "query"]) is False  # neo4j already here
    assert {"demo", "ui", "reproduce"}.isdisjoint(cli_module.STORE_COMMANDS)


def test_tables_show_data_as_it_is(store: Store) -> None:
    done = cli(store, "cypher", "RETURN '[bold]x[/bold]' AS a, [null, 64] AS b, '[red]' AS c")
    assert done.returncode == 0, done.stderr
    assert "[bold]x[/bold]" in done.stdout and "[null, 64]" in done.stdout
    assert "[red]" in done.stdout


def test_a_table_wider_than_the_terminal_prints_one_block_per_row(monkeypatch) -> None:
    """steering-history's 19 columns at 80 columns: readable `column value` blocks, not a
    table wrapped letter by letter; a narrow table stays a table."""
    from rich.console import Console

    from provkb import cli_options

    out = io.StringIO()
    monkeypatch.setattr(cli_options, "console", Console(file=out, width=80))
    columns = [f"column_{i}" for i in range(19)]
    rows = [{c: f"value-{n}-{i}" for i, c in enumerate(columns)} for n in (1, 2)]
    cli_options.print_rows(columns, rows, cli_options.OutputFormat.table)
    lines = out.getvalue().splitlines()
    assert "-[ row 2 ]-" in lines and lines[-1] == "2 row(s)"
    assert any(line.split() == ["column_18", "value-2-18"] for line in lines)
    assert max(len(line) for line in lines) <= 80
    out.truncate(0), out.seek(0)
    long = [{**rows[0], "column_0": "x" * 150, "column_1": "[bold]a[/bold]\nsecond line"}]
    cli_options.print_rows(columns, long, cli_options.OutputFormat.table)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80  # a long value folds at the width
    assert lines[1].startswith("column_0  ") and not lines[2].startswith("column_1")
    assert "".join(line.split()[-1] for line in lines[1:4]) == "x" * 150
    assert lines[4].split() == ["column_1", "[bold]a[/bold]"]  # data, never markup
    assert lines[5].strip() == "second line"
    out.truncate(0), out.seek(0)
    cli_options.print_rows(columns[:3], rows, cli_options.OutputFormat.table)
    assert "-[ row" not in out.getvalue() and "┃ column_0  ┃" in out.getvalue()


def test_query_errors_are_clear(store: Store) -> None:
    _run(store)
    unknown = cli(store, "query", "epochs", "-p", "run=nosuch")
    assert unknown.returncode == 1
    assert "no run with id or name 'nosuch'" in unknown.stderr and "0 row" not in unknown.stdout
    usage = cli(store, "query", "steering-impact")
    assert usage.returncode == 1
    assert "usage: steering-impact [run=<str>] [study=<str>]" in " ".join(usage.stderr.split())
    big = cli(store, "query", "runs", "-p", f"limit={2**63}")
    assert big.returncode == 1 and "Traceback" not in big.stderr
    assert "must be a 64-bit integer" in big.stderr
    console = cli(store, "cypher", "RETURN $x AS x", "-p", f"x={2**64}")
    assert console.returncode == 1 and "Traceback" not in console.stderr
    assert "does not fit in a 64-bit integer" in " ".join(console.stderr.split())
    twice = cli(store, "query", "epochs", "-p", "run=a", "-p", "run=b")
    assert twice.returncode == 1 and "--param names 'run' twice" in twice.stderr


def test_import_prints_a_readable_report(store: Store, tmp_path: Path) -> None:
    run_id = _run(store)
    target = tmp_path / "run.json"
    exported = cli(store, "export", "--run", run_id, "-o", str(target))
    assert exported.returncode == 0, exported.stderr
    done = cli(store, "import", str(target))
    assert done.returncode == 0, done.stderr
    assert "ImportReport(" not in done.stdout
    assert "already has it" in done.stdout


def test_export_writes_every_format_of_the_registry(store: Store, tmp_path: Path) -> None:
    from provkb.kb import formats

    run_id = _run(store)
    jsonld = tmp_path / "run.provjsonld"  # the format from the suffix
    done = cli(store, "export", "--run", run_id, "-o", str(jsonld))
    assert done.returncode == 0, done.stderr
    assert "(provjsonld," in done.stdout and jsonld.stat().st_size > 0
    assert cli(store, "import", str(jsonld)).returncode == 0
    named = cli(store, "export", "--run", run_id, "-f", "provjsonld", "-o", str(tmp_path / "x"))
    assert named.returncode == 0, named.stderr
    unknown = cli(store, "export", "--run", run_id, "-o", str(tmp_path / "run.nope"))
    assert unknown.returncode == 1
    message = " ".join(unknown.stderr.split())
    assert "cannot tell the PROV format of 'run.nope'" in message
    assert all(name in message for name in formats.EXPORT_FORMATS)


def test_delete_needs_yes_without_a_terminal_and_reports(store: Store) -> None:
    run_id = _run(store)
    refused = cli(store, "delete", "--run", run_id)
    assert refused.returncode == 1 and "needs --yes" in refused.stderr
    assert cli(store, "query", "epochs", "-p", f"run={run_id}").returncode == 0
    done = cli(store, "delete", "--run", run_id, "--yes", "--person", "ada")
    assert done.returncode == 0, done.stderr
    assert f"deleted run '{run_id}': 1 run(s)" in done.stdout and "(by ada)" in done.stdout
    gone = cli(store, "query", "epochs", "-p", f"run={run_id}")
    assert gone.returncode == 1 and "no run with id or name" in gone.stderr
