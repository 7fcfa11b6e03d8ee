"""Benchmark readers: local BEIR-style folders, local FollowIR-format folders, and the same layouts from the hub.

Local BEIR-style folder::

    DIR/corpus.jsonl          {"_id", "text", "title"?}        (title and text are joined "title text")
    DIR/queries.jsonl         {"_id", "text", "instruction"?, "cluster"?}  (other fields ignored)
    DIR/qrels/<split>.tsv     "query-id<TAB>corpus-id<TAB>score" with a header line; graded or fractional scores
    DIR/candidates.jsonl      {"query-id", "corpus-ids": [...]} (optional: each query's pool to rerank)

Local FollowIR-format folder (what ``infembed.data.synthetic`` writes)::

    DIR/corpus.jsonl          {"_id", "text", "title"?}
    DIR/queries.jsonl         {"_id", "text", "instruction_og", "instruction_changed", "cluster"?}
    DIR/qrels/og.tsv          relevance under the original instruction (or qrels/og/<split>.tsv)
    DIR/qrels/changed.tsv     relevance under the changed instruction
    DIR/candidates.jsonl      optional, as above

The queries evaluated are those with qrels rows in the split. ``cluster`` (a string, optional) names a group of
queries that are not independent (e.g. the synthetic held-out set's attribute pair); results carry it to the report,
which then resamples whole clusters. Local folders and hub datasets go through the same
checks. Each of these stops the load with one ``BenchmarkDataError`` naming the file and line (hub: dataset, config
and row) and what was expected, before anything is encoded or written:

- a missing file or folder, bytes that are not UTF-8, malformed JSON, a row that is not an object, a missing or
  non-string field (a UTF-8 byte-order mark and CRLF line ends are read as plain UTF-8);
- a duplicate id in the corpus, the queries or the candidates, a duplicate (query, document) qrels row, a score that
  is not a finite number (NaN or inf would silently change the metrics);
- an empty corpus, no queries, no qrels rows;
- a qrels row naming a query that is not in the queries (the metrics would silently average over fewer queries);
- FollowIR: original and changed qrels that judge different queries, or no document whose relevance the changed
  instruction removes (p-MRR is undefined).

Three mismatches are recoverable and give one ``BenchmarkWarning`` naming the first offending file:line and the
count (the third: the ids):

- a qrels row naming a document that is not in the corpus (common in public BEIR data): it can never be retrieved,
  but it stays in the qrels, so recall and the nDCG ideal still count it, as trec_eval does;
- a candidates row naming an unknown query or document: dropped from the pools;
- a judged query whose text is empty: it is scored on its instruction alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from infembed.errors import UserError
from infembed.eval import hub
from infembed.hub_ids import is_hub_id

FOLLOWIR_FIELDS = ("instruction_og", "instruction_changed")
Location = str  # "path:line" for a file, "dataset (config) row i" for a hub table
Records = Iterable[tuple[Location, dict]]


class BenchmarkDataError(UserError):
    """A benchmark file is missing or malformed; the message names the file, line and expectation."""


class BenchmarkWarning(UserWarning):
    """Recoverable problems in benchmark data (qrels naming unknown documents, unknown candidates)."""


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
    clusters: dict[str, str] = field(default_factory=dict)  # query id -> cluster (queries that name one)


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
    clusters: dict[str, str] = field(default_factory=dict)  # query id -> cluster (queries that name one)

    def changed_docs(self) -> dict[str, list[str]]:
        """Docs relevant (> 0) under the original instruction and not relevant under the changed one."""
        return {
            qid: [d for d, rel in rels.items() if rel > 0 and self.qrels_changed.get(qid, {}).get(d, 0) <= 0]
            for qid, rels in self.qrels_og.items()
        }


@dataclass
class Table:
    """Parsed rows of one file or hub config, with where each key came from (for messages)."""

    source: str
    rows: dict
    where: dict = field(default_factory=dict)  # key -> Location of its first row

    def first(self, qid: str) -> Location:
        """Location of the first row of query ``qid`` (qrels keys are (query, doc) pairs)."""
        return next(
            loc for key, loc in self.where.items() if (key[0] if isinstance(key, tuple) else key) == qid
        )


def passage_text(title: str | None, text: str) -> str:
    """A corpus entry as the encoder reads it: ``"title text"``, or just the text when the title is empty."""
    title = (title or "").strip()
    return f"{title} {text}" if title else text


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


def text_lines(path: Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` of a UTF-8 text file, line ends (LF or CRLF) and a leading byte-order mark removed;
    bytes that are not UTF-8 are an error naming the file, line and column."""
    with open(_require_file(path, what), "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise BenchmarkDataError(
                    f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
                ) from None
            yield lineno, line.rstrip("\r\n")


