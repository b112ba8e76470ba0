"""ProvKB's Streamlit app: the entry point `provkb ui` runs (`streamlit run` of this file).

Pages are the `page_*.py` files beside it, registered with `st.navigation`.
"""

from __future__ import annotations

import streamlit as st

from provkb.ui import common

st.set_page_config(page_title="ProvKB", page_icon=":material/account_tree:", layout="wide")

OVERVIEW = "page_overview.py"


def _home() -> None:
    """The app's root URL opens the Overview at its own URL, `/overview` (Streamlit
    serves its default page at `/` only, so a default Overview had no URL of its own)."""
    st.switch_page(OVERVIEW, query_params=st.query_params.to_dict())


PAGES = [
    st.Page(_home, title="Overview", url_path="home", default=True, visibility="hidden"),
    st.Page(OVERVIEW, title="Overview", icon=":material/dashboard:", url_path="overview"),
    st.Page(
        "page_monitor.py", title="Run monitor", icon=":material/monitoring:", url_path="monitor"
    ),
    st.Page("page_study.py", title="Study", icon=":material/queue:", url_path="study"),
    st.Page(
        "page_compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"
    ),
    st.Page("page_lineage.py", title="Lineage", icon=":material/account_tree:", url_path="lineage"),
    st.Page(
        "page_queries.py", title="Queries", icon=":material/manage_search:", url_path="queries"
    ),
    st.Page("page_builder.py", title="Query builder", icon=":material/tune:", url_path="builder"),
    st.Page("page_export.py", title="Export", icon=":material/download:", url_path="export"),
]

page = st.navigation(PAGES)
with st.sidebar:
    st.markdown("**ProvKB** · PROV provenance of Keras training")
common.sidebar()
page.run()
