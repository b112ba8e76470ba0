"""Export and import throughput (PROV-JSON, Turtle) against rdflib on the same triples.

For a scope (one experiment, or the whole knowledge base) and a format:

* export: `kb.export.export(store, fmt, file, experiment=...)`, i.e. reading the graph,
  building the PROV document and serializing it (PROV-JSON by `prov`, Turtle by prov's
  PROV-O encoder and rdflib), timed as a whole, as `provkb export` runs it;
* import: `kb.provimport.import_file(target, file)` into an empty store of the same
  engine (a fresh embedded store; a second Neo4j server, emptied before each import)
  (parsing, checking, one all-or-nothing write), timed as a whole;
* baseline: rdflib alone on the same triples, the exported PROV-O graph (the Turtle
  file): parsing it, and serializing the parsed graph back to Turtle, timed separately.

Throughput is PROV records (elements plus relations of the document) per second; the
baseline also in triples per second. Each task runs in a child process
(`python -m benchmarks.export_import TASK`) under a time limit and a shared budget,
so a scope that does not finish in time is reported as such instead of stalling the
run; `in_process=True` (smoke tests) runs the tasks here without limits. Every format
builds the same PROV document first, so when one format's export does not finish in
time the scope's other formats are skipped.
"""

from __future__ import annotations

import gc
import json
import selectors
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .common import log, ratio, stats
from .engines import EmbeddedTargets, Target, as_target

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("provjson", "turtle")


@dataclass
class ExportConfig:
    repeats: int = 3
    repeats_kb: int = 1
    task_timeout: float = 300.0  # seconds one task (all its repeats) may take
    budget: float = 900.0  # seconds for the whole section
    kb_formats: tuple[str, ...] = FORMATS


# -- tasks (run in a child process, or here) -------------------------------------------
def _emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def _store(target: dict[str, Any] | str):
    """A connected store of a task's target (`engines.Target.to_json()`, or a folder)."""
    return as_target(target).store().connect()


def task_export(spec: dict[str, Any], emit=_emit) -> None:
    """Timed exports; then, for Turtle, rdflib's own timings on the exported graph."""
    from provkb.kb import export as kb_export

    store = _store(spec["store"])
    path = Path(spec["path"])
    for _ in range(spec["repeats"]):
        gc.collect()
        t0 = time.perf_counter()
        records = kb_export.export(store, spec["fmt"], path, experiment=spec.get("experiment"))
        emit(
            {
                "event": "export",
                "seconds": time.perf_counter() - t0,
                "records": records,
                "bytes": path.stat().st_size,
            }
        )
    if spec.get("baseline"):
        baseline(path, spec["repeats"], emit)


def task_import(spec: dict[str, Any], emit=_emit) -> None:
    from provkb.kb import provimport

    target = _store(spec["target"])
    gc.collect()
    t0 = time.perf_counter()
    report = provimport.import_file(target, spec["path"])
    emit({"event": "import", "seconds": time.perf_counter() - t0, "records": report.records})


def baseline(path: Path, repeats: int, emit=_emit) -> None:
    """rdflib alone on the exported PROV-O graph: parse the file, serialize it back."""
    import rdflib

    text = path.read_text(encoding="utf-8")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        graph = rdflib.Dataset(default_union=True)
        graph.parse(data=text, format="turtle")
        emit({"event": "parse", "seconds": time.perf_counter() - t0, "triples": len(graph)})
        gc.collect()
        t0 = time.perf_counter()
        graph.serialize(format="turtle")
        emit({"event": "serialize", "seconds": time.perf_counter() - t0})
        del graph


TASKS = {"export": task_export, "import": task_import}


