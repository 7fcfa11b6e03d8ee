"""InF-IR row schema (docs/method.md, "Data format"): validation, error messages, skip counting, row → triplet expansion.

A row has seven text columns. It expands into three triplets (instruction, query, passage) that stay adjacent:
    (I+, Q+, P+), (I-, Q+, hard_negative_document_1), (I+, Q-, hard_negative_document_2)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from infembed.errors import UserError

COLUMNS = (
    "query_positive",
    "query_negative",
    "instruction_positive",
    "instruction_negative",
    "document_positive",
    "hard_negative_document_1",
    "hard_negative_document_2",
)
ALIASES = {"document": "document_positive"}  # some copies of InF-IR name P+ `document`
ON_BAD_ROW = ("raise", "skip")
TRIPLETS_PER_ROW = 3
SOURCE = "_source"  # row key: where the row came from, "FILE line N" or "DATASET (split S) row N ..."

# skip reasons, one per kind of bad row
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_COLUMN = "missing_column"
WRONG_TYPE = "wrong_type"
EMPTY_TEXT = "empty_text"


class DataError(UserError):
    """Bad input data. The message names the file, the line/row, the field and what was expected.

    `reason` is one of the skip reasons above for row-level problems, or "file" for problems with a whole file
    (unreadable, empty, no match), which are never skipped.
    """

    def __init__(
        self,
        file: str,
        location: str | None = None,
        field: str = "",
        expected: str = "",
        got: str = "",
        reason: str = "file",
    ):
        self.file, self.location, self.field, self.reason = str(file), location, field, reason
        if location is None:  # torch re-raising a DataLoader worker's DataError (see worker_message)
            super().__init__(worker_message(str(file)))
            return
        got_part = f", got {got}" if got else ""
        super().__init__(f"{file}: {location}: field {field!r}: expected {expected}{got_part}")


def worker_message(wrapped: str) -> str:
    """The one-line message of a DataError raised in a DataLoader worker.

    torch re-raises a worker's exception in the main process as ``DataError(text)``, ``text`` being
    ``"Caught DataError in DataLoader worker process N.\nOriginal Traceback ...\n<module>.DataError: MESSAGE"``;
    the message is what follows the class name on the traceback's last line.
    """
    marker = f"{DataError.__name__}: "
    last = [line for line in wrapped.splitlines() if line.strip()][-1:] or [wrapped]
    return last[0].split(marker, 1)[1] if marker in last[0] else wrapped


def check_on_bad_row(on_bad_row: str) -> str:
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row={on_bad_row!r}: expected one of {list(ON_BAD_ROW)}")
    return on_bad_row


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def validate_row(raw: Any, file: str, location: str) -> dict[str, str]:
    """The seven schema columns of `raw` (alias resolved, extra columns dropped) and ``SOURCE`` = "file location",
    or raise DataError."""
    if not isinstance(raw, dict):
        raise DataError(
            file, location, "<row>", "a JSON object with the InF-IR columns", _describe(raw), NOT_AN_OBJECT
        )
    row = {}
    for column in COLUMNS:
        value = raw.get(column)
        if value is None and column not in raw:
            alias = next((a for a, target in ALIASES.items() if target == column and a in raw), None)
            if alias is None:
                raise DataError(
                    file,
                    location,
                    column,
                    "a column present in every row (InF-IR schema)",
                    f"columns {sorted(raw)}",
                    MISSING_COLUMN,
                )
            value = raw[alias]
        if not isinstance(value, str):
            raise DataError(file, location, column, "a string", _describe(value), WRONG_TYPE)
        if not value.strip():
            raise DataError(file, location, column, "a non-empty text", repr(value), EMPTY_TEXT)
        row[column] = value
    row[SOURCE] = f"{file} {location}"
    return row


def expand_row(row: dict[str, str]) -> list[tuple[str, str, str]]:
    """The row's three (instruction, query, passage) triplets, in the fixed order of docs/method.md, "Data format"."""
    return [
        (row["instruction_positive"], row["query_positive"], row["document_positive"]),
        (row["instruction_negative"], row["query_positive"], row["hard_negative_document_1"]),
        (row["instruction_positive"], row["query_negative"], row["hard_negative_document_2"]),
    ]


class SkipStats:
    """Counts rows skipped per reason (on_bad_row="skip")."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}  # reason -> first message, to show what was wrong

    def record(self, error: DataError) -> None:
        self.counts[error.reason] += 1
        self.first.setdefault(error.reason, str(error))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def summary(self) -> str:
        if not self.total:
            return "skipped 0 bad rows"
        parts = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.counts.items()))
        examples = "; ".join(self.first[r] for r in sorted(self.first))
        return f"skipped {self.total} bad rows ({parts}); first of each: {examples}"
