"""prov's shipped PROV corpus through ProvKB: import into an empty knowledge base, export
in the same format, compare with prov.

`python -m tests.prov_corpus [--store FOLDER | --uri bolt://...] [--sample] [--only FMT]`
runs the whole corpus (or the CI sample) and prints, per format, how many documents
were tried (prov itself reads them), imported, came back equal, and why the others were
refused or changed. tests/test_prov_corpus.py runs the fixed sample on both engines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import prov
import rdflib
from prov.model import ProvDocument
from rdflib.compare import isomorphic
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

from provkb.errors import ProvImportError, ProvKBError
from provkb.kb import formats
from provkb.kb.export import build_document, render
from provkb.kb.prov_rdf import drop_shortcuts
from provkb.kb.provimport import import_document
from provkb.kb.store import Store

CORPUS = Path(prov.__file__).resolve().parent / "tests"
# corpus folder -> (glob, format name by extension)
FOLDERS = ("json", "rdf", "xml", "provn", "jsonld")


@dataclass(frozen=True)
class Outcome:
    """What happened to one document."""

    path: Path
    fmt: str
    status: str  # equal | changed | refused | export-failed
    reason: str = ""
    rdf: str = ""  # RDF formats: isomorphic | differs (rdflib graphs, see `rdf_isomorphic`)


def corpus_files() -> list[tuple[str, Path]]:
    """Every corpus document with its format, in a stable order."""
    out: list[tuple[str, Path]] = []
    for folder in FOLDERS:
        for path in sorted((CORPUS / folder).rglob("*")):
            if not path.is_file():
                continue
            ext = path.suffix.lower()
            if folder == "jsonld" and ext == ".jsonld":
                out.append(("provjsonld", path))
            elif folder != "jsonld" and ext in (".json", ".ttl", ".trig", ".xml", ".provn"):
                out.append((formats.for_path(path).name, path))
    return out


def sample(files: list[tuple[str, Path]], per_format: int = 45) -> list[tuple[str, Path]]:
    """A fixed spread: every n-th document of each format, up to `per_format` each."""
    by_format: dict[str, list[tuple[str, Path]]] = {}
    for fmt, path in files:
        by_format.setdefault(fmt, []).append((fmt, path))
    out: list[tuple[str, Path]] = []
    for items in by_format.values():
        step = max(1, len(items) // per_format)
        out += items[::step][:per_format]
    return out


def prov_reads(fmt: str, path: Path) -> ProvDocument | None:
    """The document as prov reads it, or None if prov itself cannot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return formats.import_format(fmt).reader(path.read_text(encoding="utf-8"))
    except Exception:
        return None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160]


