"""prov's shipped corpus through ProvKB (a fixed sample of >= 150 documents over every
format): import into an emptied store, export in the same format, compare with prov.
The whole corpus: `python -m tests.prov_corpus` (see there)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from provkb.kb.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.prov_corpus import corpus_files, prov_reads, report, run, sample  # noqa: E402

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
    equal = sum(o.status == "equal" for o in outcomes)
    # the one known difference of the whole corpus is not in the sample: see docs/graph-model.md
    assert equal == len(outcomes), (
        lines
        + "\n"
        + "\n".join(
            f"{o.status} {o.path.name}: {o.reason}" for o in outcomes if o.status != "equal"
        )
    )
