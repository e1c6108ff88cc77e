"""Small self-contained widgets used by the screens."""
