"""flowtui: a terminal app and CLI for music recommendation on DSG17-format streaming logs."""

__version__ = "0.1.0"
