"""Synthetic generator v1 (the earlier 30-word world, data.synthetic.generator=v1): deterministic bytes, InF-IR schema,
designed hard negatives, FollowIR-form set. v2 and the labels: test_data_synthetic_v2.py."""

import json
from pathlib import Path

import pytest

from infembed.data import synthetic
from infembed.data.schema import COLUMNS
from infembed.data.sources import LocalSource


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=synthetic.DIFFICULTIES)
def generated(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "data"
    synthetic.generate(out, train_rows=300, eval_queries=20, seed=0, difficulty=request.param, generator="v1")
    return out


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard") / "data"
    synthetic.generate(out, train_rows=300, eval_queries=20, seed=0, difficulty="hard", generator="v1")
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_seed_same_bytes_other_seed_differs(generated, tmp_path):
    difficulty = json.loads((generated / "manifest.json").read_text())["difficulty"]
    synthetic.generate(
        tmp_path / "again", train_rows=300, eval_queries=20, seed=0, difficulty=difficulty, generator="v1"
    )
    synthetic.generate(
        tmp_path / "other", train_rows=300, eval_queries=20, seed=1, difficulty=difficulty, generator="v1"
    )
    assert files(generated) == files(tmp_path / "again")
    other = files(tmp_path / "other")
    assert other.keys() == files(generated).keys() and other["train.jsonl"] != files(generated)["train.jsonl"]


def test_rows_follow_the_schema_and_the_design(generated):
    assert LocalSource(str(generated / "train.jsonl")).scan().rows == 300
    for row in read_jsonl(generated / "train.jsonl"):
        texts = {c: row[c] for c in COLUMNS}
        assert set(row) == {*COLUMNS, "labels"} and len(set(texts.values())) == 7
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
    assert not synthetic.ensure(out, train_rows=21, eval_queries=3, seed=0, difficulty="hard")  # the default
    assert synthetic.ensure(out, train_rows=21, eval_queries=3, seed=0, difficulty="easy", generator="v1")
    assert json.loads((out / "manifest.json").read_text())["difficulty"] == "easy"
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
        generated = list(
            pool.map(lambda _: synthetic.ensure(tmp_path / "syn", train_rows=5, eval_queries=2), range(4))
        )
    assert sorted(generated) == [False, False, False, True]
    assert synthetic.is_current(tmp_path / "syn", synthetic.params(5, 2, 0))


# -- difficulty ----------------------------------------------------------------------------------------------

# sha256 over (relative path, bytes) of every file but manifest.json, written by the version-1 generator
# (commit 8fe6c49) with train_rows=300, eval_queries=20, seed=0
VERSION_1_DIGEST = "807c1b155e0aef1dc828409c4ce2a0550881f5003a869a5b49cbcb82b3a43987"


def without_labels(line: str) -> str:
    dropped = ("labels", "cluster")
    return (
        json.dumps({k: v for k, v in json.loads(line).items() if k not in dropped}, ensure_ascii=False) + "\n"
    )


def test_easy_reproduces_the_version_1_generator(tmp_path):
    import hashlib

    synthetic.generate(
        tmp_path / "easy", train_rows=300, eval_queries=20, seed=0, difficulty="easy", generator="v1"
    )
    digest = hashlib.sha256()
    for name, data in files(tmp_path / "easy").items():
        if name in (
            "train.jsonl",
            "heldout.jsonl",
            "followir/queries.jsonl",
        ):  # version 3 adds labels and clusters
            data = "".join(without_labels(line) for line in data.decode().splitlines()).encode()
        if name != "manifest.json":
            digest.update(name.encode() + data)
    assert digest.hexdigest() == VERSION_1_DIGEST


def test_unknown_difficulty_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"data.synthetic.difficulty='medium': expected one of easy, hard"):
        synthetic.ensure(tmp_path / "data", train_rows=5, eval_queries=2, difficulty="medium")


# Independent decoders: attributes, topic and aspect read back from the text with the generator's tables only.


def passage_facts(text: str, topics: list[str]) -> tuple[str, str, dict[str, int]]:
    """(topic, aspect, attribute values) of a passage."""
    (topic,) = [t for t in topics if t in text]
    (aspect,) = [
        a
        for a, (_, _, follows) in synthetic.ASPECTS.items()
        if any(f.format(**tense) in text for f in follows for tense in synthetic.TENSES)
    ]
    values = {}
    for name in ("audience", "period", "stance"):
        (values[name],) = [v for v in (0, 1) if any(m in text for m in synthetic.ATTRIBUTES[name][v])]
    listed = any(m.split("{a}")[0] in text for m in synthetic.ATTRIBUTES["format"][0])
    values["format"] = 0 if listed else 1
    return topic, aspect, values


def query_facts(text: str, topics: list[str]) -> tuple[str, str]:
    (fact,) = [
        (t, a)
        for t in topics
        for a, (queries, _, _) in synthetic.ASPECTS.items()
        if text in {q.format(topic=t) for q in queries}
    ]
    return fact


def constraints(instruction: str) -> dict[str, tuple[int, bool]]:
    """attribute -> (required value, negated) for every constraint phrase in the instruction."""
    found = {}
    for name, by_value in synthetic.PHRASES.items():
        for value, phrases in enumerate(by_value):
            for phrase in phrases:
                at = instruction.find(phrase)
                if at >= 0:
                    negated = instruction[:at].endswith(synthetic.NEGATION)
                    assert name not in found, instruction
                    found[name] = (value ^ negated, negated)
    return found


