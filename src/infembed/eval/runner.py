"""Evaluation loop: benchmark -> encode (cached corpus) -> run -> metrics; config entry point and result tables.

The ``benchmark`` config group (``conf/benchmark/*.yaml``) builds a :class:`BenchmarkSpec`: its fields are the
group's keys, the YAML files hold their defaults, ``__post_init__`` checks their values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infembed.errors import ConfigError, check_choice
from infembed.eval.benchmarks import (
    BenchmarkDataError,
    FollowIRBenchmark,
    RetrievalBenchmark,
    load_benchmark,
    load_followir_folder,
    qrels_pools,
)
from infembed.eval.metrics import DEFAULT_METRICS, evaluate_per_query, p_mrr_per_query, trec_ranking
from infembed.eval.retrieval import encode_corpus, rerank, retrieve
from infembed.eval.sensitivity import instruction_hits, read_heldout
from infembed.results import NO_INSTRUCTION

SYNTHETIC = "synthetic"  # the benchmark name of the synthetic held-out topics in results
SYNTHETIC_METRICS = ("ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity")


@dataclass
class EvalResult:
    """One benchmark row: metric means, per-query values ``{metric: {query_id: value}}``, the ranking run and the
    benchmark's query clusters ``{query_id: cluster}`` (empty when it names none)."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    clusters: dict[str, str] = field(default_factory=dict)

    def add(self, metric: str, per_query: Mapping[str, float]) -> None:
        """Add a metric given per query; its value is the mean over queries."""
        self.per_query[metric] = dict(per_query)
        self.metrics[metric] = sum(per_query.values()) / len(per_query)


def _result(run, qrels, metrics: Sequence[str]) -> EvalResult:
    """Means and per-query values of ``metrics`` over the queries in both run and qrels."""
    by_query = evaluate_per_query(run, qrels, metrics)  # {qid: {metric: value}}
    if not by_query:
        raise BenchmarkDataError(
            f"no query is in both the run ({len(run)} queries) and the qrels ({len(qrels)} queries)"
        )
    result = EvalResult({}, {}, run)
    for name in metrics:
        result.add(name, {qid: values[name] for qid, values in by_query.items()})
    return result


MODES = ("auto", "rerank", "retrieve")
FORMATS = ("auto", "beir", "followir")
BACKENDS = ("torch", "faiss")


@dataclass(frozen=True)
class BenchmarkSpec:
    """What to evaluate and how: one ``benchmark`` config group (the YAML files hold the defaults).

    ``path``: a folder, a hub dataset name, or a list of them (one table row each); ``name``: row name(s) (default:
    the folder name); ``split``: ``qrels/<split>.tsv``; ``format``: ``auto`` (FollowIR when ``qrels/og.tsv``
    exists) / ``beir`` / ``followir``; ``use_instruction``: true / false / ``both`` (rows with and without the
    instruction); ``mode``: ``auto`` (rerank when a pool exists: ``candidates.jsonl``, or qrels that list judged
    non-relevant docs), ``rerank``, ``retrieve``; ``top_k``: depth of full-corpus retrieval; ``metrics``: e.g.
    ``[ndcg@10, map@1000]`` (FollowIR-format data adds ``p-mrr``); ``batch_size``: encoding batch size;
    ``cache_dir``: corpus-embedding cache (null: none); ``retrieval_backend``: ``torch`` (exact chunked matmul) or
    ``faiss``; ``root``: a free key for interpolation (BIRCO: ``path: [${..root}/arguana, ...]``).
    """

    path: str | Sequence[str] | None
    name: str | Sequence[str] | None
    split: str
    format: str
    use_instruction: bool | str
    mode: str
    top_k: int
    metrics: Sequence[str]
    batch_size: int
    cache_dir: str | None
    retrieval_backend: str
    root: str | None = None

    def __post_init__(self) -> None:
        check_choice(self.format, FORMATS, "benchmark.format")
        check_choice(self.mode, MODES, "benchmark.mode")
        check_choice(self.retrieval_backend, BACKENDS, "benchmark.retrieval_backend")
        if not (isinstance(self.use_instruction, bool) or self.use_instruction == "both"):
            raise ConfigError(
                f"benchmark.use_instruction={self.use_instruction!r}: expected true, false or 'both'"
            )
        for key in ("top_k", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"benchmark.{key}={value!r}: expected an integer >= 1")
        if self.name is not None and len(_as_list(self.name)) != len(self.paths):
            raise ConfigError(
                f"benchmark.name has {len(_as_list(self.name))} entries for {len(self.paths)} paths"
            )

    @property
    def paths(self) -> list[str]:
        return [str(p) for p in _as_list(self.path)] if self.path else []

    @property
    def names(self) -> list[str | None]:
        return _as_list(self.name) if self.name is not None else [None] * len(self.paths)

    @property
    def instruction_variants(self) -> list[bool]:
        """``[True, False]`` for ``both``, else ``[use_instruction]``."""
        return [True, False] if self.use_instruction == "both" else [bool(self.use_instruction)]


def _pools(bench: RetrievalBenchmark | FollowIRBenchmark, mode: str) -> dict[str, list[str]] | None:
    """The candidate pools to rerank, or None for full-corpus retrieval."""
    if mode == "retrieve":
        return None
    if bench.candidates is not None:
        return bench.candidates
    if isinstance(bench, RetrievalBenchmark) and (mode == "rerank" or bench.pool_from_qrels):
        return qrels_pools(bench)
    if mode == "rerank":
        raise BenchmarkDataError(f"{bench.name}: mode=rerank needs a candidates.jsonl (FollowIR-format data)")
    return None


