"""`flowtui` (no command) and `flowtui tui`: open the terminal app."""

from __future__ import annotations

from pathlib import Path

import typer

from flowtui.cli import app


def open_app(train: Path | None = None, test: Path | None = None, models: Path | None = None) -> None:
    """Run the Textual app on the given files (the bundled sample when none) until the user quits."""
    from flowtui.tui.app import make_app

    make_app(train, test, models).run()


@app.command("tui")
def tui(
    data: Path | None = typer.Option(
        None, "--data", "-d", help="Train file (CSV, CSV.gz or parquet); default: the bundled sample."
    ),
    test: Path | None = typer.Option(
        None, "--test", help="Test file, for submissions and per-user predictions."
    ),
    models: Path | None = typer.Option(
        None, "--models", "-m", help="Folder where trained models are saved (default ./models)."
    ),
) -> None:
    """Open the terminal app: load data, train and compare models, browse recommendations."""
    open_app(data, test, models)
