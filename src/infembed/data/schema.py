"""InF-IR row schema (docs/method.md, "Data format"): validation, error messages, skip counting, row → triplet expansion.

A row has seven text columns. It expands into three triplets (instruction, query, passage) that stay adjacent:
    (I+, Q+, P+), (I-, Q+, hard_negative_document_1), (I+, Q-, hard_negative_document_2)

Optional column ``labels`` (the synthetic generator writes it; real InF-IR rows lack it): what each text asks for
or shows, so that relevance can be decided without a model:
    labels[query or instruction column]  {key: value}  constraints (e.g. {"topic": "chess", "audience": 1})
    labels[passage column]               {key: value}  attributes (e.g. {"topic": "chess", "aspect": "cost", ...})
    labels["decoys"] (optional)          {passage column: [instruction texts the passage satisfies]}
A passage satisfies constraints when it has every constrained key with the same value (:func:`satisfies`); a
passage is relevant to (Q, I) when it satisfies both. Rows without labels are never judged.
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
LABELS = "labels"  # optional column, see the module docstring
DECOYS = "decoys"
PASSAGE_COLUMNS = ("document_positive", "hard_negative_document_1", "hard_negative_document_2")

# skip reasons, one per kind of bad row
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_COLUMN = "missing_column"
WRONG_TYPE = "wrong_type"
EMPTY_TEXT = "empty_text"
BAD_LABELS = "bad_labels"


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


def validate_row(raw: Any, file: str, location: str) -> dict[str, Any]:
    """The seven schema columns of `raw` (alias resolved, extra columns dropped), its ``labels`` when present and
    ``SOURCE`` = "file location", or raise DataError."""
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
    if raw.get(LABELS) is not None:
        row[LABELS] = validate_labels(raw[LABELS], file, location)
    row[SOURCE] = f"{file} {location}"
    return row


def _bad_labels(file: str, location: str, field: str, expected: str, value: Any) -> DataError:
    return DataError(file, location, field, expected, _describe(value), BAD_LABELS)


def validate_labels(labels: Any, file: str, location: str) -> dict:
    """The optional ``labels`` column (module docstring), or raise DataError naming the bad entry."""
    if not isinstance(labels, dict):
        raise _bad_labels(file, location, LABELS, "an object of per-column labels", labels)
    for column in COLUMNS:
        entry = labels.get(column)
        if not isinstance(entry, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int)) and not isinstance(v, bool)
            for k, v in entry.items()
        ):
            raise _bad_labels(file, location, f"{LABELS}.{column}", "an object of str/int values", entry)
    decoys = labels.get(DECOYS, {})
    if not isinstance(decoys, dict) or not set(decoys) <= set(PASSAGE_COLUMNS):
        raise _bad_labels(
            file, location, f"{LABELS}.{DECOYS}", f"an object keyed by {list(PASSAGE_COLUMNS)}", decoys
        )
    for column, texts in decoys.items():
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise _bad_labels(
                file, location, f"{LABELS}.{DECOYS}.{column}", "a list of non-empty texts", texts
            )
    return labels


def satisfies(attributes: dict, constraints: dict) -> bool:
    """Whether a passage with these attributes meets every constraint: ∀ key ∈ constraints, attributes[key] equal."""
    return all(attributes.get(key) == value for key, value in constraints.items())


def expand_labels(row: dict) -> list[tuple[dict, dict, dict]] | None:
    """The labels of the row's three triplets, (instruction, query, passage) as in :func:`expand_row`; None
    without labels."""
    labels = row.get(LABELS)
    if labels is None:
        return None
    return [
        (labels["instruction_positive"], labels["query_positive"], labels["document_positive"]),
        (labels["instruction_negative"], labels["query_positive"], labels["hard_negative_document_1"]),
        (labels["instruction_positive"], labels["query_negative"], labels["hard_negative_document_2"]),
    ]


def expand_decoys(row: dict) -> list[list[str]]:
    """Per triplet (expand_row order), the instruction texts its passage satisfies (labels["decoys"]); [] each
    when there are none."""
    decoys = row.get(LABELS, {}).get(DECOYS, {})
    return [list(decoys.get(column, [])) for column in PASSAGE_COLUMNS]


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
