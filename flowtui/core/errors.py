"""The errors every layer of flowtui raises for bad input: shared, so that no capability imports another for them.

`DataError` is an input (a file, a folder, a value) that flowtui refuses, with what is needed to fix it;
`ParamError` a model parameter name or value that is refused. Front ends turn both into one line and exit 2.
"""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """An input file that flowtui refuses, with everything needed to fix it.

    `str(err)` is one line naming the file, line, column, what was expected and what was found;
    `examples` holds up to 5 offending values (or lines) and `count` the number of all offenders.
    """

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        examples: list[str] | None = None,
        count: int | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        self.line = line
        self.column = column
        self.expected = expected
        self.found = found
        self.examples = list(examples or [])[:5]
        self.count = count
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The error as a single line, for a terminal or a log."""
        where = self.path or "<data>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [f"{where}: {self.message}"]
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.expected is not None:
            parts.append(f"expected {self.expected}")
        if self.found is not None:
            parts.append(f"found {self.found}")
        if self.count is not None:
            parts.append(f"{self.count} offending row{'s' if self.count != 1 else ''}")
        return "; ".join(parts)

    def details(self) -> list[str]:
        """Example offenders, one per line, for display under the one-line message."""
        return [f"e.g. {e}" for e in self.examples]


class ParamError(ValueError):
    """A parameter name or value that is refused; the message is one plain sentence."""