def _runs(
    encoder,
    bench,
    instructions: Sequence[Mapping[str, str]],
    mode,
    top_k,
    batch_size,
    cache_dir,
    backend,
    show_progress,
) -> list[dict[str, dict[str, float]]]:
    """One run per instruction mapping, sharing the corpus embeddings."""
    qids = list(bench.queries)
    pools = _pools(bench, mode)
    doc_ids = list(dict.fromkeys(d for docs in pools.values() for d in docs)) if pools else list(bench.corpus)
    doc_emb = encode_corpus(
        encoder, bench.corpus, doc_ids, bench.corpus_key, cache_dir, batch_size, show_progress
    )
    runs = []
    for mapping in instructions:
        query_emb = encoder.encode_pairs(  # (Q, D)
            [bench.queries[q] for q in qids], [mapping.get(q, "") for q in qids], batch_size, show_progress
        )
        if pools is not None:
            runs.append(rerank(qids, query_emb, pools, doc_emb, {d: i for i, d in enumerate(doc_ids)}))
        else:
            runs.append(retrieve(qids, query_emb, doc_ids, doc_emb, top_k, backend))
    return runs


def evaluate_benchmark(
    encoder,
    bench: RetrievalBenchmark | FollowIRBenchmark,
    metrics: Sequence[str] = DEFAULT_METRICS,
    use_instruction: bool = True,
    mode: str = "auto",
    top_k: int = 1000,
    batch_size: int = 64,
    cache_dir: str | None = None,
    retrieval_backend: str = "torch",
    show_progress: bool = False,
) -> EvalResult:
    """Metrics, per-query values and the (original-instruction) run of one benchmark.

    FollowIR-format data: metrics on the original instruction and original qrels, plus ``p-mrr`` (fraction) from
    the runs under the original and the changed instruction.
    """
    args = (mode, top_k, batch_size, cache_dir, retrieval_backend, show_progress)
    if isinstance(bench, FollowIRBenchmark):
        og, changed = (bench.instruction_og, bench.instruction_changed) if use_instruction else ({}, {})
        run_og, run_changed = _runs(encoder, bench, [og, changed], *args)
        result = _result(run_og, bench.qrels_og, metrics)
        result.add("p-mrr", p_mrr_per_query(run_og, run_changed, bench.changed_docs()))
    else:
        (run,) = _runs(encoder, bench, [bench.instructions if use_instruction else {}], *args)
        result = _result(run, bench.qrels, metrics)
    result.clusters = dict(bench.clusters)
    return result


def evaluate_synthetic(encoder, data_dir: str | os.PathLike, batch_size: int = 64) -> EvalResult:
    """``ndcg@10``, ``mrr@10``, ``p-mrr`` and ``instruction_sensitivity`` on the synthetic layout of ``data_dir``:
    ``followir/`` (local FollowIR format) and ``heldout.jsonl`` (InF-IR rows, per-row hits keyed by row number).
    Nothing is cached."""
    data_dir = Path(data_dir)
    bench = load_followir_folder(data_dir / "followir")
    result = evaluate_benchmark(encoder, bench, SYNTHETIC_METRICS[:2], batch_size=batch_size)
    hits = instruction_hits(encoder, read_heldout(data_dir / "heldout.jsonl"), batch_size)
    result.add("instruction_sensitivity", {str(row): hit for row, hit in enumerate(hits)})
    return result


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def write_run(run: Mapping[str, Mapping[str, float]], path: str | os.PathLike, tag: str = "infembed") -> None:
    """TREC run file (``qid Q0 docid rank score tag``), in trec_eval order, for checking with trec_eval itself."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for qid in sorted(run):
            handle.writelines(
                f"{qid} Q0 {doc} {rank} {run[qid][doc]:.8f} {tag}\n"
                for rank, doc in enumerate(trec_ranking(run[qid]), start=1)
            )


def evaluate_from_config(
    encoder, benchmark: BenchmarkSpec, output_dir: str | os.PathLike | None = None, show_progress: bool = True
) -> dict[str, EvalResult]:
    """Evaluate every benchmark of ``benchmark`` -> ``{row_name: EvalResult}``.

    With ``output_dir``, also writes ``runs/<row>.trec`` there (``metrics.json`` is the results writer's:
    :mod:`infembed.results`).
    """
    if not benchmark.paths:
        raise ConfigError("benchmark.path is not set: give a folder, a hub dataset name or a list of them")
    results = {}
    for path, name in zip(benchmark.paths, benchmark.names):
        bench = load_benchmark(path, benchmark.split, benchmark.format, name)
        for use_instruction in benchmark.instruction_variants:
            row = bench.name if use_instruction else bench.name + NO_INSTRUCTION
            results[row] = evaluate_benchmark(
                encoder,
                bench,
                list(benchmark.metrics),
                use_instruction,
                mode=benchmark.mode,
                top_k=benchmark.top_k,
                batch_size=benchmark.batch_size,
                cache_dir=benchmark.cache_dir,
                retrieval_backend=benchmark.retrieval_backend,
                show_progress=show_progress,
            )
            if output_dir is not None:
                write_run(
                    results[row].run,
                    Path(output_dir) / "runs" / f"{row.replace(' ', '_').replace('/', '_')}.trec",
                )
    return results


__all__ = [
    "SYNTHETIC",
    "BenchmarkSpec",
    "EvalResult",
    "evaluate_benchmark",
    "evaluate_from_config",
    "evaluate_synthetic",
    "write_run",
]
