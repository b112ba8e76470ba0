"""ProvKB's Streamlit app (`provkb ui`): `app.py` is the entry point, `page_*.py` the pages,
`data.py` what pages load (the reads of `provkb.queries.app` through `KnowledgeBase`),
`common.py` the cached knowledge base and error handling, `charts.py`, `graph.py` and
`series.py` the figures. Nothing here holds Cypher or imports `capture/`."""
