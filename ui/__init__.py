"""ProvKB's Streamlit app (`provkb ui`): `app.py` is the entry point, `page_*.py` the pages,
`data.py` every read query of the app, `common.py` the cached store and error handling,
`charts.py`, `graph.py` and `series.py` the figures."""
