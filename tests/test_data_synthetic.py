"""Synthetic generator: deterministic bytes, InF-IR schema, designed hard negatives, FollowIR-form set."""

import json
from pathlib import Path

import pytest

from infembed.data import synthetic
from infembed.data.schema import COLUMNS
from infembed.data.sources import LocalSource


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "data"
    synthetic.generate(out, train_rows=300, eval_queries=20, seed=0)
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_seed_same_bytes_other_seed_differs(generated, tmp_path):
    synthetic.generate(tmp_path / "again", train_rows=300, eval_queries=20, seed=0)
    synthetic.generate(tmp_path / "other", train_rows=300, eval_queries=20, seed=1)
    assert files(generated) == files(tmp_path / "again")
    other = files(tmp_path / "other")
    assert other.keys() == files(generated).keys() and other["train.jsonl"] != files(generated)["train.jsonl"]


def test_rows_follow_the_schema_and_the_design(generated):
    assert LocalSource(str(generated / "train.jsonl")).scan().rows == 300
    for row in read_jsonl(generated / "train.jsonl"):
        assert set(row) == set(COLUMNS) and len(set(row.values())) == 7
        assert 15 <= len(row["document_positive"].split()) <= 45
        pos, hn1 = row["document_positive"], row["hard_negative_document_1"]
        # hard negative 1 is P+ with one attribute flipped: the rest of the words stay
        assert len(set(pos.split()) & set(hn1.split())) >= len(pos.split()) // 3
        # the instruction is paraphrased, not copied from the passage
        instruction_words = {w.strip(".,").lower() for w in row["instruction_positive"].split() if len(w) > 4}
        passage_words = {w.strip(".,:!;").lower() for w in pos.split()}
        assert not instruction_words & passage_words, (instruction_words & passage_words, row)


def test_train_and_evaluation_topics_are_disjoint(generated):
    manifest = json.loads((generated / "manifest.json").read_text())
    train_text = (generated / "train.jsonl").read_text()
    assert manifest["heldout_topics"] and not set(manifest["heldout_topics"]) & set(manifest["train_topics"])
    assert not any(topic in train_text for topic in manifest["heldout_topics"])
    heldout = read_jsonl(generated / "heldout.jsonl")
    assert len(heldout) == 40 and all(
        any(t in r["query_positive"] for t in manifest["heldout_topics"]) for r in heldout
    )


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    qrels: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        qid, doc, score = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(score)
    return qrels


def test_followir_set_is_consistent(generated):
    folder = generated / "followir"
    corpus = {d["_id"]: d["text"] for d in read_jsonl(folder / "corpus.jsonl")}
    queries = read_jsonl(folder / "queries.jsonl")
    candidates = {c["query-id"]: c["corpus-ids"] for c in read_jsonl(folder / "candidates.jsonl")}
    og, changed = read_qrels(folder / "qrels" / "og.tsv"), read_qrels(folder / "qrels" / "changed.tsv")
    assert len(queries) == 20 and len(set(corpus.values())) == len(corpus)
    for query in queries:
        qid, pool = query["_id"], candidates[query["_id"]]
        assert query["instruction_og"] != query["instruction_changed"] and query["text"]
        assert 20 <= len(pool) <= 30 and len(set(pool)) == len(pool) and set(pool) <= set(corpus)
        relevant_og = {d for d, s in og[qid].items() if s}
        relevant_changed = {d for d, s in changed[qid].items() if s}
        assert len(relevant_og) == len(relevant_changed) == 4 and not relevant_og & relevant_changed
        assert set(og[qid]) == set(changed[qid]) == set(pool)


def test_ensure_regenerates_only_when_parameters_change(tmp_path):
    out = tmp_path / "data"
    assert synthetic.ensure(out, train_rows=20, eval_queries=3, seed=0)
    assert not synthetic.ensure(out, train_rows=20, eval_queries=3, seed=0)
    assert synthetic.ensure(out, train_rows=21, eval_queries=3, seed=0)
    assert len((out / "train.jsonl").read_text().splitlines()) == 21
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.lock", "data"]  # no temp dirs left behind


def test_command_line(tmp_path, capsys):
    synthetic.main(
        ["--out", str(tmp_path / "cli"), "--train-rows", "5", "--eval-queries", "2", "--seed", "3"]
    )
    assert json.loads(capsys.readouterr().out)["train"] == str(tmp_path / "cli" / "train.jsonl")
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["seed"] == 3


def test_generator_never_replaces_a_foreign_directory(tmp_path):
    from infembed.data import synthetic

    (tmp_path / "mine.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="not written by the generator"):
        synthetic.generate(tmp_path, train_rows=5, eval_queries=2)
    assert (tmp_path / "mine.jsonl").read_text() == "{}\n"


def test_concurrent_ensure_generates_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from infembed.data import synthetic

    with ThreadPoolExecutor(4) as pool:
        generated = list(pool.map(lambda _: synthetic.ensure(tmp_path / "syn", train_rows=5, eval_queries=2), range(4)))
    assert sorted(generated) == [False, False, False, True]
    assert synthetic.is_current(tmp_path / "syn", synthetic.params(5, 2, 0))
