"""Evaluation loop: benchmark -> encode (cached corpus) -> run -> metrics; config entry point and result tables.

Benchmark config (``conf/benchmark/*.yaml``, passed here as a plain dict):

| key | meaning |
|---|---|
| ``path`` | a folder, a hub dataset name, or a list of them (one table row each) |
| ``name`` | row name(s) (default: the folder name) |
| ``split`` | qrels split: ``qrels/<split>.tsv`` |
| ``format`` | ``auto`` (FollowIR when ``qrels/og.tsv`` exists) / ``beir`` / ``followir`` |
| ``use_instruction`` | ``true`` / ``false`` / ``both`` (rows with and without the instruction) |
| ``mode`` | ``auto`` (rerank when a pool exists: ``candidates.jsonl``, or qrels that list judged non-relevant docs), ``rerank``, ``retrieve`` |
| ``top_k`` | depth of full-corpus retrieval |
| ``metrics`` | e.g. ``[ndcg@10, map@1000]``; FollowIR-format data adds ``p-mrr`` |
| ``batch_size`` | encoding batch size |
| ``cache_dir`` | corpus-embedding cache (``null``: no cache) |
| ``retrieval_backend`` | ``torch`` (exact chunked matmul) or ``faiss`` |
| ``root`` | free helper key for interpolation (BIRCO: ``path: [${.root}/arguana, ...]``) |
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from infembed.eval.benchmarks import (
    BenchmarkDataError,
    FollowIRBenchmark,
    RetrievalBenchmark,
    load_benchmark,
    load_followir_folder,
    qrels_pools,
)
from infembed.eval.metrics import DEFAULT_METRICS, evaluate_run, p_mrr, trec_ranking
from infembed.eval.retrieval import encode_corpus, rerank, retrieve
from infembed.eval.sensitivity import instruction_sensitivity, read_heldout

CONFIG_KEYS = {
    "path", "name", "split", "format", "use_instruction", "mode", "top_k", "metrics", "batch_size", "cache_dir",
    "retrieval_backend", "root",
}
MODES = ("auto", "rerank", "retrieve")


def _pools(bench: RetrievalBenchmark | FollowIRBenchmark, mode: str) -> dict[str, list[str]] | None:
    """The candidate pools to rerank, or None for full-corpus retrieval."""
    if mode not in MODES:
        raise ValueError(f"benchmark.mode {mode!r}: expected one of {MODES}")
    if mode == "retrieve":
        return None
    if bench.candidates is not None:
        return bench.candidates
    if isinstance(bench, RetrievalBenchmark) and (mode == "rerank" or bench.pool_from_qrels):
        return qrels_pools(bench)
    if mode == "rerank":
        raise BenchmarkDataError(f"{bench.name}: mode=rerank needs a candidates.jsonl (FollowIR-format data)")
    return None


def _runs(encoder, bench, instructions: Sequence[Mapping[str, str]], mode, top_k, batch_size, cache_dir,
          backend, show_progress) -> list[dict[str, dict[str, float]]]:
    """One run per instruction mapping, sharing the corpus embeddings."""
    qids = list(bench.queries)
    pools = _pools(bench, mode)
    doc_ids = list(dict.fromkeys(d for docs in pools.values() for d in docs)) if pools else list(bench.corpus)
    doc_emb = encode_corpus(encoder, bench.corpus, doc_ids, bench.corpus_key, cache_dir, batch_size, show_progress)
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
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Metrics and the (original-instruction) run of one benchmark.

    FollowIR-format data: metrics on the original instruction and original qrels, plus ``p-mrr`` (fraction) from
    the runs under the original and the changed instruction.
    """
    args = (mode, top_k, batch_size, cache_dir, retrieval_backend, show_progress)
    if isinstance(bench, FollowIRBenchmark):
        og, changed = (bench.instruction_og, bench.instruction_changed) if use_instruction else ({}, {})
        run_og, run_changed = _runs(encoder, bench, [og, changed], *args)
        results = evaluate_run(run_og, bench.qrels_og, metrics)
        results["p-mrr"] = p_mrr(run_og, run_changed, bench.changed_docs())
        return results, run_og
    (run,) = _runs(encoder, bench, [bench.instructions if use_instruction else {}], *args)
    return evaluate_run(run, bench.qrels, metrics), run


