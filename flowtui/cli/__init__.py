"""The scriptable command line: thin typer commands over flowtui.core.

Each command group lives in its own module and registers itself on `app` here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="flowtui",
    help="Music recommendation on DSG17-format streaming logs. With no command, opens the terminal app.",
    no_args_is_help=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Music recommendation on DSG17-format streaming logs. With no command, opens the app on the sample."""
    if ctx.invoked_subcommand is None:
        from flowtui.cli.tui_cmd import open_app

        open_app()


def _register() -> None:
    import importlib

    # Each module adds its commands to `app`; a module that is not written yet is skipped.
    for name in ("data", "synth_cmd", "models", "recs", "tui_cmd"):
        try:
            importlib.import_module(f"flowtui.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"flowtui.cli.{name}":
                raise


_register()
from flowtui.cli.common import data_app  # noqa: E402

app.add_typer(data_app, name="data")


def main() -> None:
    """Console-script entry point."""
    app()