def _run_task(spec: dict[str, Any], timeout: float, in_process: bool) -> dict[str, Any]:
    """Events of one task, and whether it finished (`timed_out`, `error` otherwise)."""
    events: list[dict[str, Any]] = []
    if in_process:
        TASKS[spec["task"]](spec, emit=events.append)
        return {"events": events, "finished": True}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.export_import", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None
    selector.register(proc.stdout, selectors.EVENT_READ)
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if not selector.select(timeout=min(remaining, 1.0)):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            events.append(json.loads(line))
    selector.close()
    if timed_out:
        proc.kill()
    proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    out: dict[str, Any] = {"events": events, "finished": not timed_out and proc.returncode == 0}
    if timed_out:
        out["timed_out_after"] = timeout
    elif proc.returncode != 0:
        out["error"] = "\n".join(stderr.strip().splitlines()[-6:])
    return out


# -- orchestration --------------------------------------------------------------------
def _secs(result: dict[str, Any], event: str) -> list[float]:
    return [e["seconds"] for e in result["events"] if e["event"] == event]


def _status(result: dict[str, Any]) -> str | None:
    if result.get("timed_out_after"):
        return f"did not finish within {result['timed_out_after']:.0f} s"
    return result.get("error")


def run_scope(
    kb: Target | Path,
    folder: Path,
    scope: str,
    experiment: str | None,
    repeats: int,
    formats: tuple[str, ...],
    cfg: ExportConfig,
    deadline: float,
    in_process: bool = False,
    targets: Any = None,
) -> dict[str, Any]:
    """Export and import in each format, and the rdflib baseline, for one scope; imports
    go to `targets.fresh(records)` (default: fresh embedded stores)."""
    from provkb.kb import export as kb_export

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"scope": scope, "experiment": experiment, "formats": {}}
    base: dict[str, Any] = {"status": "not run"}
    out["rdflib"] = base

    def budget() -> float:
        return max(0.0, min(cfg.task_timeout, deadline - time.monotonic()))

    records = None
    unfinished = ""
    own_targets = targets is None
    targets = EmbeddedTargets(folder) if targets is None else targets
    try:
        for fmt in formats:
            entry: dict[str, Any] = {}
            out["formats"][fmt] = entry
            path = folder / f"{scope}{kb_export.FORMATS[fmt].suffix}"
            if budget() <= 0:
                entry["export_status"] = entry["import_status"] = "skipped: time budget spent"
                continue
            if unfinished:
                entry["export_status"] = entry["import_status"] = (
                    f"skipped: {unfinished} (every format builds the same document first)"
                )
                continue
            task = {
                "task": "export",
                "store": as_target(kb).to_json(),
                "fmt": fmt,
                "path": str(path),
                "experiment": experiment,
                "repeats": repeats,
                "baseline": fmt == "turtle",  # rdflib on the exported graph
            }
            res = _run_task(task, budget(), in_process)
            exported = [e for e in res["events"] if e["event"] == "export"]
            secs = [e["seconds"] for e in exported]
            if exported:
                records = exported[-1]["records"]
                entry["bytes"] = exported[-1]["bytes"]
            entry["export_seconds"] = stats(secs)
            entry["export_records_per_second"] = stats(
                [records / s for s in secs] if records else []
            )
            entry["export_status"] = None if len(exported) == repeats else _status(res)
            if res.get("timed_out_after") and not exported:
                entry["export_timed_out_after"] = res["timed_out_after"]
            if task["baseline"] and not exported:
                base["status"] = (
                    "not measured: the Turtle export (whose file it reads) did not finish"
                )
            if not exported:
                unfinished = f"the {fmt} export {entry['export_status']}"
            if task["baseline"] and exported:
                base.update(_baseline(res, repeats))
            shown = ", ".join(f"{s:.1f}s" for s in secs) or entry["export_status"]
            log(f"  {scope} {fmt} export: {shown}")
            import_secs: list[float] = []
            imported = None
            entry["import_status"] = None if exported else "no file to import"
            for _ in range(repeats if exported else 0):
                if budget() <= 0:
                    entry["import_status"] = "skipped: time budget spent"
                    break
                into = targets.fresh(records)
                if budget() <= 0:  # emptying or starting the target took the rest
                    entry["import_status"] = "skipped: time budget spent"
                    break
                res = _run_task(
                    {"task": "import", "target": into.to_json(), "path": str(path)},
                    budget(),
                    in_process,
                )
                import_secs += _secs(res, "import")
                for e in res["events"]:
                    imported = e.get("records", imported)
                if not res["finished"]:
                    entry["import_status"] = _status(res)
                    if res.get("timed_out_after") and not res["events"]:
                        entry["import_timed_out_after"] = res["timed_out_after"]
                    break
            shown = ", ".join(f"{s:.1f}s" for s in import_secs) or entry["import_status"]
            log(f"  {scope} {fmt} import: {shown}")
            entry["import_seconds"] = stats(import_secs)
            entry["imported_records"] = imported
            entry["import_records_per_second"] = stats(
                [imported / s for s in import_secs] if imported else []
            )
    finally:
        if own_targets:  # a caller's targets serve its other scopes too
            targets.close()
    out["records"] = records
    _rates(out)
    return out


