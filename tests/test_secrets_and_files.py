"""Files and secrets: the store folder is private (folders 0700, files 0600, also what
the engine writes), and secrets in a training's command line, environment and
hyperparameters are redacted before anything is stored (journal, knowledge base,
exports). The Environment entity lists every installed distribution and the
environment variables."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import uuid
from importlib import metadata
from pathlib import Path

import keras
import numpy as np
import pytest

from provkb import ontology as o
from provkb.capture import environment, redaction
from provkb.capture.callback import ProvenanceCallback
from provkb.capture.facts import Hyperparameter, Run, Source
from provkb.config import resolve_settings
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.export import export
from provkb.kb.journal import Journal
from provkb.kb.records import GraphBatch
from provkb.kb.store import Store
from provkb.kb.store_folder import secure_store

pytestmark = pytest.mark.slow

RUN, ENV, HP = o.TRAINING_RUN.label, o.ENVIRONMENT.label, o.HYPERPARAMETER.label
USED = o.USED.rel_type
EXPORT_FORMATS = ("provjson", "turtle", "provn", "provxml")
REDACTED = redaction.REDACTED


def loose_entries(home: Path) -> list[str]:
    """Everything under `home` (itself included) that is not a 0700 folder or 0600 file."""
    wrong = []
    for folder, _, files in os.walk(home):
        for path in (folder, *(os.path.join(folder, f) for f in files)):
            st = os.lstat(path)
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) != want:
                wrong.append(f"{oct(stat.S_IMODE(st.st_mode))} {path}")
    return wrong


def make_loose(home: Path) -> None:
    """A store folder as older versions left it: 0755 folders, 0644 files."""
    (home / "journal").mkdir(parents=True)
    for name in ("server.log", "journal/old-1.jsonl"):
        (home / name).write_text("{}\n")
        os.chmod(home / name, 0o644)
    os.chmod(home / "journal", 0o755)
    os.chmod(home, 0o755)


def small_fit(store: str | Path | Store) -> ProvenanceCallback:
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = ProvenanceCallback(experiment=f"files-{uuid.uuid4().hex[:6]}", store=store)
    model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, callbacks=[cb], verbose=0)
    assert cb.writer.flush(60)
    return cb


# -- files ---------------------------------------------------------------------------
def test_store_folder_is_private_after_a_real_start_and_fit(tmp_path: Path) -> None:
    """A looser pre-existing folder, a real embedded server start and a captured fit:
    every folder 0700 and every file 0600 (the engine's databases and logs too)."""
    home = tmp_path / "store"
    make_loose(home)
    server = EmbeddedServer(home)
    try:
        server.ensure_running()
        cb = small_fit(home)
        cb.writer.close(30)
        store = Store(resolve_settings(store=home)).connect()
        try:
            assert store.counts()["nodes"] > 0
        finally:
            store.close()
        assert (home / "databases").is_dir() and (home / "log").is_dir()  # the engine's own
        assert (home / "credentials.json").is_file() and (home / "server.json").is_file()
        assert loose_entries(home) == []
    finally:
        server.stop()
    assert loose_entries(home) == []  # what a stop writes too


def test_a_looser_folder_is_tightened_once_with_one_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "old-store"
    make_loose(home)
    outside = tmp_path / "outside.txt"  # a symlink's target is not the store's
    outside.write_text("x")
    os.chmod(outside, 0o644)
    (home / "link").symlink_to(outside)
    journal = Journal(home / "journal", "new")
    with caplog.at_level(logging.WARNING, logger="provkb"):
        journal.append(GraphBatch())  # the first use of the folder in this process
        secure_store(home)
    journal.close()
    notices = [r for r in caplog.records if "made it private" in r.getMessage()]
    assert len(notices) == 1 and str(home) in notices[0].getMessage()
    (home / "link").unlink()
    assert loose_entries(home) == []
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644


def test_a_new_store_folder_is_private_from_the_start(tmp_path: Path) -> None:
    home = tmp_path / "a" / "new-store"
    journal = Journal(home / "journal", "j")
    journal.append(GraphBatch())
    journal.acknowledge(1)
    journal.close()
    assert loose_entries(home) == []


# -- redaction rules -----------------------------------------------------------------
def test_command_line_redaction() -> None:
    argv = [
        "train.py",
        "--api-key",
        "plain-value-1",
        "--token=plain-value-2",
        "--DB_PASSWORD",
        "plain-value-3",
        "db.passwd=plain-value-4",
        "--no-auth",
        "--epochs",
        "3",
        "--note",
        "see ghp_" + "a" * 36,
    ]
    assert redaction.redact_argv(argv) == [
        "train.py",
        "--api-key",
        REDACTED,
        f"--token={REDACTED}",
        "--DB_PASSWORD",
        REDACTED,
        f"db.passwd={REDACTED}",
        "--no-auth",
        "--epochs",
        "3",
        "--note",
        f"see {REDACTED}",
    ]
    run = Run("r", "r", "e", "p", "ada", "t", 1, command_line="python t.py --secret s3cr3t")
    assert run.command_line == f"python t.py --secret '{REDACTED}'"


@pytest.mark.parametrize(
    "text",
    [
        "sk-proj-" + "Ab1" * 10,
        "ghp_" + "x" * 36,
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "xoxb-123456789012-abcdefghij",
        "hf_" + "Q" * 34,
        "https://host/x?token=3f9a1c0d2e",
        "postgres://ada:3f9a1c0d2e@db:5432/kb",
    ],
)
def test_credential_shaped_values_are_scrubbed(text: str) -> None:
    scrubbed = redaction.scrub(f"value: {text} end")
    assert REDACTED in scrubbed and "3f9a1c0d2e" not in scrubbed
    assert scrubbed.startswith("value: ") and scrubbed.endswith(" end")
    assert redaction.scrub(scrubbed) == scrubbed


def test_user_hyperparameters_are_redacted_by_name_and_shape() -> None:
    def value(name: str, v: object) -> object:
        return Hyperparameter(name, v, Source.USER).value

    assert value("api_key", "hunter2") == REDACTED
    assert value("db", {"password": "hunter2", "host": "h"}) == {"password": REDACTED, "host": "h"}
    assert value("note", "key sk-" + "z" * 30) == f"key {REDACTED}"
    assert value("key_dim", 64) == 64 and value("max_tokens", 512) == 512  # numbers stay
    assert Hyperparameter("api_key", "x", Source.FIT).value == "x"  # Keras' own values


def test_environment_variables_redacted_and_noise_left_out() -> None:
    found = environment.variables(
        {
            "HOME": "/home/ada",
            "MY_API_KEY": "hunter2",
            "GITHUB_TOKEN": "ghp_" + "b" * 36,
            "AWS_SECRET_ACCESS_KEY": "x",
            "DATABASE_URL": "postgres://ada:hunter2@db/kb",
            "LS_COLORS": "rs=0:di=01;34",
            "PYTEST_CURRENT_TEST": "x",
            "UNDECODED": "caf\udce9",  # a byte the OS could not decode
            "LONG": "x" * 10_000,
        }
    )
    assert found == (
        f"AWS_SECRET_ACCESS_KEY={REDACTED}",
        f"DATABASE_URL=postgres://ada:{REDACTED}@db/kb",
        f"GITHUB_TOKEN={REDACTED}",
        "HOME=/home/ada",
        "LONG=" + "x" * environment.MAX_VARIABLE_CHARS + "...",
        f"MY_API_KEY={REDACTED}",
        "UNDECODED=caf\ufffd",
    )


def test_every_installed_distribution_is_listed() -> None:
    packages = environment.installed_distributions()
    names = {p.split("==")[0].lower().replace("_", "-") for p in packages}
    every = {
        d.metadata["Name"].lower().replace("_", "-")
        for d in metadata.distributions()
        if d.metadata["Name"]
    }
    assert names == every and len(packages) == len(names)
    assert f"keras=={metadata.version('keras')}" in packages
    assert environment.environment().packages == packages


# -- a training with secrets in its command line, environment and hyperparameters -----
CHILD = """
import json, shutil, sys
import keras, numpy as np
from provkb.capture.callback import ProvenanceCallback

with open(sys.argv[2]) as handle:
    hyperparameters = json.load(handle)

keras.utils.set_random_seed(1)
x = np.random.default_rng(1).normal(size=(64, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
cb = ProvenanceCallback(
    experiment="secrets",
    hyperparameters=hyperparameters,
)
model.fit(x, y, epochs=2, batch_size=32, callbacks=[cb], verbose=0)
assert cb.writer.flush(60)
shutil.copy(cb.writer.journal.path, sys.argv[1])  # what the journal held
print(cb.run_id)
"""


def _child_env(store: Store, tmp_path: Path, secrets: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVKB_")}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    settings = store.settings
    if settings.embedded:
        env["PROVKB_HOME"] = str(settings.home)
    else:
        env["PROVKB_HOME"] = str(tmp_path / "home")
        env["PROVKB_URI"] = str(settings.uri)
        env["PROVKB_USER"] = settings.user
        env["PROVKB_PASSWORD"] = settings.password or ""
        if settings.database:
            env["PROVKB_DATABASE"] = settings.database
    env.update(
        MY_API_KEY=secrets["env_key"],
        GITHUB_TOKEN=secrets["github"],
        DEPLOY_NOTE=f"uses {secrets['aws']}",
        URL_VALUE=f"https://ada:{secrets['url']}@example.org/v1",
        PROVKB_TEST_PLAIN="plain-value",
        LS_COLORS="rs=0:di=01;34",
    )
    return env


def test_secrets_reach_neither_the_journal_nor_the_kb_nor_exports(
    store: Store, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    secrets = {
        "sk": f"sk-abc123{tag}",
        "token": f"xyz{tag[:16]}",
        "env_key": f"env-secret-{tag[:12]}",
        "github": f"ghp_{tag}abcd",
        "aws": f"AKIA{tag[:16].upper()}",
        "hp": f"hp-secret-{tag[:12]}",
        "url": f"urlpw{tag[:10]}",
    }
    script = tmp_path / "train_with_secrets.py"
    script.write_text(textwrap.dedent(CHILD))
    journal_copy = tmp_path / "journal-copy.jsonl"
    hyperparameters = tmp_path / "hyperparameters.json"
    hyperparameters.write_text(
        json.dumps(
            {"api_key": secrets["hp"], "endpoint": f"https://ada:{secrets['url']}@example.org/v1"}
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            str(journal_copy),
            str(hyperparameters),
            "--api-key",
            secrets["sk"],
            f"--token={secrets['token']}",
        ],
        env=_child_env(store, tmp_path, secrets),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.strip().splitlines()[-1]

    def leaked(text: str) -> list[str]:
        return [name for name, secret in secrets.items() if secret in text]

    assert leaked(journal_copy.read_text()) == []
    nodes = store.execute("MATCH (n) RETURN properties(n) AS p")
    edges = store.execute("MATCH ()-[r]->() RETURN properties(r) AS p")
    assert any(row["p"].get("runId") == run_id for row in nodes)
    assert leaked(json.dumps([r["p"] for r in nodes + edges], default=str)) == []
    for fmt in EXPORT_FORMATS:
        out = io.StringIO()
        export(store, fmt, out, run_id=run_id)
        assert leaked(out.getvalue()) == [], fmt

    run = store.execute(f"MATCH (r:{RUN} {{runId: $id}}) RETURN r.commandLine AS c", id=run_id)
    command = run[0]["c"]
    assert f"--api-key '{REDACTED}'" in command and f"'--token={REDACTED}'" in command
    assert str(journal_copy) in command  # the rest stays verbatim
    hps = store.execute(
        f"MATCH (h:{HP} {{runId: $id}}) WHERE h.name IN ['api_key', 'endpoint'] "
        "RETURN h.name AS name, h.value AS value ORDER BY name",
        id=run_id,
    )
    assert hps == [
        {"name": "api_key", "value": REDACTED},
        {"name": "endpoint", "value": f"https://ada:{REDACTED}@example.org/v1"},
    ]
    env = store.execute(
        f"MATCH (:{RUN} {{runId: $id}})-[:{USED}]->(e:{ENV}) RETURN properties(e) AS p",
        id=run_id,
    )[0]["p"]
    variables = env[o.Prop.ENVIRONMENT_VARIABLES]
    for expected in (
        f"MY_API_KEY={REDACTED}",
        f"GITHUB_TOKEN={REDACTED}",
        f"DEPLOY_NOTE=uses {REDACTED}",
        f"URL_VALUE=https://ada:{REDACTED}@example.org/v1",
        "PROVKB_TEST_PLAIN=plain-value",
    ):
        assert expected in variables
    assert not any(v.startswith("LS_COLORS=") for v in variables)
    packages = env[o.Prop.PACKAGES]
    assert f"keras=={metadata.version('keras')}" in packages
    assert f"rdflib=={metadata.version('rdflib')}" in packages  # not a fixed list of 15
    assert len(packages) > 100
