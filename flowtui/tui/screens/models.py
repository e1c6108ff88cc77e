"""Screen 2: tick the models to train, edit their key parameters, pick the quick or full preset."""

from __future__ import annotations

import dataclasses
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from flowtui.core.params import ParamError, Value, show_value
from flowtui.tui.messages import RegistryReady
from flowtui.tui.screens.base import FlowScreen

#: Models ticked when the app opens (when registered): one fast learner and the strongest one.
DEFAULT_PICK = ("logreg", "lightgbm")
FAMILY = {"collaborative": "collab. filter"}


#: The run options of the form: (field id, label, RunConfig attribute). Their values are checked by core.
RUN_OPTIONS = (
    ("opt-rounds", "rounds", "rounds"),
    ("opt-smoothing", "smoothing", "smoothing"),
    ("opt-top_k", "top-k features", "top_k"),
    ("opt-contexts", "target contexts", "target_contexts"),
    ("opt-flow_only", "Flow rows only", "flow_only"),
)


def show_option(value: object) -> str:
    """A run option as its field shows it (empty for None, commas for contexts)."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return show_value(value)


def parse_option(attr: str, text: str) -> object:
    """The text of a run-option field as the RunConfig value; ValueError with one plain sentence."""
    text = text.strip()
    try:
        if attr == "rounds":
            return int(text)
        if attr == "smoothing":
            return float(text)
        if attr == "top_k":
            return int(text) if text else None
        if attr == "target_contexts":
            return tuple(int(c) for c in text.replace(" ", "").split(",") if c) or None
    except ValueError:
        what = {"rounds": "an integer", "smoothing": "a number", "top_k": "an integer or empty"}
        raise ValueError(
            f"{attr} must be {what.get(attr, 'integers separated by commas')}, got {text!r}"
        ) from None
    low = text.lower()
    if low in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return low in ("true", "yes", "on", "1")
    raise ValueError(f"{attr} must be true or false, got {text!r}")


class ModelsScreen(FlowScreen):
    """Model checklist and parameter form."""

    HELP = "space ticks a model; edit its parameters on the right (enter applies)."
    BINDINGS = [  # noqa: RUF012
        Binding("p", "toggle_preset", "Preset"),
        Binding("a", "toggle_all", "All/none"),
        Binding("r", "reset_params", "Reset params"),
        Binding("t", "train", "Train"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.specs: dict[str, Any] = {}
        self._current: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="models-body"):
            with Vertical(id="models-left"):
                yield SelectionList[str](id="model-list")
                yield Label("", id="preset")
                with Vertical(id="run-options"):
                    options = self.state.run_options
                    for field_id, label, attr in RUN_OPTIONS:
                        yield Horizontal(
                            Label(label, classes="option-label"),
                            Input(show_option(getattr(options, attr)), id=field_id, classes="option-input"),
                            classes="option-row",
                        )
            with Vertical(id="models-right"):
                yield Static("", id="model-desc")
                yield VerticalScroll(id="param-form")

    def on_mount(self) -> None:
        self.query_one("#model-list").border_title = "Models (space ticks)"
        self.query_one("#run-options").border_title = "Run options"
        self.query_one("#models-right").border_title = "Parameters"
        self._show_preset()
        self.query_one("#model-desc", Static).update("reading the model registry…")
        self._read_registry()

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry")
    def _read_registry(self) -> None:
        from flowtui.core import registry

        self.post_message(RegistryReady([registry.get_spec(n) for n in registry.model_names()]))

    def on_registry_ready(self, message: RegistryReady) -> None:
        self.specs = {s.name: s for s in message.specs}
        state = self.state
        if not state.selected:
            state.selected = [n for n in DEFAULT_PICK if n in self.specs]
        listing = self.query_one("#model-list", SelectionList)
        listing.clear_options()
        listing.add_options(
            [
                Selection(
                    f"{s.name:<15} {FAMILY.get(s.family, s.family)}",
                    s.name,
                    s.name in state.selected,
                    id=s.name,
                )
                for s in message.specs
            ]
        )
        listing.focus()
        if message.specs:
            self._show_model(message.specs[0].name)

    @on(SelectionList.SelectionHighlighted, "#model-list")
    def _highlighted(self, event: SelectionList.SelectionHighlighted[str]) -> None:
        self._show_model(event.selection.value)

    @on(SelectionList.SelectedChanged, "#model-list")
    def _ticked(self, event: SelectionList.SelectedChanged[str]) -> None:
        order = list(self.specs)
        self.state.selected = sorted(event.selection_list.selected, key=order.index)

    def _effective(self, name: str) -> dict[str, Value]:
        spec = self.specs[name]
        return spec.params(self.state.params.get(name), self.state.preset)

    def _show_model(self, name: str) -> None:
        if name not in self.specs:
            return
        self._current = name
        spec = self.specs[name]
        tags = "baseline, always on the leaderboard" if spec.baseline else spec.family
        self.query_one("#model-desc", Static).update(f"[b]{name}[/b] ({tags})\n{spec.description}")
        form = self.query_one("#param-form", VerticalScroll)
        form.remove_children()
        rows = []
        edited = self.state.params.get(name, {})
        for key, value in self._effective(name).items():
            declared = spec.schema.get(key)
            field = Input(show_value(value), id=f"param-{key}", classes="param-input")
            if declared is not None:
                field.tooltip = f"{declared.help}; {declared.describe()}"
            if key in edited:
                field.add_class("-edited")
            rows.append(Horizontal(Label(key, classes="param-label"), field, classes="param-row"))
        if not rows:
            rows.append(Horizontal(Label("(no parameters)", classes="param-label")))
        form.mount_all(rows)

    @on(Input.Submitted, ".param-input")
    @on(Input.Blurred, ".param-input")
    def _param_edited(self, event: Input.Submitted | Input.Blurred) -> None:
        name = self._current
        if name is None or event.input.id is None:
            return
        key = event.input.id.removeprefix("param-")
        spec = self.specs[name]
        base = spec.params(None, self.state.preset)
        declared = spec.schema.get(key)
        if declared is None:
            return
        try:
            value = declared.parse(event.input.value, name)
        except ParamError as err:
            event.input.add_class("-invalid")
            self.notify(str(err), severity="error")
            return
        event.input.remove_class("-invalid")
        if value == base.get(key):
            self.state.params.get(name, {}).pop(key, None)
            event.input.remove_class("-edited")
        else:
            self.state.params.setdefault(name, {})[key] = value
            event.input.add_class("-edited")

    @on(Input.Submitted, ".option-input")
    @on(Input.Blurred, ".option-input")
    def _option_edited(self, event: Input.Submitted | Input.Blurred) -> None:
        attr = next((a for f, _, a in RUN_OPTIONS if f == event.input.id), None)
        if attr is None:
            return
        try:
            change: dict[str, Any] = {attr: parse_option(attr, event.input.value)}
            options = dataclasses.replace(self.state.run_options, **change)
            # checked without models or parameters: those are the form's and the checklist's
            dataclasses.replace(options, models=(), params={}).validate()
        except ValueError as err:
            event.input.add_class("-invalid")
            self.notify(str(err), severity="error")
            return
        event.input.remove_class("-invalid")
        self.state.run_options = options

    def _show_preset(self) -> None:
        preset = self.state.preset
        hint = "first look" if preset == "quick" else "full settings"
        self.query_one("#preset", Label).update(f"preset [b]{preset}[/b] ({hint}) · p")

    def action_toggle_preset(self) -> None:
        """Switch between the quick and full presets."""
        self.state.preset = "full" if self.state.preset == "quick" else "quick"
        self._show_preset()
        if self._current:
            self._show_model(self._current)

    def action_toggle_all(self) -> None:
        """Tick every model, or none when all are ticked."""
        listing = self.query_one("#model-list", SelectionList)
        if len(listing.selected) == listing.option_count:
            listing.deselect_all()
        else:
            listing.select_all()

    def action_reset_params(self) -> None:
        """Forget the edits of the highlighted model."""
        if self._current:
            self.state.params.pop(self._current, None)
            self._show_model(self._current)

    def action_train(self) -> None:
        """Go to the training screen and start training the ticked models."""
        self.state.train_requested = True
        self.flow_app.action_goto("training")
