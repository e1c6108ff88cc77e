"""The flowtui terminal app: a shell of seven screens over one shared state.

`make_app(...)` builds it (tests pass tiny data and a MockClock). Heavy libraries (torch, sklearn,
lightgbm, the engine's model modules) are imported only inside workers, so the first frame is fast.
The app remembers the last session's files and model settings (`settings.py`), offers every action in the
command palette, and on quit stops running work first (asking when a training run would be lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.clock import Clock
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from flowtui.tui import helpers, settings
from flowtui.tui.dialogs import AskDialog, ConfirmDialog
from flowtui.tui.layout import PAGES
from flowtui.tui.messages import DeviceFound, RecModelsFound, RegistryReady
from flowtui.tui.screens.base import FlowScreen, Page
from flowtui.tui.screens.help import HelpScreen
from flowtui.tui.state import AppState

#: How long quitting waits for running work to stop before the app exits anyway (seconds).
QUIT_WAIT = 1.5


class FlowApp(App[None]):
    """Load data, pick models, train, compare, and browse recommendations, all from the keyboard."""

    CSS_PATH = "app.tcss"
    TITLE = "flowtui"
    MODES = {page.mode: page.screen for page in PAGES}  # noqa: RUF012 (Textual reads these class attributes)
    DEFAULT_MODE = PAGES[0].mode
    BINDINGS = [  # noqa: RUF012
        *(Binding(p.key, f"goto('{p.mode}')", f"go to {p.label}", show=False) for p in PAGES),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding(
            "escape",
            "leave_field",
            "leave a text field (then single keys work)",
            show=False,
            key_display="esc",
        ),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    #: The screens, for the navigation line and the help (see `screens.base.FlowHost`).
    pages: tuple[Page, ...] = PAGES

    def __init__(self, state: AppState, remembered: settings.Remembered | None = None) -> None:
        super().__init__()
        self.state = state
        self._remembered = remembered or settings.Remembered()
        self._save_failed = False

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        for note in self.state.notes:
            self.notify(note, title="settings", severity="warning", timeout=10)
        self.state.notes.clear()
        self._start_up(self._remembered, self.state.models_dir)
        if self.state.device is None:
            self._probe_device()
        if self.state.settings_file is not None:
            self.set_interval(1.0, self.save_settings)

    # -- start-up work ------------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="startup")
    def _start_up(self, remembered: settings.Remembered, models_dir: Path) -> None:
        """Read the model registry, check the remembered settings against it, list the saved models."""
        from flowtui.core import registry

        specs = [registry.get_spec(n) for n in registry.model_names()]
        checked, notes = settings.check(remembered, {s.name: s for s in specs})
        self.post_message(RegistryReady(specs, checked, notes))
        self.post_message(RecModelsFound(*helpers.scan_models(models_dir)))

    @work(thread=True, exit_on_error=False, group="device")
    def _probe_device(self) -> None:
        """CPU or CUDA: torch is imported here, never before the first frame."""
        try:
            import torch
        except ImportError:
            self.post_message(DeviceFound("CPU (no torch)"))
            return
        self.post_message(DeviceFound("CUDA" if torch.cuda.is_available() else "CPU"))

    def on_registry_ready(self, message: RegistryReady) -> None:
        state = self.state
        state.specs = {s.name: s for s in message.specs}
        if message.checked is not None:
            checked = message.checked
            state.selected, state.params = checked.selected, checked.params
            state.preset, state.run_options = checked.preset, checked.run_options
            state.rec_model = state.rec_model or checked.rec_model
        for note in message.notes:
            self.notify(note, title="settings", severity="warning", timeout=10)
        self._refresh_screen()

    def on_rec_models_found(self, message: RecModelsFound) -> None:
        self.state.rec_models = message.names

    def on_device_found(self, message: DeviceFound) -> None:
        self.state.device = message.device
        self._refresh_screen()

    def _refresh_screen(self) -> None:
        """Let the screen in view redraw from the state (and its status line)."""
        base = self.screen_stack[0] if self.screen_stack else None
        if isinstance(base, FlowScreen) and base.is_mounted:  # else its on_mount reads the state
            base.refresh_from_state()
            base.refresh_status()

    # -- settings -----------------------------------------------------------------------------------------

    def save_settings(self) -> None:
        """Write the settings file when what it would hold changed (atomically; a failure is told once)."""
        state = self.state
        path = state.settings_file
        if path is None:
            return
        text = settings.dumps(settings.document(state, self._remembered))
        if text == state.settings_written:
            return
        try:
            settings.write(path, text, keep_old=bool(self._remembered.ignored))
        except OSError as exc:
            if not self._save_failed:
                self._save_failed = True
                self.notify(f"cannot save settings to {path}: {exc.strerror or exc}", severity="warning")
            return
        self._remembered.ignored = ""
        state.settings_written = text

    # -- navigation and help ------------------------------------------------------------------------------

    def action_goto(self, mode: str) -> None:
        """Show the screen of `mode`."""
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_leave_field(self) -> None:
        """Move focus out of a text field, so that single-key shortcuts work again."""
        from textual.widgets import Input

        if isinstance(self.focused, Input):
            self.screen.set_focus(None)

    def action_help(self) -> None:
        """Open the help screen (any key closes it)."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.BINDINGS, self.pages))

    async def on_page(self, mode: str, action: str) -> None:
        """Show the screen of `mode` and run one of its actions there (the palette's actions)."""
        await self.switch_mode(mode)
        screen = self.screen_stack[0]
        await screen.run_action(action)

    # -- the command palette ------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from self._navigation_commands()
        yield from self._training_commands()
        yield from self._recommendation_commands()

    def _navigation_commands(self) -> Iterable[SystemCommand]:
        """Every screen, the help, and loading the data."""
        for p in self.pages:
            yield SystemCommand(
                f"Go to {p.label}",
                f"Show the {p.label} screen (key {p.key})",
                partial(self.action_goto, p.mode),
            )
        yield SystemCommand("Help", "List every key", self.action_help)
        yield SystemCommand(
            "Load data",
            "Load and check the train/test files named on screen 1",
            partial(self.on_page, "data", "load"),
        )

    def _training_commands(self) -> Iterable[SystemCommand]:
        """Training the Flow models (and cancelling the run or one model), its chart, a submission."""
        yield SystemCommand(
            "Train the ticked models",
            "Holdout leaderboard, then final fits saved to the models folder",
            partial(self.on_page, "training", "train"),
        )
        run = self.state.run
        if run is not None and run.running():
            yield SystemCommand(
                "Cancel training", "Stop the whole run", partial(self.on_page, "training", "cancel")
            )
            for name in run.running():
                yield SystemCommand(
                    f"Cancel model {name}",
                    f"Stop {name} only; the other models go on",
                    partial(self.on_page, "training", f"cancel_model('{name}')"),
                )
        yield SystemCommand(
            "Training chart: next model",
            "Show the curves of all models, or of one model at a time (key v on screen 3)",
            partial(self.on_page, "training", "next_curves"),
        )
        yield SystemCommand(
            "Write a submission…",
            "With the model highlighted on the Results screen; asks for the file",
            partial(self.on_page, "results", "submission"),
        )

    def _recommendation_commands(self) -> Iterable[SystemCommand]:
        """The recommenders' leaderboard and training, recommending for a user, with a model, for all."""
        yield SystemCommand(
            "Recommendation leaderboard",
            "The ticked recommenders on the loaded data, as `flowtui evaluate-recs` (screen 7, key e)",
            partial(self.on_page, "recs", "evaluate"),
        )
        yield SystemCommand(
            "Train the ticked recommenders",
            "Fit them on all of the loaded data, saved to MODELS/recs (screen 7, key t)",
            partial(self.on_page, "recs", "train"),
        )
        yield SystemCommand(
            "Recommend for a user…",
            "Ask for a user id and open them on the Users screen",
            self.action_ask_user,
        )
        for name in self.state.rec_models:
            yield SystemCommand(
                f"Recommend with model {name}",
                "Use this saved model on the Users and New user screens",
                partial(self.action_use_model, name),
            )
        yield SystemCommand(
            "Export recommendations…",
            "Top 10 of every user with the chosen model, to a CSV file (asks for the file)",
            partial(self.on_page, "users", "export"),
        )

    def action_ask_user(self) -> None:
        """Ask for a user id, then open that user on the Users screen."""
        train = self.state.train
        if train is None:
            self.notify("load a data set first (screen 1)", severity="warning")
            return
        users = set(train.frame["user_id"].unique().tolist())

        def check(text: str) -> str:
            if not text.isdigit():
                return f"a user id is a whole number, got {text!r}"
            return "" if int(text) in users else f"user {text} is not in the loaded data"

        async def answer(text: str | None) -> None:
            if text:
                await self.on_page("users", f"open_user({int(text)})")

        self.push_screen(AskDialog("Recommend for which user?", check, "user id"), answer)

    def action_use_model(self, name: str) -> None:
        """Recommend with the saved model `name` from now on."""
        self.state.rec_model = name
        self.notify(f"recommendations now come from {name}", timeout=3)
        self._refresh_screen()

    # -- quitting -----------------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit; while training or the recommenders' work is going, ask first (ctrl+q again, or y, confirms)."""
        if isinstance(self.screen, ConfirmDialog) and self.screen.tag == "quit":
            self.screen.dismiss(True)
            return
        run = self.state.run
        recs = self.state.work.get("recs")  # the recommenders' leaderboard or training (screen 7)
        if run is not None and not run.cancel.is_set():
            names = ", ".join(run.running()) or "final fits"
            question = (
                f"Training is running ({names}).\n"
                "Quit anyway? The run is cancelled first: nothing half-written is kept."
            )
        elif recs is not None and not (recs.cancel is not None and recs.cancel.is_set()):
            question = (
                f"Recommenders are at work ({recs.label.rstrip('…')}).\n"
                "Quit anyway? The work is cancelled first: nothing half-written is kept."
            )
        else:
            await self.shut_down()
            return
        self.push_screen(
            ConfirmDialog(question, yes="Quit", no="Keep working", tag="quit"), self._quit_answer
        )

    async def _quit_answer(self, yes: bool | None) -> None:
        if yes:
            await self.shut_down()

    async def shut_down(self) -> None:
        """Cancel every piece of running work, give it `QUIT_WAIT` seconds to stop, save settings, exit."""
        self.state.cancel_everything()
        self.save_settings()
        busy = [w for w in self.workers if w.is_running]
        if busy:
            self.notify("stopping running work…", timeout=QUIT_WAIT)
            waiting = asyncio.gather(*(w.wait() for w in busy), return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting, QUIT_WAIT)
        self.exit()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run until quit. After a quit through `shut_down` (the terminal is restored, settings are saved,
        running work was cancelled), the process ends at once: a fit stuck in library code cannot hold it,
        and the interpreter's teardown of torch, scikit-learn and LightGBM (seconds) is skipped."""
        result = super().run(*args, **kwargs)
        if self.state.quitting.is_set():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(self.return_code or 0)
        return result

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed worker of the app becomes a notification (screens report theirs the same way)."""
        helpers.report_worker_failure(self, event)
        if event.worker.group == "startup" and event.state == WorkerState.ERROR and self.state.specs is None:
            self.state.specs = {}  # no models to offer, but the screens stop waiting for them
            self._refresh_screen()


def make_app(
    train_path: str | Path | None = None,
    test_path: str | Path | None = None,
    models_dir: str | Path | None = None,
    *,
    clock: Clock | None = None,
    device: str | None = None,
) -> FlowApp:
    """Build the app on the given files and models folder (`./models`). Without a train file it opens the
    last session's files when they still exist, else the bundled sample.

    `clock` drives progress-bar ETAs (tests pass `textual.clock.MockClock()`); `device` skips the device
    probe (snapshots pass "CPU").
    """
    path = settings.settings_file()
    remembered, notes = settings.read(path)
    if train_path is not None:
        train: Path = Path(train_path)
        test = Path(test_path) if test_path is not None else None
    else:
        train, test, forgotten = settings.choose_data(remembered)
        notes += forgotten
        if test_path is not None:
            test = Path(test_path)
    state = AppState(
        train_path=train,
        test_path=test,
        models_dir=Path(models_dir) if models_dir is not None else Path("models"),
        clock=clock,
        device=device,
        settings_file=path,
        notes=notes,
        rec_selected=list(remembered.rec_ticked or []),  # unknown names are dropped by screen 7
    )
    return FlowApp(state, remembered)
