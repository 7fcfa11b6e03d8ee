"""Corpus embeddings with an on-disk cache, reranking of candidate pools and exact full-corpus top-k.

The encoder is anything with ``encode_pairs(queries, instructions, batch_size, show_progress)``,
``encode_passages(texts, batch_size, show_progress)``, ``fingerprint(passages_only)`` and ``text.max_passage_length`` (the project's
``BiEncoder``): embeddings are L2-normalised, so a dot product is the cosine similarity.

Cache: one file per (the encoder's passage fingerprint, corpus content hash, max passage length) under ``cache_dir``, holding the
ids and embeddings of every document encoded so far; a later call encodes only the documents it lacks.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

BACKENDS = ("torch", "faiss")  # exact chunked matmul | faiss IndexFlatIP (pip install faiss-cpu)


def cache_path(cache_dir: str | os.PathLike, fingerprint: str, corpus_key: str, max_length: int) -> Path:
    key = hashlib.blake2b(f"{fingerprint}|{corpus_key}|{max_length}".encode(), digest_size=16).hexdigest()
    return Path(cache_dir) / f"corpus-{key}.pt"


def _load_cache(path: Path) -> tuple[list[str], torch.Tensor | None]:
    if not path.is_file():
        return [], None
    blob = torch.load(path, map_location="cpu", weights_only=True)
    return list(blob["ids"]), blob["embeddings"]


def _save_cache(path: Path, ids: list[str], embeddings: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"ids": ids, "embeddings": embeddings}, tmp)
    os.replace(tmp, path)  # atomic: a crashed run never leaves a half-written cache


def encode_corpus(
    encoder,
    corpus: Mapping[str, str],
    doc_ids: Sequence[str],
    corpus_key: str,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
) -> torch.Tensor:
    """Embeddings (len(doc_ids), D) of ``doc_ids`` in that order, reusing and extending the cache when given."""
    path = None
    if cache_dir:
        path = cache_path(
            cache_dir, encoder.fingerprint(passages_only=True), corpus_key, encoder.text.max_passage_length
        )
    cached_ids, cached = _load_cache(path) if path else ([], None)
    index = {doc: i for i, doc in enumerate(cached_ids)}
    missing = [doc for doc in dict.fromkeys(doc_ids) if doc not in index]
    if missing:
        texts = [corpus[d] for d in missing]
        fresh = encoder.encode_passages(texts, batch_size=batch_size, show_progress=show_progress)  # (M, D)
        cached = fresh if cached is None else torch.cat([cached, fresh])  # (n_cached + n_missing, D)
        for doc in missing:
            index[doc] = len(index)
        if path:
            _save_cache(path, cached_ids + missing, cached)
    rows = torch.tensor([index[d] for d in doc_ids], dtype=torch.long)
    return cached[rows] if len(doc_ids) else torch.empty(0, 0)  # (len(doc_ids), D)


def rerank(
    query_ids: Sequence[str],
    query_emb: torch.Tensor,
    pools: Mapping[str, Sequence[str]],
    doc_emb: torch.Tensor,
    doc_index: Mapping[str, int],
) -> dict[str, dict[str, float]]:
    """Score each query (Q, D) against its own pool; ``doc_index`` maps doc ids to rows of ``doc_emb`` (N, D)."""
    run = {}
    for qid, vector in zip(query_ids, query_emb):
        docs = list(pools.get(qid, ()))
        rows = torch.tensor([doc_index[d] for d in docs], dtype=torch.long)
        scores = doc_emb[rows] @ vector if docs else torch.empty(0)  # (P,)
        run[qid] = dict(zip(docs, scores.tolist()))
    return run


def exact_top_k(
    query_emb: torch.Tensor, doc_emb: torch.Tensor, k: int, chunk_size: int = 16384
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact inner-product top-k over the corpus in chunks: (Q, D) x (N, D) -> scores, indices (Q, min(k, N)).

    Memory is O(Q · (k + chunk_size)) instead of the O(Q · N) full score matrix.
    """
    k = min(k, doc_emb.shape[0])
    best_scores = torch.full((query_emb.shape[0], 0), float("-inf"))  # (Q, 0)
    best_idx = torch.empty((query_emb.shape[0], 0), dtype=torch.long)
    for start in range(0, doc_emb.shape[0], chunk_size):
        block = query_emb @ doc_emb[start : start + chunk_size].T  # (Q, C)
        idx = torch.arange(start, start + block.shape[1]).expand_as(block)  # (Q, C)
        scores = torch.cat([best_scores, block], dim=1)  # (Q, k + C)
        cand = torch.cat([best_idx, idx], dim=1)  # (Q, k + C)
        best_scores, pos = scores.topk(min(k, scores.shape[1]), dim=1)  # (Q, k)
        best_idx = cand.gather(1, pos)  # (Q, k)
    return best_scores, best_idx


def faiss_top_k(query_emb: torch.Tensor, doc_emb: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same exact search through faiss ``IndexFlatIP`` (optional dependency: ``pip install faiss-cpu``)."""
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "retrieval backend 'faiss' needs the faiss package: pip install faiss-cpu"
        ) from None
    index = faiss.IndexFlatIP(doc_emb.shape[1])
    index.add(doc_emb.numpy())
    scores, idx = index.search(query_emb.numpy(), min(k, doc_emb.shape[0]))
    return torch.from_numpy(scores), torch.from_numpy(idx)


def retrieve(
    query_ids: Sequence[str],
    query_emb: torch.Tensor,
    doc_ids: Sequence[str],
    doc_emb: torch.Tensor,
    k: int,
    backend: str = "torch",
) -> dict[str, dict[str, float]]:
    """Full-corpus retrieval: ``{qid: {docid: score}}`` with each query's exact top k."""
    if backend not in BACKENDS:
        raise ValueError(f"retrieval backend {backend!r}: expected 'torch' or 'faiss'")
    search = exact_top_k if backend == "torch" else faiss_top_k
    scores, idx = search(query_emb, doc_emb, k)  # (Q, k), (Q, k)
    return {
        qid: {doc_ids[i]: s for i, s in zip(row_idx.tolist(), row_scores.tolist())}
        for qid, row_scores, row_idx in zip(query_ids, scores, idx)
    }


__all__ = ["cache_path", "encode_corpus", "exact_top_k", "faiss_top_k", "rerank", "retrieve"]
