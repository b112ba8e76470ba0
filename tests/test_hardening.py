"""Bad and odd input: property-based round trips, long and unicode names, hostile
imports, credentials that never leak, loopback-only binding, steering that survives
a restart."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from builders import RunBuilder, ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prov.model import ProvDocument

from provkb import ontology as o
from provkb.config import resolve_settings
from provkb.errors import ConfigError, ExportError, ProvImportError
from provkb.kb import export, provimport
from provkb.kb.embedded import EmbeddedServer
from provkb.kb.records import GraphBatch, encode_value
from provkb.kb.steering import PENDING, Steering
from provkb.kb.store import Store

DB_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(min_size=0, max_size=200)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
primitive = st.one_of(text, finite, ints, st.booleans())
value = st.one_of(
    primitive,
    st.floats(width=64),  # NaN and infinities too
    st.lists(text, min_size=1, max_size=5),
    st.lists(finite, min_size=1, max_size=5),
    st.lists(ints, min_size=1, max_size=5),
)
prop_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: n not in ("id",)
)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


@DB_SETTINGS
@given(props=st.dictionaries(prop_names, value, min_size=1, max_size=6))
def test_any_property_value_survives_the_store(store: Store, props: dict) -> None:
    node_id = f"provkb:prop/{uuid.uuid4().hex}"
    batch = GraphBatch()
    batch.add_node(node_id, o.ENTITY, **props)
    store.write(batch)
    stored = store.read("MATCH (n:Entity {id: $id}) RETURN properties(n) AS p", id=node_id).rows[0][
        "p"
    ]
    for key, original in props.items():
        assert _same(stored[key], encode_value(original)), key


element_ids = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
attr_values = st.one_of(st.text(max_size=40), finite, st.integers(-(10**9), 10**9), st.booleans())


@st.composite
def small_graphs(draw) -> GraphBatch:
    batch = GraphBatch()
    entities = sorted(draw(st.sets(element_ids, min_size=1, max_size=5)))
    activities = sorted(draw(st.sets(element_ids, min_size=1, max_size=3)))
    for name in entities:
        attrs = draw(st.dictionaries(prop_names, attr_values, max_size=3))
        batch.add_node(f"provkb:e/{name}", o.ENTITY, **attrs)
    for name in activities:
        subtype = draw(st.sampled_from([(), (o.EPOCH,), (o.TRAINING_RUN,)]))
        batch.add_node(f"provkb:a/{name}", o.ACTIVITY, *subtype, runId=name)
    for entity in entities:
        activity = draw(st.sampled_from(activities))
        relation = draw(st.sampled_from([o.USED, o.WAS_GENERATED_BY]))
        if relation is o.USED:
            batch.add_edge(o.USED, f"provkb:a/{activity}", f"provkb:e/{entity}")
        else:
            batch.add_edge(o.WAS_GENERATED_BY, f"provkb:e/{entity}", f"provkb:a/{activity}")
    return batch


@DB_SETTINGS
@given(graph=small_graphs())
def test_export_import_round_trip_is_exact(clean_store: Store, graph: GraphBatch) -> None:
    clean_store.clear()
    clean_store.write(graph)
    first = export.build_document(clean_store)
    for fmt in ("json", "rdf"):
        options = {"rdf_format": "turtle"} if fmt == "rdf" else {}
        text = first.serialize(format=fmt, **options)
        clean_store.clear()
        provimport.import_document(
            clean_store, ProvDocument.deserialize(content=text, format=fmt, **options)
        )
        assert export.build_document(clean_store) == first, fmt


def test_long_and_unicode_names(store: Store) -> None:
    long_name = "ε-greedy 学习率 " * 400  # ~5,600 characters
    node_id = f"provkb:run/{uuid.uuid4().hex[:12]}/hp/{'x' * 2000}/v1"
    batch = GraphBatch()
    batch.add_node(node_id, o.ENTITY, o.HYPERPARAMETER, name=long_name, value="🚀" * 1000)
    store.write(batch)
    store.write(batch)
    rows = store.read(
        "MATCH (h:Hyperparameter {id: $id}) RETURN h.name AS n, h.value AS v", id=node_id
    ).rows
    assert rows == [{"n": long_name, "v": "🚀" * 1000}]


def _counts(store: Store) -> dict:
    return store.counts()


def test_deeply_nested_and_oversized_imports_are_refused(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _counts(store)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ProvImportError, match="not a valid"):
        provimport.import_file(store, deep)
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps({"entity": {"ex:e": {"prov:type": {"$": [1] * 3, "x": 2}}}}))
    with pytest.raises(ProvImportError):
        provimport.import_file(store, hostile)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"entity": {f"ex:e{i}": {} for i in range(40_000)}}))
    monkeypatch.setenv("PROVKB_MAX_IMPORT_MB", "0.5")
    with pytest.raises(ProvImportError, match="over the import limit"):
        provimport.import_file(store, big)
    assert _counts(store) == before


def test_config_file_with_password_must_be_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[store]\nuri = "bolt://db:7687"\npassword = "s3cret-value"\n')
    config.chmod(0o644)
    monkeypatch.setenv("PROVKB_CONFIG", str(config))
    monkeypatch.delenv("PROVKB_URI", raising=False)
    with pytest.raises(ConfigError, match="chmod 600"):
        resolve_settings()
    config.chmod(0o600)
    settings_ = resolve_settings()
    assert settings_.uri == "bolt://db:7687" and settings_.password == "s3cret-value"
    assert "s3cret-value" not in repr(settings_) and "s3cret-value" not in settings_.describe()


def test_credentials_never_printed_and_server_binds_loopback_only(embedded_home: Path) -> None:
    password = json.loads((embedded_home / "credentials.json").read_text())["password"]
    out = subprocess.run(
        [sys.executable, "-m", "provkb", "server", "status", "--store", str(embedded_home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "CPU priority: " in out.stdout
    assert password not in out.stdout + out.stderr
    assert password not in (embedded_home / "server.log").read_text(errors="replace")

    info = EmbeddedServer(embedded_home).status()
    assert info is not None and info.host == "127.0.0.1"
    listening = _listening_addresses()
    for port in (info.bolt_port, info.http_port, info.control_port):
        assert listening.get(port) == {"127.0.0.1"}, port


def _listening_addresses() -> dict[int, set[str]]:
    """Local addresses of listening TCP sockets, from /proc/net/tcp (IPv4)."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            if len(address) == 32 and address.startswith("0" * 16 + "FFFF0000"):
                address = address[24:]  # an IPv4-mapped IPv6 address: the IPv4 part
            if len(address) == 8:
                host = ".".join(str(b) for b in bytes.fromhex(address)[::-1])
            else:
                host = "::" if set(address) == {"0"} else address
            found.setdefault(int(port, 16), set()).add(host)
    return found


