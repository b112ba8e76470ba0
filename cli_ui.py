"""`provkb ui`: the Streamlit app (registered on the main app by `register`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from .cli_options import StoreOpt, err_console, fail
from .knowledge_base import KnowledgeBase

APP = Path(__file__).resolve().parent / "ui" / "app.py"
ENV_EMBEDDED = "PROVKB_UI_EMBEDDED"  # read by ui.common.settings


def ui_environment(settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the Streamlit process: the store settings, resolved here."""
    env = dict(os.environ if base is None else base)
    env["PROVKB_HOME"] = str(settings.home)
    for key in ("PROVKB_URI", "PROVKB_USER", "PROVKB_PASSWORD", "PROVKB_DATABASE", ENV_EMBEDDED):
        env.pop(key, None)
    if settings.embedded:
        env[ENV_EMBEDDED] = "1"
    else:
        env["PROVKB_URI"] = settings.uri
        env["PROVKB_USER"] = settings.user
        if settings.password is not None:
            env["PROVKB_PASSWORD"] = settings.password
        if settings.database:
            env["PROVKB_DATABASE"] = settings.database
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
        "--client.showErrorDetails",
        "none",
    ]


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("ui")
    def ui_cmd(
        store: StoreOpt = None,
        port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
        host: Annotated[
            str, typer.Option("--host", help="Address to bind (0.0.0.0: every interface).")
        ] = "127.0.0.1",
    ) -> None:
        """Open the app: monitor and steer runs, studies, compare, lineage, queries, export."""
        from .errors import ProvKBError

        kb = KnowledgeBase(store)
        try:
            settings = kb.settings
            if settings.embedded:
                err_console.print(f"[dim]embedded store in {settings.home} ...[/]")
                kb.start_server()
        except ProvKBError as exc:
            raise fail(exc) from exc
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        err_console.print(
            f"ProvKB app for the {settings.describe()}: [bold]http://{shown}:{port}[/] "
            "(Ctrl+C stops it)"
        )
        process = subprocess.Popen(streamlit_command(host, port), env=ui_environment(settings))
        # Stopping `provkb ui` (Ctrl+C, SIGTERM) stops the app with it.
        signal.signal(signal.SIGTERM, lambda *_: process.terminate())
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.terminate()
            try:
                code = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        raise typer.Exit(0 if code in (0, -15) else code)
