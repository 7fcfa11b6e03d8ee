"""For the eval tests: a deterministic bag-of-words encoder and tiny benchmark folders on disk."""

import hashlib
import json
import re
from pathlib import Path

import torch
from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata

from infembed.eval.benchmarks import read_qrels
from infembed.text import TextSpec

from helpers import MINILM


class BagOfWordsEncoder:
    """Hashed bag-of-words embeddings (L2-normalised): the BiEncoder interface without a network.

    Counts encode_passages calls so tests can observe cache hits.
    """

    def __init__(
        self, dim: int = 64, max_passage_length: int = 512, pair_template: str = "{query} {instruction}"
    ):
        self.dim = dim
        self.text = TextSpec(MINILM, pair_template=pair_template, max_passage_length=max_passage_length)
        self.passage_calls, self.passages_encoded = 0, 0

    def _embed(self, text: str) -> torch.Tensor:
        vec = torch.zeros(self.dim)
        for token in re.findall(r"\w+", text.lower()):
            vec[int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dim] += 1.0
        return torch.nn.functional.normalize(vec, dim=0)

    def encode_pairs(self, queries, instructions, batch_size=64, show_progress=False):
        return torch.stack([self._embed(self.text.format_pair(q, i)) for q, i in zip(queries, instructions)])

    def encode_passages(self, texts, batch_size=64, show_progress=False):
        self.passage_calls += 1
        self.passages_encoded += len(texts)
        return torch.stack([self._embed(t) for t in texts])

    def fingerprint(self, passages_only: bool = False) -> str:
        return f"bow-{self.dim}"


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_qrels(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))


def make_beir(root: Path, with_negatives: bool = True) -> Path:
    """Three topics; the instruction ('about cats' / ...) names the relevant doc's topic."""
    corpus = [
        {"_id": "d1", "title": "Cats", "text": "cats purr and sleep"},
        {"_id": "d2", "text": "dogs bark and fetch"},
        {"_id": "d3", "text": "birds sing and fly"},
        {"_id": "d4", "text": "fish swim in water"},
    ]
    queries = [
        {"_id": "q1", "text": "pets", "instruction": "cats purr"},
        {"_id": "q2", "text": "pets", "instruction": "dogs bark"},
        {"_id": "q3", "text": "animals", "instruction": "birds fly"},
    ]
    rows = [("q1", "d1", 1), ("q2", "d2", 2), ("q3", "d3", 1)]
    if with_negatives:
        rows += [("q1", "d2", 0), ("q1", "d3", 0), ("q2", "d1", 0), ("q2", "d4", 0), ("q3", "d4", 0)]
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(root / "qrels" / "test.tsv", rows)
    return root


def make_followir(root: Path, candidates: bool = True) -> Path:
    corpus = [
        {"_id": "a", "text": "red apples grow on trees"},
        {"_id": "b", "text": "green apples are sour"},
        {"_id": "c", "text": "bananas are yellow"},
        {"_id": "e", "text": "apples apples"},
    ]
    queries = [
        {
            "_id": "q1",
            "text": "apples",
            "instruction_og": "any colour",
            "instruction_changed": "only green sour",
        },
        {
            "_id": "q2",
            "text": "yellow fruit",
            "instruction_og": "bananas",
            "instruction_changed": "not bananas",
        },
    ]
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(root / "qrels" / "og.tsv", [("q1", "a", 1), ("q1", "b", 1), ("q2", "c", 1)])
    write_qrels(root / "qrels" / "changed.tsv", [("q1", "a", 0), ("q1", "b", 1), ("q2", "c", 0)])
    if candidates:
        write_jsonl(
            root / "candidates.jsonl",
            [
                {"query-id": "q1", "corpus-ids": ["a", "b", "c", "e"]},
                {"query-id": "q2", "corpus-ids": ["a", "b", "c", "e"]},
            ],
        )
    return root


def make_heldout(path: Path, n: int = 4) -> Path:
    rows = [
        {
            "query_positive": f"topic {i} facts",
            "query_negative": f"other {i} matters",
            "instruction_positive": "short answer",
            "instruction_negative": "long essay",
            "document": f"topic {i} facts short answer",
            "hard_negative_document_1": "x",
            "hard_negative_document_2": "y",
        }
        for i in range(n)
    ]
    write_jsonl(path, rows)
    return path


LONG_QUERY_TOPICS = ("lava", "glaciers", "deserts")
LONG_QUERY_READERS = ("children", "experts", "children")  # the reader each query's instruction asks for


def make_long_query_beir(root: Path) -> Path:
    """Three queries of 400 words (a topic repeated: above max_pair_length 256 for any tokenizer), each with a short
    instruction naming the reader; every query judges all six passages ("<topic> for <reader>"), one relevant."""
    corpus = [
        {"_id": f"{topic}-{reader}", "text": f"{topic} for {reader}"}
        for topic in LONG_QUERY_TOPICS
        for reader in ("children", "experts")
    ]
    queries = [
        {"_id": f"q{n}", "text": f"tell me everything about {topic} " * 80, "instruction": f"for {reader}"}
        for n, (topic, reader) in enumerate(zip(LONG_QUERY_TOPICS, LONG_QUERY_READERS))
    ]
    qrels = [
        (query["_id"], doc["_id"], int(doc["_id"] == f"{topic}-{reader}"))
        for query, topic, reader in zip(queries, LONG_QUERY_TOPICS, LONG_QUERY_READERS)
        for doc in corpus
    ]
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(root / "qrels" / "test.tsv", qrels)
    return root


def local_task(root: Path) -> AbsTaskRetrieval:
    """An mteb retrieval task over a BEIR folder on disk (corpus.jsonl, queries.jsonl with instructions, qrels)."""

    def rows(name, rename):
        lines = (root / name).read_text().splitlines()
        return [{rename.get(k, k): v for k, v in json.loads(line).items()} for line in lines]

    class LocalInstructionRetrieval(AbsTaskRetrieval):
        metadata = TaskMetadata(
            name="LocalInstructionRetrieval",
            description="A BEIR folder written by the test.",
            reference=None,
            dataset={"path": str(root), "revision": "local"},
            type="InstructionRetrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=["test"],
            eval_langs=["eng-Latn"],
            main_score="ndcg_at_10",
            date=None,
            domains=None,
            task_subtypes=None,
            license=None,
            annotations_creators=None,
            dialect=None,
            sample_creation=None,
            bibtex_citation="",
        )

        def load_data(self, num_proc=None, **kwargs):
            corpus = [{"title": "", **row} for row in rows("corpus.jsonl", {"_id": "id"})]
            split = RetrievalSplitData(
                corpus=Dataset.from_list(corpus),
                queries=Dataset.from_list(rows("queries.jsonl", {"_id": "id"})),
                relevant_docs=read_qrels(root / "qrels" / "test.tsv"),
                top_ranked=None,
            )
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return LocalInstructionRetrieval()