def check(store: Store, fmt: str, path: Path, doc: ProvDocument) -> Outcome:
    """Import `doc` into the emptied store, export it as `fmt`, compare with prov."""
    store.clear()
    spec = formats.import_format(fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import_document(store, doc, fmt)
        except ProvImportError as exc:
            return Outcome(path, fmt, "refused", _reason(exc))
        try:
            text = render(build_document(store), fmt)
            back = spec.reader(text if isinstance(text, str) else text.decode())
        except (ProvKBError, Exception) as exc:  # noqa: BLE001 - counted, reported
            return Outcome(path, fmt, "export-failed", f"{type(exc).__name__}: {_reason(exc)}")
    rdf = ""
    if spec.family == "rdf":
        rdf = "isomorphic" if rdf_isomorphic(text, doc, RDF_FORMATS[fmt]) else "differs"
    want, got = normalised(doc), normalised(back)
    if want == got:
        return Outcome(path, fmt, "equal", rdf=rdf)
    return Outcome(path, fmt, "changed", _difference(want, got), rdf=rdf)


RDF_FORMATS = {"turtle": "turtle", "trig": "trig", "jsonld": "json-ld"}  # rdflib's names


def _rdf_graphs(text: str, rdf_format: str) -> dict[str, rdflib.Graph]:
    """The graphs of an RDF text by name (default and named graphs: TriG bundles),
    without the unqualified shortcuts ProvKB adds (`drop_shortcuts`)."""
    dataset = rdflib.Dataset(default_union=True)
    dataset.parse(data=text, format=rdf_format)
    drop_shortcuts(dataset)
    graphs: dict[str, rdflib.Graph] = {}
    for s, p, o, context in dataset.quads((None, None, None, None)):
        name = getattr(context, "identifier", context)
        key = "" if name in (None, DATASET_DEFAULT_GRAPH_ID) else str(name)
        graphs.setdefault(key, rdflib.Graph()).add((s, p, o))
    return graphs


def rdf_isomorphic(exported: str, doc: ProvDocument, rdf_format: str) -> bool:
    """ProvKB's PROV-O export of an imported document against prov's own serialization
    of the same document: isomorphic rdflib graphs once ProvKB's shortcuts are removed."""
    theirs = doc.serialize(format="rdf", rdf_format=rdf_format)
    ours, prov_own = _rdf_graphs(exported, rdf_format), _rdf_graphs(theirs, rdf_format)
    return set(ours) == set(prov_own) and all(isomorphic(ours[k], prov_own[k]) for k in ours)


def normalised(doc: ProvDocument) -> ProvDocument:
    """prov's own normal form (`unified()`), or the document itself where prov cannot
    unify it (conflicting descriptions, allowed by PROV-DM: "scruffy" documents)."""
    try:
        return doc.unified()
    except Exception:  # noqa: BLE001 - prov's unification errors
        return doc


def _difference(want: ProvDocument, got: ProvDocument) -> str:
    if want.has_bundles() != got.has_bundles() or len(list(want.bundles)) != len(list(got.bundles)):
        return "bundles differ"
    a, b = set(want.get_records()), set(got.get_records())
    missing = [r for r in a if not any(r == s for s in b)]
    extra = [r for r in b if not any(r == s for s in a)]
    if missing:
        return f"lost or changed: {missing[0].get_provn()[:140]}"
    if extra:
        return f"added: {extra[0].get_provn()[:140]}"
    return "records differ inside bundles"


def run(store: Store, files: Iterable[tuple[str, Path]]) -> list[Outcome]:
    """Check every document prov reads (the others are not tried)."""
    outcomes: list[Outcome] = []
    for fmt, path in files:
        doc = prov_reads(fmt, path)
        if doc is not None:
            outcomes.append(check(store, fmt, path, doc))
    return outcomes


def report(outcomes: list[Outcome], total: int) -> list[str]:
    """Counts per format and the reasons of the others."""
    lines = [f"{total} corpus documents, {len(outcomes)} read by prov (tried)"]
    lines.append(f"{'format':<12}{'tried':>7}{'imported':>10}{'equal':>7}{'refused':>9}")
    by_format: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_format.setdefault(o.fmt, []).append(o)
    for fmt, items in [*sorted(by_format.items()), ("all", outcomes)]:
        counts = Counter(o.status for o in items)
        imported = len(items) - counts["refused"]
        lines.append(
            f"{fmt:<12}{len(items):>7}{imported:>10}{counts['equal']:>7}{counts['refused']:>9}"
        )
    rdf = [o for o in outcomes if o.rdf]
    iso = sum(o.rdf == "isomorphic" for o in rdf)
    lines.append(f"RDF graphs (rdflib isomorphic with prov's serialization): {iso}/{len(rdf)}")
    reasons = Counter((o.status, o.reason.split(":")[0][:90]) for o in outcomes if o.reason)
    lines += [f"  {n:>4} {status}: {why}" for (status, why), n in reasons.most_common(40)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="embedded store folder (default: a temporary one)")
    parser.add_argument("--uri", help="a Neo4j bolt:// address (NEO4J_PASSWORD from env)")
    parser.add_argument("--sample", action="store_true", help="only the CI sample")
    parser.add_argument("--only", help="only this format")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every failure")
    args = parser.parse_args(argv)
    from provkb.config import resolve_settings

    if args.uri:
        settings = resolve_settings(
            uri=args.uri, user="neo4j", password=os.environ.get("NEO4J_PASSWORD", "")
        )
    else:
        import tempfile

        folder = args.store or tempfile.mkdtemp(prefix="provkb-corpus-")
        settings = resolve_settings(store=folder)
    files = corpus_files()
    chosen = sample(files) if args.sample else files
    if args.only:
        chosen = [(f, p) for f, p in chosen if f == args.only]
    started = time.monotonic()
    with Store(settings).connect() as store:
        outcomes = run(store, chosen)
        store.clear()
        if not args.uri:
            from provkb.kb.embedded import EmbeddedServer

            store.close()
            EmbeddedServer(settings.home).stop()
    for line in report(outcomes, len(chosen)):
        print(line)
    if args.verbose:
        for o in outcomes:
            if o.status != "equal":
                print(f"{o.status:<14}{o.path.relative_to(CORPUS)}: {o.reason}")
            if o.rdf == "differs":
                print(f"rdf differs   {o.path.relative_to(CORPUS)}")
    print(f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
