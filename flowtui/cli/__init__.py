"""The scriptable command line: thin typer commands over flowtui.core.

Each command group lives in its own module and registers itself on `app` here.
"""

from __future__ import annotations

import typer

from flowtui.cli.common import FlowGroup

app = typer.Typer(
    name="flowtui",
    cls=FlowGroup,
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


# Each module adds its commands to `app` when imported.
from flowtui.cli import data, models, recs, synth_cmd, tui_cmd, tune  # noqa: E402, F401
from flowtui.cli.common import data_app  # noqa: E402

app.add_typer(data_app, name="data")


def main() -> None:
    """Console-script entry point."""
    app()
