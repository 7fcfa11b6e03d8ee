"""Hugging Face hub benchmarks behind the same dataclasses as the local readers (needs internet; lazy import).

Layouts (as mteb's loaders read them; not verified against the hub from this offline machine):

- FollowIR (e.g. ``jhu-clsp/robust04-instructions``, ``jhu-clsp/core17-instructions``,
  ``jhu-clsp/news21-instructions`` and their ``-mteb`` copies): configs ``corpus`` (``_id``, ``title``, ``text``),
  ``queries`` (``_id``, ``text``, ``instruction_og``, ``instruction_changed``), ``qrels_og`` and ``qrels_changed``
  (split ``test``: ``query-id``, ``corpus-id``, ``score``) and ``top_ranked`` (``qid``, ``pid``: the pool to rerank).
- BEIR-style (e.g. ``mteb/<task>`` datasets, InstructIR-style copies with an ``instruction`` column): configs
  ``corpus``, ``queries`` (optional ``instruction``) and the default config holding the qrels per split.

``fmt="auto"`` picks FollowIR when the dataset has a ``qrels_og`` config.
"""
from __future__ import annotations

from collections.abc import Iterable

from infembed.eval.benchmarks import BenchmarkDataError, FollowIRBenchmark, RetrievalBenchmark


def _first_split(dataset):
    """A ``DatasetDict`` -> its first split; a ``Dataset`` as is."""
    return next(iter(dataset.values())) if hasattr(dataset, "values") else dataset


def _corpus(rows: Iterable[dict], source: str) -> dict[str, str]:
    corpus = {}
    for row in rows:
        title, text = (row.get("title") or "").strip(), row["text"] or ""
        corpus[str(row["_id"])] = f"{title} {text}" if title else text
    if not corpus:
        raise BenchmarkDataError(f"{source}: empty corpus")
    return corpus


def _qrels(rows: Iterable[dict]) -> dict[str, dict[str, float]]:
    qrels: dict[str, dict[str, float]] = {}
    for row in rows:
        score = float(row["score"])
        label = int(score) if score.is_integer() else score
        qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = label
    return qrels


def followir_from_rows(
    name, corpus_rows, query_rows, og_rows, changed_rows, top_ranked_rows=None
) -> FollowIRBenchmark:
    """Build a ``FollowIRBenchmark`` from hub-style row iterables (see the module docstring)."""
    corpus = _corpus(corpus_rows, name)
    queries = {str(row["_id"]): row for row in query_rows}
    qrels_og, qrels_changed = _qrels(og_rows), _qrels(changed_rows)
    kept = [qid for qid in qrels_og if qid in queries]
    candidates = None
    if top_ranked_rows is not None:
        candidates = {}
        for row in top_ranked_rows:
            if str(row["pid"]) in corpus:
                candidates.setdefault(str(row["qid"]), []).append(str(row["pid"]))
    return FollowIRBenchmark(
        name=name,
        corpus=corpus,
        queries={qid: queries[qid]["text"] for qid in kept},
        instruction_og={qid: queries[qid]["instruction_og"] for qid in kept},
        instruction_changed={qid: queries[qid]["instruction_changed"] for qid in kept},
        qrels_og={qid: qrels_og[qid] for qid in kept},
        qrels_changed={qid: qrels_changed.get(qid, {}) for qid in kept},
        candidates=candidates,
        corpus_key=f"hub:{name}",
    )


def beir_from_rows(name, corpus_rows, query_rows, qrels_rows) -> RetrievalBenchmark:
    """Build a ``RetrievalBenchmark`` from hub-style row iterables."""
    corpus = _corpus(corpus_rows, name)
    queries = {str(row["_id"]): row for row in query_rows}
    qrels = _qrels(qrels_rows)
    kept = [qid for qid in qrels if qid in queries]
    return RetrievalBenchmark(
        name=name,
        corpus=corpus,
        queries={qid: queries[qid]["text"] for qid in kept},
        instructions={qid: queries[qid].get("instruction") or "" for qid in kept},
        qrels={qid: qrels[qid] for qid in kept},
        corpus_key=f"hub:{name}",
        pool_from_qrels=all(any(rel <= 0 for rel in qrels[qid].values()) for qid in kept),
    )


def load_hub_benchmark(
    name: str, split: str = "test", fmt: str = "auto", display_name: str | None = None
) -> RetrievalBenchmark | FollowIRBenchmark:
    """Download ``name`` with ``datasets.load_dataset`` and convert it (FollowIR or BEIR layout)."""
    import datasets

    try:
        configs = datasets.get_dataset_config_names(name)
    except Exception as err:  # offline, unknown name, no permission: say which dataset and why
        raise BenchmarkDataError(f"{name}: cannot read this hub dataset ({type(err).__name__}: {err})") from None
    label = display_name or name.split("/")[-1]
    if fmt == "followir" or (fmt == "auto" and "qrels_og" in configs):
        return followir_from_rows(
            label,
            _first_split(datasets.load_dataset(name, "corpus")),
            _first_split(datasets.load_dataset(name, "queries")),
            datasets.load_dataset(name, "qrels_og")[split],
            datasets.load_dataset(name, "qrels_changed")[split],
            _first_split(datasets.load_dataset(name, "top_ranked")) if "top_ranked" in configs else None,
        )
    return beir_from_rows(
        label,
        _first_split(datasets.load_dataset(name, "corpus")),
        _first_split(datasets.load_dataset(name, "queries")),
        datasets.load_dataset(name)[split],
    )


__all__ = ["beir_from_rows", "followir_from_rows", "load_hub_benchmark"]
