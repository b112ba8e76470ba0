"""ProvKB benchmarks, side by side with MLflow and rdflib: `python -m benchmarks run [--quick]`.

Figures (see benchmarks/README in RESULTS.md): capture overhead, ingestion, query
latency, export/import throughput, metric logging and peak memory. Each module exposes
a `run(...)` returning plain, JSON-ready dicts; `report` writes RESULTS.md and
results.json from them.

Importing this package makes sure `provkb` is the checkout the benchmarks live in
(see `_bootstrap`), so that what is measured is this code.
"""

from . import _bootstrap

_bootstrap.use_this_checkout()