def iter_jsonl(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)``; blank lines skipped; each required field must be present."""
    for lineno, line in text_lines(path):
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


def jsonl_records(path: Path) -> Iterator[tuple[Location, dict]]:
    """``("path:line", row)`` for each JSON object of a JSON-lines file (fields are checked by the builders)."""
    for lineno, row in iter_jsonl(path, ()):
        yield f"{path}:{lineno}", row


def _field(where: Location, row: dict, key: str, optional: bool = False) -> str:
    """A string field; an optional one may be absent or null (read as "")."""
    if key not in row and not optional:
        raise BenchmarkDataError(f"{where}: missing field {key!r}")
    value = row.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise BenchmarkDataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def _id(where: Location, row: dict, key: str, seen: dict[str, Location] | None = None) -> str:
    """A string (or integer) id; with ``seen``, a repeated id is an error naming its first location."""
    if key not in row:
        raise BenchmarkDataError(f"{where}: missing field {key!r}")
    value = row[key]
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise BenchmarkDataError(f"{where}: field {key!r} must be a string id, got {value!r}")
    value = str(value)
    if seen is not None:
        if value in seen:
            raise BenchmarkDataError(f"{where}: duplicate {key} {value!r} (first at {seen[value]})")
        seen[value] = where
    return value


def corpus_table(records: Records, source: str) -> Table:
    """``{doc_id: passage_text(title, text)}``."""
    corpus, seen = {}, {}
    for where, row in records:
        doc_id = _id(where, row, "_id", seen)
        corpus[doc_id] = passage_text(_field(where, row, "title", optional=True), _field(where, row, "text"))
    if not corpus:
        raise BenchmarkDataError(f"{source}: empty corpus (no documents)")
    return Table(source, corpus, seen)


def queries_table(
    records: Records, source: str, instruction_fields: tuple[str, ...], required: bool
) -> Table:
    """``{query_id: {"text": ..., <instruction field>: ...}}``; instruction fields default to "" unless required."""
    queries, seen = {}, {}
    for where, row in records:
        qid = _id(where, row, "_id", seen)
        queries[qid] = {
            "text": _field(where, row, "text"),
            "cluster": _field(where, row, "cluster", True),
        } | {key: _field(where, row, key, optional=not required) for key in instruction_fields}
    if not queries:
        raise BenchmarkDataError(f"{source}: no queries")
    return Table(source, queries, seen)


def tsv_qrels_records(path: Path) -> Iterator[tuple[Location, dict]]:
    """``("path:line", {"query-id", "corpus-id", "score"})`` of a qrels TSV; a header line is skipped."""
    for lineno, line in text_lines(path, "qrels file"):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise BenchmarkDataError(
                f"{path}:{lineno}: expected 3 tab-separated columns query-id, corpus-id, score; got {len(parts)}"
            )
        if lineno == 1 and parts[0] == "query-id":
            continue
        yield f"{path}:{lineno}", dict(zip(("query-id", "corpus-id", "score"), parts))


def _score(where: Location, raw) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BenchmarkDataError(f"{where}: score {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise BenchmarkDataError(f"{where}: score {raw!r} is not a finite number")
    return int(value) if value.is_integer() else value


def qrels_table(records: Records, source: str) -> Table:
    """``{query_id: {doc_id: score}}`` (integer labels stay ints); ``where`` keyed by (query, doc)."""
    qrels, where = {}, {}
    for loc, row in records:
        qid, doc = _id(loc, row, "query-id"), _id(loc, row, "corpus-id")
        if (qid, doc) in where:
            raise BenchmarkDataError(
                f"{loc}: duplicate qrels row for query {qid!r}, document {doc!r} (first at {where[qid, doc]})"
            )
        where[qid, doc] = loc
        qrels.setdefault(qid, {})[doc] = _score(loc, row.get("score"))
    if not qrels:
        raise BenchmarkDataError(f"{source}: no qrels rows")
    return Table(source, qrels, where)


def candidates_table(records: Records, source: str) -> Table:
    """Pools from rows ``{"query-id", "corpus-ids": [...]}`` (local, mteb) or ``{"qid", "pid"}`` (one pair a row);
    ``where`` keyed by (query, doc)."""
    pools, where, seen = {}, {}, {}
    for loc, row in records:
        if "pid" in row:
            qid, docs = _id(loc, row, "qid"), [_id(loc, row, "pid")]
        else:
            qid, docs = _id(loc, row, "query-id", seen), row.get("corpus-ids")
            if not isinstance(docs, list):
                raise BenchmarkDataError(f"{loc}: field 'corpus-ids' must be a list of ids")
        for doc in map(str, docs):
            where.setdefault((qid, doc), loc)
            pools.setdefault(qid, {})[doc] = None
    return Table(source, {qid: list(docs) for qid, docs in pools.items()}, where)


def _warn(found: list[tuple[Location, str]], consequence: str) -> None:
    """One warning for all ``found`` (location, problem) pairs: the first named, the rest counted."""
    if found:
        where, problem = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        warnings.warn(f"{where}: {problem}{more}; {consequence}", BenchmarkWarning, stacklevel=4)


def _check_qrels(qrels: Table, queries: Table, corpus: Table) -> None:
    """Unknown queries are an error; unknown documents a warning (kept in the qrels, as trec_eval does)."""
    unknown = [qid for qid in qrels.rows if qid not in queries.rows]
    if unknown:
        raise BenchmarkDataError(
            f"{qrels.first(unknown[0])}: query {unknown[0]!r} is not in {queries.source} "
            f"({len(unknown)} qrels queries are unknown)"
        )
    missing = [
        (loc, f"document {doc!r} is not in {corpus.source}")
        for (_, doc), loc in qrels.where.items()
        if doc not in corpus.rows
    ]
    _warn(
        missing, "such rows stay in the qrels (recall and the nDCG ideal count them) but are never retrieved"
    )
    empty = [qid for qid in qrels.rows if not queries.rows[qid]["text"].strip()]
    if empty:
        shown = ", ".join(map(repr, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        warnings.warn(
            f"{queries.first(empty[0])}: {len(empty)} judged queries have empty text (ids {shown}); they are "
            "scored on their instruction alone",
            BenchmarkWarning,
            stacklevel=3,
        )


def _pools(
    candidates: Table | None, queries: Table, corpus: Table, kept: list[str]
) -> dict[str, list[str]] | None:
    """The evaluated queries' pools, unknown documents dropped; unknown queries or documents warned about once."""
    if candidates is None:
        return None
    unknown = [
        (
            loc,
            f"query {q!r} is not in {queries.source}"
            if q not in queries.rows
            else f"document {d!r} is not in {corpus.source}",
        )
        for (q, d), loc in candidates.where.items()
        if q not in queries.rows or d not in corpus.rows
    ]
    _warn(unknown, "dropped from the candidate pools")
    return {q: [d for d in candidates.rows[q] if d in corpus.rows] for q in kept if q in candidates.rows}


