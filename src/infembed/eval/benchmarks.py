"""Benchmark readers: local BEIR-style folders, local FollowIR-format folders, and the same layouts from the hub.

Local BEIR-style folder::

    DIR/corpus.jsonl          {"_id", "text", "title"?}        (title and text are joined "title text")
    DIR/queries.jsonl         {"_id", "text", "instruction"?}  (other fields ignored)
    DIR/qrels/<split>.tsv     "query-id<TAB>corpus-id<TAB>score" with a header line; graded or fractional scores
    DIR/candidates.jsonl      {"query-id", "corpus-ids": [...]} (optional: each query's pool to rerank)

Local FollowIR-format folder (what ``infembed.data.synthetic`` writes)::

    DIR/corpus.jsonl          {"_id", "text", "title"?}
    DIR/queries.jsonl         {"_id", "text", "instruction_og", "instruction_changed"}
    DIR/qrels/og.tsv          relevance under the original instruction (or qrels/og/<split>.tsv)
    DIR/qrels/changed.tsv     relevance under the changed instruction
    DIR/candidates.jsonl      optional, as above

Only queries with at least one qrels row in the split are evaluated. Bad input raises ``BenchmarkDataError`` naming
the file, the line and what was expected; qrels or candidate rows that point to an unknown query or document are
dropped from the candidate pools with one ``BenchmarkWarning`` giving the counts (trec_eval style; they stay in the
qrels, so recall and the nDCG ideal still count them, as trec_eval does).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class BenchmarkDataError(ValueError):
    """A benchmark file is missing or malformed; the message names the file, line and expectation."""


class BenchmarkWarning(UserWarning):
    """Recoverable problems in benchmark data (dangling qrels rows, unknown candidates)."""


@dataclass
class RetrievalBenchmark:
    """One retrieval task: texts, instructions, graded qrels and (optionally) a candidate pool per query."""

    name: str
    corpus: dict[str, str]  # doc id -> text
    queries: dict[str, str]  # query id -> text (only queries with qrels in the split)
    instructions: dict[str, str]  # query id -> instruction ("" when none)
    qrels: dict[str, dict[str, float]]
    candidates: dict[str, list[str]] | None = None  # query id -> doc ids to rerank; None: full corpus
    corpus_key: str = ""  # content hash of the corpus source, part of the embedding-cache key
    pool_from_qrels: bool = False  # qrels list judged non-relevant docs too (BIRCO-style pools)


@dataclass
class FollowIRBenchmark:
    """FollowIR-style task: each query under an original and a changed instruction, with qrels for both."""

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    instruction_og: dict[str, str]
    instruction_changed: dict[str, str]
    qrels_og: dict[str, dict[str, float]]
    qrels_changed: dict[str, dict[str, float]]
    candidates: dict[str, list[str]] | None = None
    corpus_key: str = ""

    def changed_docs(self) -> dict[str, list[str]]:
        """Docs relevant (> 0) under the original instruction and not relevant under the changed one."""
        return {
            qid: [d for d, rel in rels.items() if rel > 0 and self.qrels_changed.get(qid, {}).get(d, 0) <= 0]
            for qid, rels in self.qrels_og.items()
        }


def file_digest(path: str | os.PathLike) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BenchmarkDataError(f"{path}: {what} not found")
    return path


def iter_jsonl(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)``; blank lines skipped; each required field must be present."""
    with open(_require_file(path, "file"), encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise BenchmarkDataError(f"{path}:{lineno}: malformed JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise BenchmarkDataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            for key in required:
                if key not in row:
                    raise BenchmarkDataError(f"{path}:{lineno}: missing field {key!r}")
            yield lineno, row


def _text_field(path: Path, lineno: int, row: dict, key: str, optional: bool = False) -> str:
    value = row.get(key, "" if optional else None)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise BenchmarkDataError(f"{path}:{lineno}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def _row_id(path: Path, lineno: int, row: dict, key: str, seen: dict[str, int]) -> str:
    value = row[key]
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise BenchmarkDataError(f"{path}:{lineno}: field {key!r} must be a string id, got {value!r}")
    value = str(value)
    if value in seen:
        raise BenchmarkDataError(f"{path}:{lineno}: duplicate {key} {value!r} (first on line {seen[value]})")
    seen[value] = lineno
    return value


def read_corpus(path: Path) -> dict[str, str]:
    """``{doc_id: "title text"}`` (just the text when there is no title)."""
    corpus, seen = {}, {}
    for lineno, row in iter_jsonl(path, ("_id", "text")):
        doc_id = _row_id(path, lineno, row, "_id", seen)
        title = _text_field(path, lineno, row, "title", optional=True).strip()
        text = _text_field(path, lineno, row, "text")
        corpus[doc_id] = f"{title} {text}" if title else text
    if not corpus:
        raise BenchmarkDataError(f"{path}: empty corpus (no documents)")
    return corpus


def read_queries(path: Path, instruction_fields: tuple[str, ...], required: bool) -> dict[str, dict[str, str]]:
    """``{query_id: {"text": ..., <instruction field>: ...}}``; instruction fields default to "" unless required."""
    queries, seen = {}, {}
    needed = ("_id", "text") + (instruction_fields if required else ())
    for lineno, row in iter_jsonl(path, needed):
        qid = _row_id(path, lineno, row, "_id", seen)
        entry = {"text": _text_field(path, lineno, row, "text")}
        for key in instruction_fields:
            entry[key] = _text_field(path, lineno, row, key, optional=not required)
        queries[qid] = entry
    if not queries:
        raise BenchmarkDataError(f"{path}: no queries")
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, float]]:
    """TSV ``query-id, corpus-id, score`` with an optional header line; integer labels stay ints."""
    qrels: dict[str, dict[str, float]] = {}
    with open(_require_file(path, "qrels file"), encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n\r").split("\t")
            if len(parts) != 3:
                raise BenchmarkDataError(
                    f"{path}:{lineno}: expected 3 tab-separated columns query-id, corpus-id, score; got {len(parts)}"
                )
            qid, doc, raw = parts
            if lineno == 1 and qid == "query-id":
                continue
            qrels.setdefault(qid, {})
            if doc in qrels[qid]:
                raise BenchmarkDataError(f"{path}:{lineno}: duplicate qrels row for query {qid!r}, document {doc!r}")
            qrels[qid][doc] = _parse_score(path, lineno, raw)
    if not qrels:
        raise BenchmarkDataError(f"{path}: no qrels rows")
    return qrels


def _parse_score(path: Path, lineno: int, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BenchmarkDataError(f"{path}:{lineno}: score {raw!r} is not a number") from None
    return int(value) if value.is_integer() else value


def read_candidates(path: Path) -> dict[str, list[str]]:
    candidates, seen = {}, {}
    for lineno, row in iter_jsonl(path, ("query-id", "corpus-ids")):
        qid = _row_id(path, lineno, row, "query-id", seen)
        ids = row["corpus-ids"]
        if not isinstance(ids, list):
            raise BenchmarkDataError(f"{path}:{lineno}: field 'corpus-ids' must be a list of ids")
        candidates[qid] = [str(d) for d in dict.fromkeys(ids)]
    return candidates


def _warn_dangling(source: str, pairs: dict[str, dict] | dict[str, list], queries: dict, corpus: dict) -> None:
    unknown_q = sum(1 for qid in pairs if qid not in queries)
    unknown_d = sum(1 for qid, docs in pairs.items() if qid in queries for d in docs if d not in corpus)
    if unknown_q or unknown_d:
        warnings.warn(
            f"{source}: {unknown_q} queries not in queries.jsonl and {unknown_d} rows with documents not in "
            "corpus.jsonl; they are ignored for ranking",
            BenchmarkWarning,
            stacklevel=3,
        )


def _pools(source: dict[str, list] | dict[str, dict], queries: dict, corpus: dict) -> dict[str, list[str]]:
    return {qid: [d for d in docs if d in corpus] for qid, docs in source.items() if qid in queries}


def _candidates(root: Path, all_queries: dict, queries: dict, corpus: dict) -> dict[str, list[str]] | None:
    """Pools of the evaluated ``queries`` from ``candidates.jsonl``; unknown ids warned about against all queries."""
    path = root / "candidates.jsonl"
    if not path.is_file():
        return None
    raw = read_candidates(path)
    _warn_dangling(str(path), raw, all_queries, corpus)
    return _pools(raw, queries, corpus)


def _split_qrels_path(root: Path, split: str, variant: str | None = None) -> Path:
    if variant is None:
        return root / "qrels" / f"{split}.tsv"
    flat = root / "qrels" / f"{variant}.tsv"
    return flat if flat.is_file() else root / "qrels" / variant / f"{split}.tsv"


def is_followir_folder(root: str | os.PathLike) -> bool:
    root = Path(root)
    return (root / "qrels" / "og.tsv").is_file() or (root / "qrels" / "og").is_dir()


def load_beir_folder(root: str | os.PathLike, split: str = "test", name: str | None = None) -> RetrievalBenchmark:
    """Read a local BEIR-style folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkDataError(f"{root}: benchmark folder not found")
    qrels_path = _split_qrels_path(root, split)
    corpus = read_corpus(root / "corpus.jsonl")
    all_queries = read_queries(root / "queries.jsonl", ("instruction",), required=False)
    qrels = read_qrels(qrels_path)
    _warn_dangling(str(qrels_path), qrels, all_queries, corpus)
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    if not queries:
        raise BenchmarkDataError(f"{qrels_path}: no qrels row refers to a query in {root / 'queries.jsonl'}")
    candidates = _candidates(root, all_queries, queries, corpus)
    return RetrievalBenchmark(
        name=name or root.name,
        corpus=corpus,
        queries={qid: q["text"] for qid, q in queries.items()},
        instructions={qid: q["instruction"] for qid, q in queries.items()},
        qrels={qid: qrels[qid] for qid in queries},
        candidates=candidates,
        corpus_key=file_digest(root / "corpus.jsonl"),
        pool_from_qrels=all(any(rel <= 0 for rel in qrels[qid].values()) for qid in queries),
    )


def qrels_pools(bench: RetrievalBenchmark) -> dict[str, list[str]]:
    """Each query's judged documents that exist in the corpus (BIRCO: the pool to rerank)."""
    return _pools(bench.qrels, bench.queries, bench.corpus)


def load_followir_folder(root: str | os.PathLike, split: str = "test", name: str | None = None) -> FollowIRBenchmark:
    """Read a local FollowIR-format folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkDataError(f"{root}: benchmark folder not found")
    corpus = read_corpus(root / "corpus.jsonl")
    fields = ("instruction_og", "instruction_changed")
    all_queries = read_queries(root / "queries.jsonl", fields, required=True)
    og_path, changed_path = _split_qrels_path(root, split, "og"), _split_qrels_path(root, split, "changed")
    qrels_og, qrels_changed = read_qrels(og_path), read_qrels(changed_path)
    _warn_dangling(str(og_path), qrels_og, all_queries, corpus)
    queries = {qid: all_queries[qid] for qid in qrels_og if qid in all_queries}
    if not queries:
        raise BenchmarkDataError(f"{og_path}: no qrels row refers to a query in {root / 'queries.jsonl'}")
    return FollowIRBenchmark(
        name=name or root.name,
        corpus=corpus,
        queries={qid: q["text"] for qid, q in queries.items()},
        instruction_og={qid: q["instruction_og"] for qid, q in queries.items()},
        instruction_changed={qid: q["instruction_changed"] for qid, q in queries.items()},
        qrels_og={qid: qrels_og[qid] for qid in queries},
        qrels_changed={qid: qrels_changed.get(qid, {}) for qid in queries},
        candidates=_candidates(root, all_queries, queries, corpus),
        corpus_key=file_digest(root / "corpus.jsonl"),
    )


def load_benchmark(
    path: str, split: str = "test", fmt: str = "auto", name: str | None = None
) -> RetrievalBenchmark | FollowIRBenchmark:
    """A local folder (``fmt``: ``auto`` detects FollowIR by ``qrels/og.tsv``) or a hub dataset name."""
    if fmt not in ("auto", "beir", "followir"):
        raise ValueError(f"benchmark format {fmt!r}: expected 'auto', 'beir' or 'followir'")
    if Path(path).is_dir():
        followir = fmt == "followir" or (fmt == "auto" and is_followir_folder(path))
        return (load_followir_folder if followir else load_beir_folder)(path, split, name)
    if "/" in path and not Path(path).exists() and not path.startswith((".", "/")):
        from infembed.eval.hub import load_hub_benchmark

        return load_hub_benchmark(path, split, fmt, name)
    raise BenchmarkDataError(f"{path}: benchmark folder not found (and not a hub dataset name 'org/name')")


__all__ = [
    "BenchmarkDataError",
    "BenchmarkWarning",
    "FollowIRBenchmark",
    "RetrievalBenchmark",
    "is_followir_folder",
    "load_beir_folder",
    "load_benchmark",
    "load_followir_folder",
    "qrels_pools",
    "read_corpus",
    "read_qrels",
    "read_queries",
]
