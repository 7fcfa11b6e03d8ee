"""Cross-device negatives: all-gather pair and passage embeddings with gradients.

Each rank computes the loss of its own n rows against the N = W·n global columns and returns the mean over its
rows. ``torch.distributed.nn.functional.all_gather`` sums the gradients of every rank's copy of a shard back to
its owner, and the local shard is put back in its slot so its own graph is kept. With DDP averaging gradients
over W ranks:

    (1/W) Σ_r ∂/∂θ [ (1/n) Σ_{i ∈ r} ℓ_i ] = ∂/∂θ [ (1/N) Σ_i ℓ_i ]

which is the single-process gradient on the global batch (and the loss averaged over ranks is its loss).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


class UnequalShardError(ValueError):
    """Ranks hold different numbers of rows, so global column indices would not line up."""


def world_size_if_gathering(gather: bool) -> int:
    """W when gathering applies (``gather`` and an initialised process group with W > 1), else 1."""
    if gather and dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather_rows(iq: Tensor, passages: Tensor) -> tuple[Tensor, Tensor, int]:
    """All-gather (n, D) local pairs and passages to (W·n, D) with gradients; returns (iq_all, p_all, offset)."""
    _check_equal_shards(iq.shape[0], iq.device)
    rank = dist.get_rank()
    return _gather(iq, rank), _gather(passages, rank), rank * iq.shape[0]


def _gather(x: Tensor, rank: int) -> Tensor:
    shards = list(torch.distributed.nn.functional.all_gather(x))  # W × (n, D)
    shards[rank] = x  # the local shard keeps its own graph
    return torch.cat(shards, dim=0)  # (W·n, D)


def _check_equal_shards(n_local: int, device: torch.device) -> None:
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([n_local], dtype=torch.long, device=device))
    found = [int(s.item()) for s in sizes]
    if len(set(found)) != 1:
        raise UnequalShardError(
            f"cross-device negatives need the same number of rows on every rank; got rows per rank {found} "
            "(use equal per-device batch sizes and drop_last=True, or build the loss with gather=False)"
        )
