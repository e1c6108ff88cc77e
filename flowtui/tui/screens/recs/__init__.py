"""Screen 7, Recommenders: the leaderboard of the recommenders on the loaded data, training them, and the
saved ones. A screen in three parts: `screen` (RecsScreen), `board` (the leaderboard's columns and cells),
`saved` (the saved-recommenders panel, its base class). Import the parts themselves: this package imports
nothing, so that importing a part never runs the others."""
