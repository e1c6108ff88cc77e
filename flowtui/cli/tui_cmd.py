"""`flowtui` (no command) and `flowtui tui`: open the terminal app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowtui.cli import app
from flowtui.cli.common import data_option


def open_app(train: Path | None = None, test: Path | None = None, models: Path | None = None) -> None:
    """Run the Textual app on the given files (the bundled sample when none) until the user quits."""
    from flowtui.tui.app import make_app

    make_app(train, test, models).run()


@app.command("tui")
def tui(
    data: Annotated[Path | None, data_option("-d")] = None,
    test: Annotated[
        Path | None, typer.Option("--test", help="Test file, for submissions and per-user predictions.")
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option("--models", "-m", help="Folder where trained models are saved (default ./models)."),
    ] = None,
) -> None:
    """Open the terminal app: load data, train and compare models, browse recommendations."""
    open_app(data, test, models)