def test_pending_steering_requests_survive_a_server_restart(tmp_path: Path) -> None:
    home = tmp_path / "kb"
    server = EmbeddedServer(home)
    server.ensure_running()
    store = Store(resolve_settings(store=home))
    try:
        run = uuid.uuid4().hex[:12]
        RunBuilder(run).write(store)  # a running run
        request = Steering(store).submit(run, "note", note="look at epoch 3")
        server.stop()
        server.ensure_running()
        assert Steering(store).get(request.request_id).status == PENDING
        assert [r.request_id for r in Steering(store).claim(run, "after-restart")] == [
            request.request_id
        ]
    finally:
        store.close()
        server.stop()


def test_export_to_stream_and_unknown_run(store: Store) -> None:
    run = RunBuilder(uuid.uuid4().hex[:12]).epoch(1, {"loss": 0.5}).finish().write(store)
    buffer = io.StringIO()
    export.export(store, "provjson", buffer, run_id=run.run.run_id)
    document = json.loads(buffer.getvalue())
    assert run.node in document["activity"]
    assert ids.epoch(run.run.run_id, 1) in document["activity"]
    empty = io.StringIO()
    with pytest.raises(ExportError, match="unknown run 'no-such-run': no training run has"):
        export.export(store, "provjson", empty, run_id="no-such-run")
    assert empty.getvalue() == ""  # nothing half-written
