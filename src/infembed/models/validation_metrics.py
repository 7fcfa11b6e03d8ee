"""Retrieval metrics of the validation batches, as torchmetrics objects (their state syncs across DDP ranks and
Lightning logs them at each validation check).

For a validation batch of N = 3 · rows triplets with pair embeddings z (N, D) and passages p (N, D), in the
collator's order (triplets 3r, 3r+1, 3r+2 of row r are (I+, Q+), (I-, Q+), (I+, Q-)):

- ``mrr`` and ``recall@1``: pairs → passages in the batch; query z_i ranks the N passages by ⟨z_i, p_j⟩ and its own
  p_i is its only relevant one;
- ``instruction_sensitivity``: per row r, hit iff ⟨z_3r, p_3r⟩ > ⟨z_3r+1, p_3r⟩ and ⟨z_3r, p_3r⟩ > ⟨z_3r+2, p_3r⟩
  (the held-out check of docs/method.md, "Metrics", on the validation rows).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.retrieval import RetrievalMRR, RetrievalRecall

TRIPLETS_PER_ROW = 3


class ValidationMetrics(nn.Module):
    """``update(z, p)`` per validation batch; ``metrics()`` maps log names to the metric objects."""

    def __init__(self) -> None:
        super().__init__()
        self.mrr = RetrievalMRR()
        self.recall_at_1 = RetrievalRecall(top_k=1)
        self.instruction_sensitivity = MeanMetric()
        self.queries_seen = 0

    @torch.no_grad()
    def update(self, iq: Tensor, passages: Tensor, rank: int = 0, world_size: int = 1) -> None:
        """iq, passages: (N, D) of this rank's validation batch."""
        n = iq.shape[0]
        scores = iq.float() @ passages.float().T  # (N, N)
        relevant = torch.eye(n, dtype=torch.bool, device=scores.device)  # (N, N)
        local = self.queries_seen + torch.arange(n, device=scores.device)  # (N,) this rank's query counter
        indexes = (local * world_size + rank).unsqueeze(1).expand(n, n)  # (N, N) unique over ranks
        # torchmetrics' retrieval metrics treat a score <= 0 as "not retrieved"; a per-query shift keeps the ranking
        ranked = scores - scores.amin(dim=1, keepdim=True) + 1.0  # (N, N), all >= 1
        self.mrr.update(ranked, relevant, indexes=indexes)
        self.recall_at_1.update(ranked, relevant, indexes=indexes)
        self.queries_seen += n
        rows = torch.arange(0, n - n % TRIPLETS_PER_ROW, TRIPLETS_PER_ROW, device=scores.device)  # (R,)
        if len(rows):
            positive = scores[rows, rows]  # (R,)
            hits = (positive > scores[rows + 1, rows]) & (positive > scores[rows + 2, rows])  # (R,)
            self.instruction_sensitivity.update(hits.float())

    def metrics(self) -> dict[str, Metric]:
        return {
            "mrr": self.mrr,
            "recall@1": self.recall_at_1,
            "instruction_sensitivity": self.instruction_sensitivity,
        }
