"""The one table of the app's screens: mode, key, label and class of each, in key order.

The app builds its modes, its number-key bindings and its command-palette entries from it, and hands it to
the screens for the navigation line and to the help screen. Of the TUI's modules only the app imports this
one (it imports every screen); screens and widgets receive the rows and never import it.
"""

from __future__ import annotations

from flowtui.tui.screens.base import Page
from flowtui.tui.screens.data import DataScreen
from flowtui.tui.screens.models import ModelsScreen
from flowtui.tui.screens.newuser import NewUserScreen
from flowtui.tui.screens.recs.screen import RecsScreen
from flowtui.tui.screens.results import ResultsScreen
from flowtui.tui.screens.training import TrainingScreen
from flowtui.tui.screens.users import UsersScreen

PAGES: tuple[Page, ...] = (
    Page("data", "1", "Data", DataScreen),
    Page("models", "2", "Models", ModelsScreen),
    Page("training", "3", "Training", TrainingScreen),
    Page("results", "4", "Results", ResultsScreen),
    Page("users", "5", "Users", UsersScreen),
    Page("newuser", "6", "New user", NewUserScreen),
    Page("recs", "7", "Recommenders", RecsScreen),
)
