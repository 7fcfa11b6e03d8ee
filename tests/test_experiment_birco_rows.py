"""experiments/birco_realtext/make_rows.py on a fabricated BIRCO-layout folder (the real data is not a test input):
only dev judgements are read, each row passes the InF-IR schema, and every column comes from where its docstring
says (a relevant passage, a non-relevant one of the same query, another query of the same task and its relevant
passage, another task's instruction)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infembed.data.schema import validate_row

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "birco_realtext" / "make_rows.py"
TASKS = {
    "clinical-trial": (2, 0),
    "wtb": (1, 0),
    "doris-mae": (0.8, 0.1),
}  # task -> (relevant, non-relevant score)
MIDDLE = {
    "clinical-trial": 1,
    "wtb": 0,
    "doris-mae": 0.3,
}  # "excluded" trials are non-relevant; doris 0.3 is neither


def fake_birco(root: Path) -> None:
    for task, (good, bad) in TASKS.items():
        folder = root / task
        (folder / "qrels").mkdir(parents=True)
        queries = [
            {
                "_id": f"{task}-q{i}",
                "text": f"{task} query {i}",
                "instruction": f"{task} objective",
                "split": "dev",
            }
            for i in range(3)
        ]
        (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
        corpus, qrels = [], ["query-id\tcorpus-id\tscore"]
        for q in range(3):
            for kind, score in (("rel", good), ("non", bad), ("mid", MIDDLE[task])):
                corpus.append({"_id": f"{task}-{q}-{kind}", "text": f"{task} {kind} passage of query {q}"})
                qrels.append(f"{task}-q{q}\t{task}-{q}-{kind}\t{score}")
        (folder / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in corpus))
        (folder / "qrels" / "dev.tsv").write_text(
            "\n".join(qrels) + "\n"
        )  # no test.tsv: reading it would fail


@pytest.mark.e2e
def test_rows_come_from_dev_judgements_and_pass_the_schema(tmp_path):
    fake_birco(tmp_path / "birco")
    out = tmp_path / "rows.jsonl"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "birco"), str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = [validate_row(json.loads(line), str(out), f"line {n}") for n, line in enumerate(out.open(), 1)]
    assert len(rows) == 9  # 3 tasks × 3 queries × 1 relevant passage each
    for row in rows:
        task, _, number = row["query_positive"].rpartition(" query ")
        assert row["instruction_positive"] == f"{task} objective"
        assert row["document_positive"] == f"{task} rel passage of query {number}"
        negatives = {f"{task} {kind} passage of query {number}" for kind in ("non", "mid")}
        assert row["hard_negative_document_1"] in (negatives - {f"doris-mae mid passage of query {number}"})
        other = row["query_negative"].rpartition(" query ")
        assert other[0] == task and other[2] != number
        assert row["hard_negative_document_2"] == f"{task} rel passage of query {other[2]}"
        assert row["instruction_negative"] != row["instruction_positive"]
        assert row["instruction_negative"].removesuffix(" objective") in TASKS