def evaluate_synthetic(encoder, data_dir: str | os.PathLike, batch_size: int = 64) -> dict[str, float]:
    """``{"ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity"}`` on the synthetic layout of ``data_dir``:
    ``followir/`` (local FollowIR format) and ``heldout.jsonl`` (InF-IR rows). Nothing is cached."""
    data_dir = Path(data_dir)
    bench = load_followir_folder(data_dir / "followir")
    results, _ = evaluate_benchmark(encoder, bench, ["ndcg@10", "mrr@10"], batch_size=batch_size)
    results["instruction_sensitivity"] = instruction_sensitivity(
        encoder, read_heldout(data_dir / "heldout.jsonl"), batch_size
    )
    return results


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _variants(use_instruction) -> list[bool]:
    if use_instruction == "both":
        return [True, False]
    if isinstance(use_instruction, bool):
        return [use_instruction]
    raise ValueError(f"benchmark.use_instruction {use_instruction!r}: expected true, false or 'both'")


def write_run(run: Mapping[str, Mapping[str, float]], path: str | os.PathLike, tag: str = "infembed") -> None:
    """TREC run file (``qid Q0 docid rank score tag``), in trec_eval order, for checking with trec_eval itself."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for qid in sorted(run):
            for rank, doc in enumerate(trec_ranking(run[qid]), start=1):
                handle.write(f"{qid} Q0 {doc} {rank} {run[qid][doc]:.8f} {tag}\n")


def evaluate_from_config(
    encoder, benchmark: Mapping, output_dir: str | os.PathLike | None = None, show_progress: bool = True
) -> dict[str, dict[str, float]]:
    """Evaluate every benchmark of a resolved ``benchmark`` config group -> ``{row_name: metrics}``.

    With ``output_dir``, also writes ``runs/<row>.trec`` and ``benchmark_table.md`` there (``metrics.json`` is
    left to the caller: see ``write_metrics``).
    """
    unknown = set(benchmark) - CONFIG_KEYS
    if unknown:
        raise ValueError(f"benchmark config: unknown keys {sorted(unknown)}; valid keys: {sorted(CONFIG_KEYS)}")
    if not benchmark.get("path"):
        raise ValueError("benchmark.path is not set: give a folder, a hub dataset name or a list of them")
    paths = _as_list(benchmark["path"])
    names = _as_list(benchmark["name"]) if benchmark.get("name") else [None] * len(paths)
    if len(names) != len(paths):
        raise ValueError(f"benchmark.name has {len(names)} entries for {len(paths)} paths")
    metrics = list(benchmark.get("metrics") or DEFAULT_METRICS)
    results = {}
    for path, name in zip(paths, names):
        bench = load_benchmark(str(path), benchmark.get("split", "test"), benchmark.get("format", "auto"), name)
        for use_instruction in _variants(benchmark.get("use_instruction", True)):
            row = bench.name if use_instruction else f"{bench.name} (no instruction)"
            results[row], run = evaluate_benchmark(
                encoder, bench, metrics, use_instruction,
                mode=benchmark.get("mode", "auto"),
                top_k=int(benchmark.get("top_k", 1000)),
                batch_size=int(benchmark.get("batch_size", 64)),
                cache_dir=benchmark.get("cache_dir"),
                retrieval_backend=benchmark.get("retrieval_backend", "torch"),
                show_progress=show_progress,
            )
            if output_dir is not None:
                write_run(run, Path(output_dir) / "runs" / f"{row.replace(' ', '_').replace('/', '_')}.trec")
    if output_dir is not None:
        (Path(output_dir) / "benchmark_table.md").write_text(format_table(results) + "\n", encoding="utf-8")
    return results


def format_table(results: Mapping[str, Mapping[str, float]], scale: float = 100) -> str:
    """Markdown table, one row per benchmark/run, one column per metric (values x ``scale``, 1 decimal)."""
    columns = list(dict.fromkeys(metric for values in results.values() for metric in values))
    suffix = f" (x{scale:g})" if scale != 1 else ""
    lines = [f"| benchmark{suffix} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row, values in results.items():
        cells = [f"{values[c] * scale:.1f}" if c in values else "–" for c in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_metrics(results: Mapping[str, Mapping[str, float]], path: str | os.PathLike) -> None:
    """``metrics.json``: flat ``{metric: value}`` for one benchmark, ``{name: {metric: value}}`` for several."""
    payload = next(iter(results.values())) if len(results) == 1 else results
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


__all__ = [
    "evaluate_benchmark",
    "evaluate_from_config",
    "evaluate_synthetic",
    "format_table",
    "write_metrics",
    "write_run",
]
