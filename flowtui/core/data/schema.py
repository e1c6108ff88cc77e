"""Column names, compact dtypes and value rules of the DSG17 format, and the DataWarning of odd values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

#: Train columns, in the order of the official train.csv.
TRAIN_COLUMNS: tuple[str, ...] = (
    "genre_id",
    "ts_listen",
    "media_id",
    "album_id",
    "context_type",
    "release_date",
    "platform_name",
    "platform_family",
    "media_duration",
    "listen_type",
    "user_gender",
    "user_id",
    "artist_id",
    "user_age",
    "is_listened",
)
LABEL = "is_listened"
#: Test columns: `sample_id` first, the train columns without the label.
TEST_COLUMNS: tuple[str, ...] = ("sample_id", *(c for c in TRAIN_COLUMNS if c != LABEL))
#: Columns of an answers file for synthetic test sets (`p_true` is optional).
ANSWER_COLUMNS: tuple[str, ...] = ("sample_id", "is_listened", "p_true")
SUBMISSION_COLUMNS: tuple[str, ...] = ("sample_id", "is_listened")

#: Compact dtypes: 44 bytes a row, so the 7.5M-row train takes about 330 MB.
DTYPES: dict[str, np.dtype] = {
    "sample_id": np.dtype(np.int32),
    "genre_id": np.dtype(np.int32),
    "ts_listen": np.dtype(np.int64),
    "media_id": np.dtype(np.int32),
    "album_id": np.dtype(np.int32),
    "context_type": np.dtype(np.int16),
    "release_date": np.dtype(np.int32),
    "platform_name": np.dtype(np.int8),
    "platform_family": np.dtype(np.int8),
    "media_duration": np.dtype(np.int32),
    "listen_type": np.dtype(np.int8),
    "user_gender": np.dtype(np.int8),
    "user_id": np.dtype(np.int32),
    "artist_id": np.dtype(np.int32),
    "user_age": np.dtype(np.int8),
    "is_listened": np.dtype(np.int8),
}

#: The optional weight column of a train file (play count, rating, seconds played: finite and >= 0), kept
#: when present (`data import --weight` writes it); float64, beside the compact columns.
PLAYS = "plays"
PLAYS_DTYPE = np.dtype(np.float64)

#: Columns whose values must lie in {0, 1}; a value outside refuses the file.
BINARY_COLUMNS: tuple[str, ...] = ("is_listened", "listen_type")
#: Columns that must not be negative; a negative value refuses the file.
NON_NEGATIVE_COLUMNS: tuple[str, ...] = ("media_duration",)

#: Timestamps before this (2009-01-01 UTC) are counted as bogus (the real data has 631).
MIN_PLAUSIBLE_TS = 1_230_768_000
#: Timestamps from this on (2100-01-01 UTC; INT64_MAX and year 10000+ included) are counted as bogus too.
MAX_PLAUSIBLE_TS = 4_102_444_800
SECONDS_PER_DAY = 86_400
#: A gap longer than this (seconds) starts a new listening session.
SESSION_GAP = 600

Kind = Literal["train", "test"]


def columns_for(kind: Kind) -> tuple[str, ...]:
    """The required columns of a train or test file."""
    return TRAIN_COLUMNS if kind == "train" else TEST_COLUMNS


def optional_columns(kind: Kind, header: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The optional columns of a `kind` file that `header` holds (`plays` in a train file), to be loaded."""
    return (PLAYS,) if kind == "train" and PLAYS in header else ()


@dataclass(frozen=True)
class DataWarning:
    """Something odd in an accepted file: counted and reported, never silently dropped."""

    code: str  # stable identifier, e.g. "bogus_timestamp"
    message: str  # human sentence
    count: int
    column: str | None = None
    examples: tuple[str, ...] = field(default_factory=tuple)
    unit: str = "row"  # what `count` counts

    def one_line(self) -> str:
        """The warning as one line."""
        col = f" [{self.column}]" if self.column else ""
        return f"{self.message}{col}: {self.count} {self.unit}{'s' if self.count != 1 else ''}"