def _baseline(res: dict[str, Any], repeats: int) -> dict[str, Any]:
    base: dict[str, Any] = {}
    for e in res["events"]:
        if e["event"] == "parse":
            base["triples"] = e["triples"]
    base["serialize_seconds"] = stats(_secs(res, "serialize"))
    base["parse_seconds"] = stats(_secs(res, "parse"))
    base["status"] = None if len(_secs(res, "serialize")) == repeats else _status(res)
    return base


def _rates(out: dict[str, Any]) -> None:
    records, base = out.get("records"), out["rdflib"]
    triples = base.get("triples")
    if base.get("status") == "not run":
        base["status"] = "not measured: there was no Turtle export"
    for entry in out["formats"].values():  # what an unfinished task was at most
        for what in ("export", "import"):
            limit = entry.get(f"{what}_timed_out_after")
            if limit and records:
                entry[f"{what}_records_per_second_below"] = records / limit
    for key, what in (("serialize", "serialize"), ("parse", "parse")):
        samples = (base.get(f"{key}_seconds") or {}).get("samples") or []
        base[f"{what}_records_per_second"] = stats(
            [records / s for s in samples] if records else []
        )
        base[f"{what}_triples_per_second"] = stats(
            [triples / s for s in samples] if triples else []
        )
    for entry in out["formats"].values():
        entry["export_vs_rdflib_serialize"] = ratio(
            (entry.get("export_records_per_second") or {}).get("median"),
            base["serialize_records_per_second"]["median"],
        )
        entry["import_vs_rdflib_parse"] = ratio(
            (entry.get("import_records_per_second") or {}).get("median"),
            base["parse_records_per_second"]["median"],
        )


def run(
    kb: Target | Path,
    folder: Path,
    experiment: str,
    cfg: ExportConfig | None = None,
    in_process: bool = False,
    targets: Any = None,
) -> dict[str, Any]:
    """One experiment, then the whole knowledge base (`kb`: an engine's store, or an
    embedded store folder), within the section's budget; imports into `targets`
    (`engines.Session.import_targets`; default: fresh embedded stores)."""
    cfg = cfg or ExportConfig()
    deadline = time.monotonic() + cfg.budget
    out: dict[str, Any] = {"config": asdict(cfg)}
    try:
        out["experiment"] = run_scope(
            kb, folder / "experiment", "experiment", experiment, cfg.repeats, FORMATS, cfg,
            deadline, in_process, targets,
        )  # fmt: skip
        out["kb"] = run_scope(
            kb, folder / "kb", "kb", None, cfg.repeats_kb, cfg.kb_formats, cfg, deadline,
            in_process, targets,
        )  # fmt: skip
    finally:
        if targets is not None:
            targets.close()
    return out


if __name__ == "__main__":
    task = json.loads(sys.argv[1])
    TASKS[task["task"]](task)