def _clusters(queries: Table, kept: list[str]) -> dict[str, str]:
    return {q: queries.rows[q]["cluster"] for q in kept if queries.rows[q]["cluster"]}


def build_beir(
    name: str, corpus: Table, queries: Table, qrels: Table, candidates: Table | None, corpus_key: str
) -> RetrievalBenchmark:
    """A checked ``RetrievalBenchmark`` from parsed tables (local files or hub configs alike)."""
    _check_qrels(qrels, queries, corpus)
    kept = list(qrels.rows)
    return RetrievalBenchmark(
        name=name,
        corpus=corpus.rows,
        queries={q: queries.rows[q]["text"] for q in kept},
        instructions={q: queries.rows[q]["instruction"] for q in kept},
        qrels=qrels.rows,
        candidates=_pools(candidates, queries, corpus, kept),
        corpus_key=corpus_key,
        pool_from_qrels=all(any(rel <= 0 for rel in qrels.rows[q].values()) for q in kept),
        clusters=_clusters(queries, kept),
    )


def _check_same_queries(og: Table, changed: Table) -> None:
    for this, other in ((og, changed), (changed, og)):
        alone = [qid for qid in this.rows if qid not in other.rows]
        if alone:
            raise BenchmarkDataError(
                f"{this.first(alone[0])}: query {alone[0]!r} has no rows in {other.source} ({len(alone)} such "
                "queries); the original and changed qrels must judge the same queries"
            )


