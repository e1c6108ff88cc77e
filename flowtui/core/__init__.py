"""The flowtui engine. It never imports textual, rich or typer: both front ends sit on top of it."""
