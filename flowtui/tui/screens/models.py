"""Screen 2: tick the models to train, edit their key parameters, pick the quick or full preset."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from flowtui.core.errors import ParamError
from flowtui.core.params import Value, show_value
from flowtui.tui.screens.base import FlowScreen
from flowtui.tui.widgets.ticklist import TickList

if TYPE_CHECKING:
    from flowtui.core.registry import ModelSpec

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

    HOME = "#model-list"

    HELP = (
        "space ticks a model; tab reaches its parameters (enter applies), then the run options; "
        "r resets the highlighted model's parameters and the run options."
    )
    BINDINGS = [  # noqa: RUF012
        Binding("p", "toggle_preset", "Preset"),
        Binding("a", "toggle_all", "All/none"),
        Binding("r", "reset_params", "Reset"),
        Binding("t", "train", "Train"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.specs: dict[str, ModelSpec] = {}
        self._current: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="models-body"):
            with Vertical(id="models-left"):
                yield TickList[str](id="model-list")
                yield Label("", id="preset")
                with Vertical(id="run-options"):
                    for field_id, label, attr in RUN_OPTIONS:
                        yield Horizontal(
                            Label(label, classes="option-label"),
                            Input(
                                self._option_text(attr),
                                id=field_id,
                                classes="option-input",
                                select_on_focus=False,
                            ),
                            classes="option-row",
                        )
                    yield Label("", id="options-error", classes="field-error")
            with Vertical(id="models-right"):
                yield Static("", id="model-desc")
                yield VerticalScroll(id="param-form")

    def _option_text(self, attr: str) -> str:
        return show_option(getattr(self.state.run_options, attr))

    def on_mount(self) -> None:
        self.query_one("#model-list").border_title = "Models (space ticks)"
        self.query_one("#run-options").border_title = "Run options"
        self.query_one("#models-right").border_title = "Parameters"
        self.query_one("#options-error").display = False
        self._show_preset()
        self.query_one("#model-list").focus()
        self.refresh_from_state()

    def refresh_from_state(self) -> None:
        """Fill the list once the app has read the registry (keys pressed before that are held)."""
        if self.state.specs is None:
            self.query_one("#model-desc", Static).update("reading the model registry…")
            self.hold_keys()
            return
        if not self.specs:
            self._fill(list(self.state.specs.values()))
            self.release_keys()

    def _fill(self, specs: list[ModelSpec]) -> None:
        self.specs = {s.name: s for s in specs}
        state = self.state
        listing = self.query_one("#model-list", TickList)
        listing.clear_options()
        listing.add_options(
            [
                Selection(
                    f"{s.name:<15} {FAMILY.get(s.family, s.family)}",
                    s.name,
                    s.name in state.selected,
                    id=s.name,
                )
                for s in specs
            ]
        )
        listing.highlight_first()
        for field_id, _, attr in RUN_OPTIONS:  # the remembered options arrived with the registry
            self.query_one(f"#{field_id}", Input).value = self._option_text(attr)
        self._show_preset()
        if specs:
            self._show_model(specs[0].name)

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
        rows: list[Widget] = []
        edited = self.state.params.get(name, {})
        for key, value in self._effective(name).items():
            declared = spec.schema.get(key)
            typed = self.state.invalid_fields.get(f"{name} {key}")
            text = typed[0] if typed is not None else show_value(value)
            field = Input(text, id=f"param-{key}", classes="param-input", select_on_focus=False)
            field.set_class(key in edited, "-edited")
            field.set_class(typed is not None, "-invalid")
            error = Label(
                f"✗ {typed[1]}" if typed else "", id=f"error-{key}", classes="field-error param-error"
            )
            error.display = typed is not None
            row = Horizontal(Label(key, classes="param-label"), field, classes="param-row")
            block = [row, error]
            if declared is not None:
                block.append(Label(f"{declared.help} · {declared.describe()}", classes="param-help"))
            rows.append(Vertical(*block, classes="param-block"))
        if not rows:
            rows.append(Horizontal(Label("(no parameters)", classes="param-label")))
        form.mount_all(rows)

    def _show_error(self, error_id: str, message: str) -> None:
        """One plain sentence under the field it is about (hidden when empty)."""
        for label in self.query(f"#{error_id}").results(Label):
            label.update(f"✗ {message}")
            label.display = bool(message)

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
            self._show_error(f"error-{key}", str(err))
            self.state.invalid_fields[f"{name} {key}"] = (event.input.value, str(err))
            return
        self.state.invalid_fields.pop(f"{name} {key}", None)
        event.input.remove_class("-invalid")
        self._show_error(f"error-{key}", "")
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
            self._show_error("options-error", str(err))
            self.state.invalid_fields[f"run option {attr}"] = (event.input.value, str(err))
            return
        self.state.invalid_fields.pop(f"run option {attr}", None)
        event.input.remove_class("-invalid")
        self._show_error("options-error", "")
        self.state.run_options = options

    def _tab_order(self) -> list[Widget]:
        """The list, the highlighted model's parameters, then the run options."""
        order: list[Widget] = [self.query_one("#model-list")]
        order += list(self.query(".param-input"))
        order += list(self.query(".option-input"))
        return [w for w in order if w.focusable]

    def focus_next(self, selector: str | type[Any] = "*") -> Widget | None:
        """Tab: from the model list to its parameters first, then the run options."""
        return self._step_focus(1) or super().focus_next(selector)

    def focus_previous(self, selector: str | type[Any] = "*") -> Widget | None:
        return self._step_focus(-1) or super().focus_previous(selector)

    def _step_focus(self, step: int) -> Widget | None:
        order = self._tab_order()
        if self.focused not in order:
            return None
        target = order[(order.index(self.focused) + step) % len(order)]
        self.set_focus(target)
        return target

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
        listing = self.query_one("#model-list", TickList)
        if len(listing.selected) == listing.option_count:
            listing.deselect_all()
        else:
            listing.select_all()

    def action_reset_params(self) -> None:
        """Forget the edits of the highlighted model, and the run options' (back to their defaults)."""
        from flowtui.core.run_config import RunConfig

        state = self.state
        state.run_options = RunConfig(preset=state.preset)
        for field_id, _, attr in RUN_OPTIONS:
            field = self.query_one(f"#{field_id}", Input)
            field.value = self._option_text(attr)
            field.remove_class("-invalid")
        self._show_error("options-error", "")
        invalid = state.invalid_fields
        for label in [k for k in invalid if k.startswith(("run option ", f"{self._current} "))]:
            del invalid[label]
        if self._current:
            state.params.pop(self._current, None)
            self._show_model(self._current)

    def action_train(self) -> None:
        """Go to the training screen and start training the ticked models (refused while a field holds an
        invalid value: the first is named)."""
        refusal = self.state.invalid_refusal()
        if refusal:
            self.notify(refusal, title="cannot train", severity="error")
            return
        self.state.train_requested = True
        self.flow_app.action_goto("training")