def build_followir(
    name: str,
    corpus: Table,
    queries: Table,
    og: Table,
    changed: Table,
    candidates: Table | None,
    corpus_key: str,
) -> FollowIRBenchmark:
    """A checked ``FollowIRBenchmark`` from parsed tables (local files or hub configs alike)."""
    _check_qrels(og, queries, corpus)
    _check_qrels(changed, queries, corpus)
    _check_same_queries(og, changed)
    kept = list(og.rows)
    bench = FollowIRBenchmark(
        name=name,
        corpus=corpus.rows,
        queries={q: queries.rows[q]["text"] for q in kept},
        instruction_og={q: queries.rows[q]["instruction_og"] for q in kept},
        instruction_changed={q: queries.rows[q]["instruction_changed"] for q in kept},
        qrels_og=og.rows,
        qrels_changed=changed.rows,
        candidates=_pools(candidates, queries, corpus, kept),
        corpus_key=corpus_key,
        clusters=_clusters(queries, kept),
    )
    if not any(bench.changed_docs().values()):
        raise BenchmarkDataError(
            f"{changed.source}: no document relevant in {og.source} is non-relevant here, so p-MRR is undefined; "
            "expected the changed instruction to make some relevant documents non-relevant"
        )
    return bench


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """A qrels TSV -> ``{query_id: {doc_id: score}}``."""
    return qrels_table(tsv_qrels_records(Path(path)), str(path)).rows


def _split_qrels_path(root: Path, split: str, variant: str | None = None) -> Path:
    if variant is None:
        return root / "qrels" / f"{split}.tsv"
    flat = root / "qrels" / f"{variant}.tsv"
    return flat if flat.is_file() else root / "qrels" / variant / f"{split}.tsv"


def is_followir_folder(root: str | os.PathLike) -> bool:
    root = Path(root)
    return (root / "qrels" / "og.tsv").is_file() or (root / "qrels" / "og").is_dir()


