"""prov's shipped corpus through ProvKB (a fixed sample of >= 150 documents over every
format): import into an emptied store, export in the same format, compare with prov.
The whole corpus: `python -m tests.prov_corpus` (see there)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from prov.model import ProvDocument

from provkb.kb.prov_rdf import write_rdf
from provkb.kb.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.prov_corpus import (  # noqa: E402
    corpus_files,
    prov_reads,
    rdf_isomorphic,
    report,
    run,
    sample,
)

SAMPLE = sample(corpus_files())


def test_the_sample_covers_every_format() -> None:
    read = [(fmt, path) for fmt, path in SAMPLE if prov_reads(fmt, path) is not None]
    assert len(read) >= 150
    counts = Counter(fmt for fmt, _ in read)
    assert set(counts) == {"provjson", "provjsonld", "provn", "provxml", "turtle", "trig"}


def test_every_sampled_document_imports_and_comes_back_equal(clean_store: Store) -> None:
    outcomes = run(clean_store, SAMPLE)
    clean_store.clear()
    lines = "\n".join(report(outcomes, len(SAMPLE)))
    assert len(outcomes) >= 150, lines
    assert not [o for o in outcomes if o.status == "refused"], lines
    rdf = [o for o in outcomes if o.rdf]
    assert len(rdf) >= 40 and all(o.rdf == "isomorphic" for o in rdf), [
        o.path.name for o in rdf if o.rdf != "isomorphic"
    ]
    equal = sum(o.status == "equal" for o in outcomes)
    # the one known difference of the whole corpus is not in the sample: see docs/graph-model.md
    assert equal == len(outcomes), (
        lines
        + "\n"
        + "\n".join(
            f"{o.status} {o.path.name}: {o.reason}" for o in outcomes if o.status != "equal"
        )
    )


def test_rdf_comparison_allows_only_the_added_shortcuts() -> None:
    doc = ProvDocument()
    ex = doc.add_namespace("ex", "http://example.org/")
    doc.entity(ex["data"])
    doc.activity(ex["run"])
    doc.usage(ex["run"], ex["data"], other_attributes={ex["role"]: "train"})
    ours = write_rdf(doc, "turtle")  # with prov:used beside the qualified usage
    assert "prov:used" in ours and rdf_isomorphic(ours, doc, "turtle")
    other = ProvDocument()
    other.add_namespace(ex)
    other.entity(ex["data"])
    other.activity(ex["run"])
    other.usage(ex["run"], ex["data"], other_attributes={ex["role"]: "test"})
    assert not rdf_isomorphic(ours, other, "turtle")
