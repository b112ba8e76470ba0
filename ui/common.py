"""What every page shares: the store (cached), cached reads, error handling, formatting.

The store settings come from the environment `provkb ui` sets (`PROVKB_HOME`,
`PROVKB_URI`, ...; `PROVKB_UI_EMBEDDED=1` pins the embedded store in `PROVKB_HOME`
whatever a config file says). One `KnowledgeBase` per settings lives in
`st.cache_resource`; reads go through `load`, cached briefly with `st.cache_data` so
that many pages and reruns share them while live data still shows within seconds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable
from typing import Any

import streamlit as st

from ..config import Settings, resolve_settings
from ..errors import ProvKBError, StoreUnavailable
from ..kb.identity import default_person
from ..knowledge_base import KnowledgeBase
from ..ontology import RunStatus
from . import data

ENV_EMBEDDED = "PROVKB_UI_EMBEDDED"
LIVE_TTL = 2  # seconds: what a running training changes shows this fast
TTL = 15  # seconds: everything else
SELECTED_RUN = "selected_run"  # session key shared by pages (not a widget key)
SELECTED_NODE = "lineage_focus"

log = logging.getLogger("provkb.ui")

EMPTY_HINT = (
    "The knowledge base holds no training runs yet. Capture some: run `provkb demo` "
    "(three small Keras trainings, about a minute), or add "
    "`provkb.ProvenanceCallback(experiment=...)` to the callbacks of your own `model.fit`, "
    "then press **Refresh** in the sidebar."
)


def settings() -> Settings:
    """The store settings this app was started with."""
    if os.environ.get(ENV_EMBEDDED) == "1":
        return resolve_settings(store=os.environ.get("PROVKB_HOME") or None)
    return resolve_settings()


def store_key() -> str:
    s = settings()
    return f"{s.describe()}|{s.database}|{s.user}"


@st.cache_resource(show_spinner=False)
def _kb(key: str) -> KnowledgeBase:
    return KnowledgeBase(settings=settings())


def kb() -> KnowledgeBase:
    """The app's knowledge base (one driver per settings, shared by all sessions)."""
    return _kb(store_key())


# Streamlit shows the spinner only when a read takes over half a second: a store that is
# (re)starting, or busy beside a training; a quick read shows nothing. Every page reads
# `status_counts` first (has_runs), so a restart shows this, not an empty page.
READING = "Reading the knowledge base ... (a store that is starting or busy takes longer)"


@st.cache_data(ttl=TTL, show_spinner=READING, max_entries=512)
def _load(name: str, key: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(data, name)(_kb(key), *args, **kwargs)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False, max_entries=256)  # fragments: no flicker
def _load_live(name: str, key: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(data, name)(_kb(key), *args, **kwargs)


def load(name: str, *args: Any, live: bool = False, **kwargs: Any) -> Any:
    """`ui.data.<name>(kb, *args, **kwargs)`, cached (`live`: for a couple of seconds)."""
    return (_load_live if live else _load)(name, store_key(), *args, **kwargs)


def refresh() -> None:
    """Forget cached reads (the store connection stays)."""
    _load.clear()
    _load_live.clear()


# -- errors ----------------------------------------------------------------------------
def show_error(exc: BaseException) -> None:
    """A clear message for an error, never a traceback."""
    if isinstance(exc, StoreUnavailable):
        st.error(f"The knowledge base cannot be reached: {exc}")
        st.info(
            "Check that the store is running: `provkb server status` for the embedded "
            "store (`provkb server start` starts it), or the Neo4j server and the "
            "PROVKB_URI / PROVKB_USER / PROVKB_PASSWORD settings. Then press Refresh."
        )
    elif isinstance(exc, ProvKBError):  # QueryError, ReadOnlyViolation, ExportError, ...
        st.error(str(exc))
    else:
        log.exception("unexpected error in the ProvKB UI")
        st.error(f"Something went wrong: {type(exc).__name__}: {exc}")


def guarded(render: Callable[[], None]) -> Callable[[], None]:
    """Wrap a page or fragment body so errors show as messages.

    Streamlit's own control flow (rerun, stop, switch_page) derives from BaseException
    and passes through.
    """

    def wrapper() -> None:
        try:
            render()
        except Exception as exc:
            show_error(exc)

    wrapper.__name__ = getattr(render, "__name__", "page")
    wrapper.__doc__ = render.__doc__
    return wrapper


def run_page(render: Callable[[], None]) -> None:
    """Run a page body with error handling."""
    guarded(render)()


def has_runs() -> bool:
    """Whether the store holds any run; shows what to do next when it does not."""
    counts = load("status_counts")
    if not counts:
        st.info(EMPTY_HINT)
        return False
    return True


# -- formatting ------------------------------------------------------------------------
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d|Z)?$")


