"""Hard-negative mining with a positive-aware false-negative filter (NV-Retriever's TopK-PercPos).

For a pair (Q, I) with judged positive P, the encoder retrieves the exact top ``top_k + |judged|`` passages of the
corpus (``eval.retrieval``: cosine scores, corpus embeddings cached); judged positives of the query are excluded,
and a candidate c is kept only if

    s(Q ⊕ I, c) < margin · s(Q ⊕ I, P)        (margin 0.95: candidates within 5 % of the positive are likely
                                               unjudged positives, i.e. false negatives)

Moreira et al., 2024, "NV-Retriever: Improving text embedding models with effective hard-negative mining".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from infembed.eval.retrieval import encode_corpus, exact_top_k

NEGATIVES = ("mined", "judged")  # build.mining.negatives: the whole corpus, or the query's judged non-relevant docs


@dataclass
class Mined:
    """One pair's candidates, best first: ``kept`` passed the filter, ``suspected`` scored ≥ margin · positive."""

    positive_score: float
    kept: list[str] = field(default_factory=list)
    kept_scores: list[float] = field(default_factory=list)
    suspected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MiningQuery:
    query: str
    instruction: str
    positive: str  # doc id of the judged positive the filter compares with
    excluded: frozenset[str]  # doc ids never returned (the query's judged positives)
    pool: frozenset[str] | None = None  # only these doc ids are candidates (None: the whole corpus)


def false_negative_mask(scores: torch.Tensor, positive_scores: torch.Tensor, margin: float) -> torch.Tensor:
    """(Q, K) candidate scores, (Q,) positive scores -> (Q, K) True where a candidate is kept:
    s_c < margin · s_P."""
    return scores < margin * positive_scores[:, None]  # (Q, K)


class Miner:
    """Corpus embeddings once per (encoder, corpus), then :meth:`mine` for any number of pairs."""

    def __init__(
        self,
        encoder,
        corpus: Mapping[str, str],
        corpus_key: str,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ):
        self.encoder, self.batch_size = encoder, batch_size
        self.doc_ids = list(corpus)
        self.row = {doc: i for i, doc in enumerate(self.doc_ids)}
        self.doc_emb = encode_corpus(
            encoder, corpus, self.doc_ids, corpus_key, cache_dir, batch_size
        )  # (N, D)

    def mine(self, queries: Sequence[MiningQuery], top_k: int, margin: float) -> list[Mined]:
        if not queries:
            return []
        pair_emb = self.encoder.encode_pairs(
            [q.query for q in queries], [q.instruction for q in queries], self.batch_size
        )  # (Q, D)
        positive_emb = self.doc_emb[torch.tensor([self.row[q.positive] for q in queries])]  # (Q, D)
        positive_scores = (pair_emb * positive_emb).sum(-1)  # (Q,)
        depth = top_k + max(len(q.excluded) for q in queries)
        scores, idx = exact_top_k(pair_emb, self.doc_emb, depth)  # (Q, depth), (Q, depth)
        ranked = [
            self._ranked_pool(q, z) if q.pool is not None else (s, i)
            for q, z, s, i in zip(queries, pair_emb, scores, idx)
        ]
        return [
            self._one(q, s, i, p, top_k, margin) for q, (s, i), p in zip(queries, ranked, positive_scores)
        ]

    def _ranked_pool(self, query: MiningQuery, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and rows of the query's pool, best first: (P,), (P,)."""
        rows = torch.tensor(sorted(self.row[d] for d in query.pool), dtype=torch.long)  # (P,)
        scores = self.doc_emb[rows] @ pair  # (P,)
        order = scores.argsort(descending=True)
        return scores[order], rows[order]

    def _one(self, query: MiningQuery, scores, rows, positive_score, top_k: int, margin: float) -> Mined:
        """One pair's candidates from (K,) scores and corpus rows, best first; excluded ids skipped."""
        keep = false_negative_mask(scores[None], positive_score[None], margin)[0]  # (K,)
        mined = Mined(positive_score.item())
        for score, row, kept in zip(scores.tolist(), rows.tolist(), keep.tolist()):
            doc = self.doc_ids[row]
            if doc in query.excluded or len(mined.kept) + len(mined.suspected) >= top_k:
                continue
            if kept:
                mined.kept.append(doc)
                mined.kept_scores.append(score)
            else:
                mined.suspected.append(doc)
        return mined
