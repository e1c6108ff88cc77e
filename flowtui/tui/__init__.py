"""The Textual terminal app: a thin front end over flowtui.core."""
