"""Schema validation: each kind of bad input names file, line/row, field and expectation; skip mode counts."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infembed.data.schema import COLUMNS, SOURCE, DataError, expand_row
from infembed.data.sources import LocalSource, in_validation


def good_row(i: int = 0) -> dict:
    return {column: f"{column} {i}" for column in COLUMNS}


def write_jsonl(path, lines) -> str:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def first_error(source: str) -> DataError:
    with pytest.raises(DataError) as info:
        LocalSource(source).scan()
    return info.value


@pytest.mark.parametrize(
    "bad, field, expected, reason",
    [
        (
            {k: v for k, v in good_row().items() if k != "query_negative"},
            "query_negative",
            "present",
            "missing_column",
        ),
        (dict(good_row(), instruction_positive="   "), "instruction_positive", "non-empty", "empty_text"),
        (dict(good_row(), hard_negative_document_2=7), "hard_negative_document_2", "a string", "wrong_type"),
        (dict(good_row(), query_positive=None), "query_positive", "a string", "wrong_type"),
        ("{not json", "<line>", "one JSON object per line", "malformed_json"),
        ("[1, 2]", "<row>", "a JSON object", "not_an_object"),
    ],
)
def test_jsonl_error_names_file_line_field_expectation(tmp_path, bad, field, expected, reason):
    path = write_jsonl(tmp_path / "rows.jsonl", [good_row(0), good_row(1), bad])
    error = first_error(path)
    message = str(error)
    assert path in message and "line 3" in message and repr(field) in message and expected in message
    assert error.reason == reason


def test_blank_lines_keep_physical_line_numbers(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [good_row(0), "", dict(good_row(1), query_positive="")])
    assert "line 3" in str(first_error(path))


def test_document_alias_is_accepted(tmp_path):
    row = good_row()
    row["document"] = row.pop("document_positive")
    path = write_jsonl(tmp_path / "rows.jsonl", [row])
    rows = list(LocalSource(path).iter_shard(0, 1, stats=None))
    assert rows[0]["document_positive"] == "document_positive 0"


def test_extra_columns_are_dropped(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [dict(good_row(), extra=1)])
    row = next(LocalSource(path).iter_shard(0, 1, stats=None))
    assert set(row) == set(COLUMNS) | {SOURCE} and row[SOURCE] == f"{path} line 1"


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    assert "empty file" in str(first_error(str(empty))) and str(empty) in str(first_error(str(empty)))
    missing = str(tmp_path / "missing.jsonl")
    assert missing in str(first_error(missing)) and "readable" in str(first_error(missing))
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    assert "readable .parquet" in str(first_error(str(garbage)))


def test_glob_without_match_is_an_error(tmp_path):
    assert "no match" in str(first_error(str(tmp_path / "*.jsonl")))


def test_parquet_errors_name_zero_based_row(tmp_path):
    rows = [good_row(0), good_row(1), dict(good_row(2), query_positive="")]
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    message = str(first_error(str(path)))
    assert "row 2 (0-based)" in message and "'query_positive'" in message


def test_skip_mode_counts_per_reason(tmp_path):
    lines = [
        good_row(0),
        "{oops",
        dict(good_row(1), query_positive=""),
        dict(good_row(2), query_positive=""),
        {"query_positive": "only"},
        good_row(3),
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", lines)
    result = LocalSource(path, on_bad_row="skip").scan()
    assert result.rows == 2
    assert result.skipped.as_dict() == {"empty_text": 2, "malformed_json": 1, "missing_column": 1}
    assert "skipped 4 bad rows" in result.skipped.summary()


def test_bad_on_bad_row_value():
    with pytest.raises(ValueError, match="on_bad_row"):
        LocalSource(__file__.replace(".py", ".jsonl"), on_bad_row="ignore")


def test_row_expands_into_three_triplets_in_fixed_order():
    row = good_row()
    assert expand_row(row) == [
        ("instruction_positive 0", "query_positive 0", "document_positive 0"),
        ("instruction_negative 0", "query_positive 0", "hard_negative_document_1 0"),
        ("instruction_positive 0", "query_negative 0", "hard_negative_document_2 0"),
    ]


def test_hash_split_is_deterministic_and_content_based():
    rows = [good_row(i) for i in range(2000)]
    first = [in_validation(r, 0.1) for r in rows]
    assert first == [in_validation(dict(r), 0.1) for r in reversed(rows)][::-1]  # order does not matter
    assert 120 < sum(first) < 280  # about 10 %
    assert not any(in_validation(r, 0.0) for r in rows)
