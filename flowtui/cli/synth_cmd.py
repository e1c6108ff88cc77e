"""`flowtui data synth`: write a synthetic DSG17-like data set with known listen probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowtui.cli import common
from flowtui.core import events
from flowtui.core.errors import DataError


@common.data_app.command("synth")
def synth(
    *,
    users: Annotated[
        int, typer.Option("--users", "-n", min=1, help="Number of users (19918 = full DSG17 scale).")
    ] = 250,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same files.")] = 0,
    out: Annotated[Path, common.out_option("Folder for train.csv, test.csv, test_answers.csv.", "-o")],
    as_json: Annotated[bool, common.json_option("Print the summary as JSON, no progress bar.")] = False,
) -> None:
    """Generate train.csv, test.csv and test_answers.csv (sample_id,is_listened,p_true) into OUT."""
    from flowtui.core import safe_files
    from flowtui.core.data.reader import os_reason
    from flowtui.core.data.synth import synthesize

    hint = ["--out takes a folder; train.csv, test.csv and test_answers.csv go inside"]
    try:
        safe_files.check_output_dir(out)
    except DataError as err:
        common.fail(f"--out {err.one_line()}", hint)
    try:
        with common.progress_events(quiet=as_json) as on_event:
            summary = synthesize(users, seed, out, on_event=on_event)
    except events.Cancelled:
        common.fail("cancelled; no files were written")
    except DataError as err:
        common.fail_data(err)
    except OSError as exc:
        common.fail(f"--out {out}: cannot write: {os_reason(exc)}; no files were written")
    except ValueError as exc:
        common.fail(str(exc))
    if as_json:
        common.print_json(summary)
        return
    common.console.print(
        f"wrote {summary['rows']:,} train rows for {summary['users']:,} users and {summary['test_rows']:,} test rows "
        f"to {out} in {summary['seconds']:.1f}s",
        highlight=False,
    )
    common.console.print(
        f"listen rate {summary['listen_rate']:.3f}, Flow share {summary['flow_share']:.3f}, "
        f"oracle AUC {summary['oracle_auc']:.4f}",
        highlight=False,
    )