def satisfies(values: dict[str, int], required: dict[str, tuple[int, bool]]) -> int:
    """How many of the constraints the attribute values satisfy."""
    return sum(values[name] == value for name, (value, _) in required.items())


def test_hard_relevance_is_exactly_query_match_and_every_constraint(hard):
    folder, topics = hard / "followir", json.loads((hard / "manifest.json").read_text())["heldout_topics"]
    corpus = {d["_id"]: passage_facts(d["text"], topics) for d in read_jsonl(folder / "corpus.jsonl")}
    candidates = {c["query-id"]: c["corpus-ids"] for c in read_jsonl(folder / "candidates.jsonl")}
    qrels = {key: read_qrels(folder / "qrels" / f"{key}.tsv") for key in ("og", "changed")}
    negated = two = 0
    for query in read_jsonl(folder / "queries.jsonl"):
        facts = query_facts(query["text"], topics)
        required = {key: constraints(query[f"instruction_{key}"]) for key in ("og", "changed")}
        n = len(required["og"])
        assert n in (1, 2) and required["og"].keys() == required["changed"].keys()
        assert sum(required["og"][a][0] != required["changed"][a][0] for a in required["og"]) == 1
        negated += sum(flag for _, flag in required["og"].values())
        two += n == 2
        partial = other_aspect = 0
        for doc in candidates[query["_id"]]:
            topic, aspect, values = corpus[doc]
            for key in ("og", "changed"):
                relevant = (topic, aspect) == facts and satisfies(values, required[key]) == n
                assert qrels[key][query["_id"]][doc] == int(relevant), (query, doc)
            partial += (topic, aspect) == facts and 0 < satisfies(values, required["og"]) < n
            on_other_aspect = topic == facts[0] and aspect != facts[1]
            other_aspect += on_other_aspect and satisfies(values, required["og"]) == n
        # partial matches (some constraints, not all; all on another aspect) are in every pool
        assert other_aspect >= 4 and (n == 1 or partial >= 4)
    assert negated >= 5 and two >= 10  # negated and two-attribute constraints occur, and are honoured above


def test_hard_heldout_rows_flip_one_constraint_of_the_instruction(hard):
    topics = json.loads((hard / "manifest.json").read_text())["heldout_topics"]
    for row in read_jsonl(hard / "heldout.jsonl"):
        positive = constraints(row["instruction_positive"])
        negative = constraints(row["instruction_negative"])
        assert len(positive) in (1, 2) and positive.keys() == negative.keys()
        _, _, values = passage_facts(row["document_positive"], topics)
        _, _, flipped = passage_facts(row["hard_negative_document_1"], topics)
        assert satisfies(values, positive) == satisfies(flipped, negative) == len(positive)
        assert satisfies(values, negative) == satisfies(flipped, positive) == len(positive) - 1, row


def test_hard_heldout_wordings_never_occur_in_training(hard, tmp_path):
    row_keys = ("instruction_positive", "instruction_negative")
    query_keys = ("instruction_og", "instruction_changed")
    train = [r[k] for r in read_jsonl(hard / "train.jsonl") for k in row_keys]
    heldout = [r[k] for r in read_jsonl(hard / "heldout.jsonl") for k in row_keys]
    heldout += [q[k] for q in read_jsonl(hard / "followir" / "queries.jsonl") for k in query_keys]
    phrases = [p for by_value in synthetic.PHRASES.values() for ps in by_value for p in ps]
    assert all(constraints(i) for i in heldout) and not [p for p in phrases if any(p in i for i in train)]
    starts = {t.split("{0}")[0] for ts in synthetic.TEMPLATES.values() for t in ts}
    assert all(any(i.startswith(s) for s in starts) for i in heldout)
    assert not any(i.startswith(s) for s in starts for i in train)
    # no shortcut: held-out instructions share no word of more than four letters with any passage
    passages = [d["text"] for d in read_jsonl(hard / "followir" / "corpus.jsonl")]
    passages += [r[k] for r in read_jsonl(hard / "heldout.jsonl") for k in COLUMNS if "document" in k]
    passage_words = {w.strip(".,:!;").lower() for text in passages for w in text.split()}
    instruction_words = {w.strip(".,").lower() for i in heldout for w in i.split() if len(w) > 4}
    assert not instruction_words & passage_words, instruction_words & passage_words
    # and the training rows are the easy ones, byte for byte
    synthetic.generate(
        tmp_path / "easy", train_rows=300, eval_queries=20, seed=0, difficulty="easy", generator="v1"
    )
    assert (tmp_path / "easy" / "train.jsonl").read_bytes() == (hard / "train.jsonl").read_bytes()


def test_heldout_queries_name_their_attribute_cluster(tmp_path):
    """The held-out FollowIR queries carry `cluster` (the hard set: its stable+changing attribute pair), which the
    evaluation reads and the report resamples as a unit."""
    from infembed.eval.benchmarks import load_benchmark

    paths = synthetic.generate(tmp_path / "hard", train_rows=5, eval_queries=60, seed=0, difficulty="hard")
    bench = load_benchmark(paths["followir"], "test")
    assert set(bench.clusters) == set(bench.queries)
    pairs = {tuple(c.split("+")) for c in bench.clusters.values()}
    assert all(len(p) == 2 and p[0] != p[1] and set(p) <= set(synthetic.ATTRIBUTE_NAMES) for p in pairs)
    assert 6 <= len(pairs) <= 12  # 4 attributes: at most 12 ordered pairs, most of them drawn in 60 queries
