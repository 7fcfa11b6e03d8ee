"""Synthetic generator v2 (the default): realistic lengths and vocabulary, topic-specific instructions, labels that
agree with the design, the labels column in the schema."""

import json
import re
from pathlib import Path

import pytest

from infembed.data import synthetic
from infembed.data.schema import COLUMNS, LABELS, DataError, expand_labels, satisfies, validate_row
from infembed.data.sources import LocalSource


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    out = tmp_path_factory.mktemp("v2") / "data"
    synthetic.generate(out, train_rows=600, eval_queries=20, seed=0)
    return out


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_v2_is_the_default_and_recorded_in_the_manifest(v2):
    manifest = json.loads((v2 / "manifest.json").read_text())
    assert (
        manifest["generator"] == "v2"
        and manifest["difficulty"] == "hard"
        and manifest["version"] == synthetic.VERSION
    )
    assert not synthetic.is_current(v2, synthetic.params(600, 20, 0, generator="v1"))
    with pytest.raises(ValueError, match=r"data.synthetic.generator=.v3.: expected one of v1, v2"):
        synthetic.params(5, 2, 0, generator="v3")


def test_text_is_birco_like_not_a_30_word_toy(v2):
    rows = read_jsonl(v2 / "train.jsonl")
    lengths = [len(r[c].split()) for r in rows for c in COLUMNS if "document" in c]
    assert min(lengths) >= 100 and max(lengths) <= 300
    assert min(len(r[c].split()) for r in rows for c in ("query_positive", "query_negative")) > 5
    vocabulary = {w for r in rows for c in COLUMNS for w in words(r[c])}
    assert len(vocabulary) > 1000  # v1: 404 word types
    assert len({r["instruction_positive"] for r in rows}) > 300  # v1: 32 distinct instruction texts


def test_instructions_name_the_query_topic(v2):
    for row in read_jsonl(v2 / "train.jsonl"):
        topic = row[LABELS]["query_positive"]["topic"]
        assert topic in row["instruction_positive"] and topic in row["query_positive"]
        assert row[LABELS]["instruction_positive"]["topic"] == topic


@pytest.mark.parametrize("part", ["train.jsonl", "heldout.jsonl"])
def test_labels_agree_with_the_three_triplets(v2, part):
    for row in read_jsonl(v2 / part):
        (i_pos, q_pos, p_pos), (i_neg, _, hn1), (_, q_neg, hn2) = expand_labels(row)
        relevant = lambda p, q, i: satisfies(p, q) and satisfies(p, i)  # noqa: E731
        assert relevant(p_pos, q_pos, i_pos) and relevant(hn1, q_pos, i_neg) and relevant(hn2, q_neg, i_pos)
        assert not relevant(p_pos, q_pos, i_neg) and not relevant(hn1, q_pos, i_pos)
        assert not relevant(hn2, q_pos, i_pos) and not relevant(p_pos, q_neg, i_pos)
        # hard negative 1 differs from P+ in the flipped attribute only, so its text keeps most words
        assert len(set(row["document_positive"].split()) & set(row["hard_negative_document_1"].split())) > 60


def test_decoys_are_satisfied_by_their_passage_and_differ_from_its_instruction(v2):
    for row in read_jsonl(v2 / "train.jsonl"):
        decoys = row[LABELS]["decoys"]
        assert set(decoys) == {"document_positive", "hard_negative_document_1", "hard_negative_document_2"}
        assert all(len(texts) == 3 for texts in decoys.values())
        assert row["instruction_positive"] not in decoys["document_positive"]
        assert row["instruction_negative"] not in decoys["hard_negative_document_1"]
        topic = row[LABELS]["query_positive"]["topic"]
        assert all(topic in text for texts in decoys.values() for text in texts)


def test_heldout_is_unseen_topics_two_constraints_and_unseen_contexts(v2):
    manifest = json.loads((v2 / "manifest.json").read_text())
    train, heldout = read_jsonl(v2 / "train.jsonl"), read_jsonl(v2 / "heldout.jsonl")
    assert not {r[LABELS]["query_positive"]["topic"] for r in train} & set(manifest["heldout_topics"])
    assert {r[LABELS]["query_positive"]["topic"] for r in heldout} <= set(manifest["heldout_topics"])
    assert all(len(r[LABELS]["instruction_positive"]) == 3 for r in heldout)  # topic + two attributes
    train_openings = {r["instruction_positive"].split(".")[0] for r in train}
    assert not {r["instruction_positive"].split(".")[0] for r in heldout} & train_openings
    queries = read_jsonl(v2 / "followir" / "queries.jsonl")
    assert len(queries) == 20 and all(q["instruction_og"] != q["instruction_changed"] for q in queries)


def test_generated_rows_pass_the_schema_with_their_labels(v2):
    assert LocalSource(str(v2 / "train.jsonl")).scan().rows == 600
    raw = read_jsonl(v2 / "train.jsonl")[0]
    assert validate_row(raw, "f.jsonl", "line 1")[LABELS] == raw[LABELS]
    assert LABELS not in validate_row({c: raw[c] for c in COLUMNS}, "f.jsonl", "line 1")  # real InF-IR rows


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ("topic=chess", "labels"),
        ({"query_positive": {"topic": "chess"}}, "labels.query_negative"),
        ("passage attribute of a list", "labels.document_positive"),
        ("decoys not a list", "labels.decoys.document_positive"),
    ],
)
def test_malformed_labels_name_the_field(v2, labels, field, tmp_path):
    raw = read_jsonl(v2 / "train.jsonl")[0]
    if labels == "passage attribute of a list":
        labels = dict(raw[LABELS], document_positive={"audience": [0]})
    elif labels == "decoys not a list":
        labels = dict(raw[LABELS], decoys={"document_positive": "one text"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(raw) + "\n" + json.dumps(dict(raw, labels=labels)) + "\n")
    with pytest.raises(DataError, match=rf"bad.jsonl: line 2: field '{re.escape(field)}': expected"):
        LocalSource(str(bad)).scan()