def fmt(value: Any, digits: int = 4) -> str:
    """A value for a table cell or caption."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.{digits}g}"
    if isinstance(value, str) and (m := _ISO.match(value)):
        return f"{m.group(1)} {m.group(2)}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def short_time(value: Any) -> str:
    return fmt(value)


SHORT_ID = 8  # characters of a run id shown in pickers


def short_id(run_id: Any) -> str:
    return str(run_id or "")[:SHORT_ID]


def run_label(row: dict[str, Any]) -> str:
    """`name · status · started 03-01 09:40 · short id` for selectors: runs with one
    name stay apart by their start time and id."""
    parts = [str(row.get("name") or "(unnamed)")]
    if row.get("status"):
        parts.append(str(row["status"]))
    started = fmt(row.get("startedAtTime"))
    if started:
        parts.append(f"started {started[5:16]}")
    parts.append(short_id(row.get("runId")))
    return " · ".join(parts)


def status_badge(status: str | None) -> str:
    colour = {
        RunStatus.RUNNING: "blue",
        RunStatus.COMPLETED: "green",
        RunStatus.STOPPED_EARLY: "orange",
        RunStatus.STOPPED: "orange",
        RunStatus.FAILED: "red",
        RunStatus.INTERRUPTED: "red",
    }.get(status or "", "gray")
    return f":{colour}-badge[{status or 'unknown'}]"


MISSING = ""  # what a table shows for a missing value (Streamlit's default: a grey "None")


def dataframe(data: Any, **kwargs: Any) -> Any:
    """`st.dataframe` whose missing cells are empty (in a column: `with column:`).

    A missing value of any column, numbers too, shows as `MISSING` through Streamlit's
    `placeholder`: the column keeps its type, so it still sorts as numbers and keeps
    its number format (`column_config`), unlike a column turned into text."""
    kwargs.setdefault("placeholder", MISSING)  # pyproject pins a Streamlit that has it
    return st.dataframe(data, **kwargs)


def cell_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Any:
    """Rows as a DataFrame with plain, displayable cells (lists/dicts as JSON text).

    A missing number stays missing (NaN): show the table with `dataframe`, which shows
    it as an empty cell; a text column's missing cells are empty text."""
    import pandas as pd

    columns = columns or sorted({k for r in rows for k in r})
    out = [{c: _cell(row.get(c)) for c in columns} for row in rows]
    for c in columns:  # a text column's missing cells are empty, not a grey "None"
        present = [r[c] for r in out if r[c] is not None]
        if present and all(isinstance(v, str) for v in present):
            for r in out:
                if r[c] is None:
                    r[c] = ""
    return pd.DataFrame(out, columns=columns)


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    if isinstance(value, str) and _ISO.match(value):
        return fmt(value)  # times to the second
    return value


def sidebar() -> None:
    """Store description and the refresh button (every page)."""
    with st.sidebar:
        st.caption(f"Knowledge base: {settings().describe()}")
        if st.button("Refresh", key="refresh", help="Read everything again from the store"):
            refresh()


def show_flash(key: str, scope: str | None = None) -> None:
    """The outcome (kind, message[, scope]) a form left under session `key`: shown once;
    or, given the `scope` it was left for (a study), shown on every rerun of that scope
    until the next outcome replaces it (a page refreshing itself keeps the message)."""
    flash = st.session_state.get(key) if scope is not None else st.session_state.pop(key, None)
    if flash and (scope is None or (len(flash) > 2 and flash[2] == scope)):
        (st.success if flash[0] == "success" else st.error)(flash[1])


def user_name() -> str:
    """The default person of steering requests and queue edits (`kb.identity`'s one
    rule: PROVKB_PERSON, else the OS user, else `unknown`)."""
    return default_person()
