"""Evaluation inputs through run.py task=evaluate: a non-finite relevance score and undecodable bytes stop the run
with one line naming file and line; a UTF-8 byte-order mark and CRLF line ends just work; judged queries with empty
text are warned about with their ids."""

import json

import pytest

from infembed.eval.benchmarks import BenchmarkDataError, load_benchmark

from helpers import run_py
from helpers.benchmarks import make_beir

EVALUATE = ("task=evaluate", "model=tiny", "benchmark=beir")


def evaluate(root, tmp_path, name: str):
    return run_py(*EVALUATE, f"benchmark.path={root}", f"hydra.run.dir={tmp_path / name}", cwd=tmp_path)


def one_line(result, expected: str) -> None:
    printed = result.stdout + result.stderr
    lines = [line for line in printed.splitlines() if "BenchmarkDataError" in line]
    assert result.returncode == 1 and "Traceback" not in printed, printed[-2000:]
    assert len(lines) == 1 and expected in lines[0], printed[-2000:]


def with_score(root, score: str):
    qrels = root / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + f"q3\td1\t{score}\n")
    return root


@pytest.mark.e2e
def test_a_non_finite_relevance_score_is_refused(tmp_path):
    root = with_score(make_beir(tmp_path / "toy"), "nan")
    one_line(evaluate(root, tmp_path, "ev"), "test.tsv:10: score 'nan' is not a finite number")
    assert not (tmp_path / "ev" / "metrics.json").exists()


@pytest.mark.parametrize("score", ["inf", "-Infinity", "NaN"])
def test_every_non_finite_spelling_is_refused(tmp_path, score):
    root = with_score(make_beir(tmp_path / "toy"), score)
    with pytest.raises(BenchmarkDataError, match=f"test.tsv:10: score '{score}' is not a finite number"):
        load_benchmark(str(root))


@pytest.mark.e2e
def test_undecodable_bytes_name_file_line_and_column(tmp_path):
    root = make_beir(tmp_path / "toy")
    lines = (root / "corpus.jsonl").read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"birds", b"bi\xffrds")
    (root / "corpus.jsonl").write_bytes(b"".join(lines))
    one_line(evaluate(root, tmp_path, "ev"), "corpus.jsonl:3: not UTF-8 text (byte 0xff at column 26)")


@pytest.mark.e2e
def test_bom_and_crlf_are_read_and_empty_queries_are_named(tmp_path):
    plain = make_beir(tmp_path / "plain")
    windows = make_beir(tmp_path / "windows")
    for path in (windows / "corpus.jsonl", windows / "queries.jsonl", windows / "qrels" / "test.tsv"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    for root in (plain, windows):
        (root / "queries.jsonl").write_text(
            (root / "queries.jsonl").read_text(encoding="utf-8-sig").replace('"animals"', '"  "'),
            encoding="utf-8-sig" if root == windows else "utf-8",
        )
    results = {root.name: evaluate(root, tmp_path, root.name) for root in (plain, windows)}
    for result in results.values():
        printed = result.stdout + result.stderr
        assert result.returncode == 0, printed[-2000:]
        assert "queries.jsonl:3: 1 judged queries have empty text (ids 'q3')" in printed
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text())["after"][name] for name in results]
    assert metrics[0] == metrics[1]  # the same numbers as the plain UTF-8 / LF folder