def _folder(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkDataError(f"{root}: benchmark folder not found")
    return root


def _local(path: Path, read, *args) -> Table:
    return read(jsonl_records(path), str(path), *args)


def _local_qrels(path: Path) -> Table:
    return qrels_table(tsv_qrels_records(path), str(path))


def _local_candidates(root: Path) -> Table | None:
    path = root / "candidates.jsonl"
    return _local(path, candidates_table) if path.is_file() else None


def load_beir_folder(
    root: str | os.PathLike, split: str = "test", name: str | None = None
) -> RetrievalBenchmark:
    """Read a local BEIR-style folder (see the module docstring)."""
    root = _folder(root)
    return build_beir(
        name or root.name,
        _local(root / "corpus.jsonl", corpus_table),
        _local(root / "queries.jsonl", queries_table, ("instruction",), False),
        _local_qrels(_split_qrels_path(root, split)),
        _local_candidates(root),
        file_digest(root / "corpus.jsonl"),
    )


def load_followir_folder(
    root: str | os.PathLike, split: str = "test", name: str | None = None
) -> FollowIRBenchmark:
    """Read a local FollowIR-format folder (see the module docstring)."""
    root = _folder(root)
    return build_followir(
        name or root.name,
        _local(root / "corpus.jsonl", corpus_table),
        _local(root / "queries.jsonl", queries_table, FOLLOWIR_FIELDS, True),
        _local_qrels(_split_qrels_path(root, split, "og")),
        _local_qrels(_split_qrels_path(root, split, "changed")),
        _local_candidates(root),
        file_digest(root / "corpus.jsonl"),
    )


def qrels_pools(bench: RetrievalBenchmark) -> dict[str, list[str]]:
    """Each query's judged documents that exist in the corpus (BIRCO: the pool to rerank)."""
    return {
        qid: [d for d in docs if d in bench.corpus]
        for qid, docs in bench.qrels.items()
        if qid in bench.queries
    }


def _hub(name: str, config: str | None, read, *args, split: str | None = None) -> Table:
    source = f"{name} ({config or 'default'})"
    try:
        rows = hub.table(name, config, split)
    except LookupError as err:  # the split is missing: say which ones exist
        raise BenchmarkDataError(f"{source}: {err}") from None
    return read(((f"{source} row {i}", row) for i, row in enumerate(rows)), source, *args)


def load_hub_benchmark(
    name: str, split: str = "test", fmt: str = "auto", display_name: str | None = None
) -> RetrievalBenchmark | FollowIRBenchmark:
    """A hub dataset in the FollowIR or BEIR layout (``infembed.eval.hub``), checked like a local folder."""
    try:
        configs = hub.config_names(name)
    except Exception as err:  # noqa: BLE001 -- offline, unknown name, no permission: say which dataset and why
        raise BenchmarkDataError(
            f"{name}: cannot read this hub dataset ({type(err).__name__}: {err})"
        ) from None
    label = display_name or name.split("/")[-1]
    corpus = _hub(name, "corpus", corpus_table)
    if fmt == "followir" or (fmt == "auto" and "qrels_og" in configs):
        return build_followir(
            label,
            corpus,
            _hub(name, "queries", queries_table, FOLLOWIR_FIELDS, True),
            _hub(name, "qrels_og", qrels_table, split=split),
            _hub(name, "qrels_changed", qrels_table, split=split),
            _hub(name, "top_ranked", candidates_table) if "top_ranked" in configs else None,
            f"hub:{name}",
        )
    return build_beir(
        label,
        corpus,
        _hub(name, "queries", queries_table, ("instruction",), False),
        _hub(name, None, qrels_table, split=split),
        None,
        f"hub:{name}",
    )


FORMATS = ("auto", "beir", "followir")  # auto: FollowIR when qrels/og.tsv exists


def load_benchmark(
    path: str, split: str = "test", fmt: str = "auto", name: str | None = None
) -> RetrievalBenchmark | FollowIRBenchmark:
    """A local folder (``fmt``: ``auto`` detects FollowIR by ``qrels/og.tsv``) or a hub dataset ``org/name``."""
    if fmt not in FORMATS:
        raise ValueError(f"benchmark format {fmt!r}: expected 'auto', 'beir' or 'followir'")
    if is_hub_id(path):
        return load_hub_benchmark(path, split, fmt, name)
    root = _folder(path)
    followir = fmt == "followir" or (fmt == "auto" and is_followir_folder(root))
    return (load_followir_folder if followir else load_beir_folder)(root, split, name)


__all__ = [
    "BenchmarkDataError",
    "BenchmarkWarning",
    "FollowIRBenchmark",
    "RetrievalBenchmark",
    "build_beir",
    "build_followir",
    "is_followir_folder",
    "load_beir_folder",
    "load_benchmark",
    "load_followir_folder",
    "load_hub_benchmark",
    "passage_text",
    "qrels_pools",
    "read_qrels",
]
