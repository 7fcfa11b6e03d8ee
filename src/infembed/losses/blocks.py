"""The three conditionals (docs/method.md, "The three conditionals") as score blocks.

Every block describes, for each local row i, the *negative* candidates of its softmax (the positive
s_ii = s(z_i, p_i) = ⟨z_i, p_i⟩/τ is shared by all three and kept apart, so a combiner can count it once):

    block "p"   (ℓ_P):  { s(z_i, p_j) : j ≠ i }          over the global batch of passages
    block "iq"  (ℓ_IQ): { s(p_i, z_j) : j ≠ i }          over the global batch of pairs (the transpose of "p")
    block "i"   (ℓ_I):  { s(z_{i←j}, p_i) : j ∈ S_i }    row-local, K instruction-swap slots, padding masked

A block is reduced to two numbers per row: the log-sum-exp of its negative scores (through
``infembed.kernels``, so no block ever materialises more than that primitive needs) and, detached, its hardest
negative in cosine units (for logging; the kernels return the maximum score from the same pass, so logging
costs no extra pass). Rows with no negative get ``-inf`` for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from infembed.kernels import similarity_lse, similarity_lse_rowcol
from infembed.kernels.precision import compute_dtype

BLOCK_NAMES = ("p", "iq", "i")


@dataclass(frozen=True)
class BatchView:
    """What one process sees of the batch.

    ``iq``/``passages`` are this process's rows, ``iq_all``/``passages_all`` the global columns (the same
    tensors in one process; all-gathered with gradients under DDP), and local row i's positive column in the
    global batch is ``i + offset``.
    """

    iq: Tensor  # (n, D) local z_i
    passages: Tensor  # (n, D) local p_i
    iq_all: Tensor  # (N, D) global z_j
    passages_all: Tensor  # (N, D) global p_j
    offset: int  # rank * n
    iq_swapped: Tensor | None  # (n, K, D) z_{i←j}
    swap_mask: Tensor | None  # (n, K) bool, False = padding slot
    scale: float  # 1 / τ
    backend: str  # infembed.kernels backend

    @property
    def gathered(self) -> bool:
        return self.iq_all.shape[0] != self.iq.shape[0]


@dataclass(frozen=True)
class BlockScores:
    """Per-row summary of one block's negatives."""

    lse: Tensor  # (n,) float32 (float64 inputs: float64), log Σ_{negatives j} e^{s_ij}; -inf when the row has none
    hardest: Tensor  # (n,) same dtype, detached, max negative cosine; -inf when the row has none


def positive_scores(view: BatchView) -> Tensor:
    """s_ii = ⟨z_i, p_i⟩ / τ in float32 (float64 for float64 inputs). Returns (n,)."""
    dtype = compute_dtype(view.iq.dtype)
    return (view.iq.to(dtype) * view.passages.to(dtype)).sum(-1) * view.scale  # (n,)


def compute_blocks(names: tuple[str, ...], view: BatchView) -> dict[str, BlockScores]:
    """Compute exactly the blocks in ``names``.

    In one process ℓ_P and ℓ_IQ share one matrix Z·Pᵀ (row and column log-sum-exp from the same tiles);
    under DDP each is a local-rows × global-columns log-sum-exp.
    """
    out: dict[str, BlockScores] = {}
    if "p" in names and "iq" in names and not view.gathered:
        out["p"], out["iq"] = _passage_and_pair_blocks(view)
    else:
        if "p" in names:
            out["p"] = _cross_block(view.iq, view.passages_all, view)
        if "iq" in names:
            out["iq"] = _cross_block(view.passages, view.iq_all, view)
    if "i" in names:
        out["i"] = _instruction_block(view)
    return {name: out[name] for name in names}


def _cross_block(rows: Tensor, columns: Tensor, view: BatchView) -> BlockScores:
    """Negatives {s(rows_i, columns_j) : j ≠ i + offset}: ℓ_P with (z, P_all), ℓ_IQ with (p, Z_all)."""
    lse, top = similarity_lse(
        rows,
        columns,
        view.scale,
        exclude_diagonal=True,
        backend=view.backend,
        diagonal_offset=view.offset,
        with_max=True,
    )  # (n,), (n,) the largest negative score
    return BlockScores(lse=lse, hardest=top / view.scale)


def _passage_and_pair_blocks(view: BatchView) -> tuple[BlockScores, BlockScores]:
    """ℓ_P (rows of Z·Pᵀ) and ℓ_IQ (its columns) from one pass, single process only."""
    row_lse, col_lse, row_top, col_top = similarity_lse_rowcol(
        view.iq, view.passages, view.scale, exclude_diagonal=True, backend=view.backend, with_max=True
    )  # (N,) each; the maxima are scores
    return BlockScores(row_lse, row_top / view.scale), BlockScores(col_lse, col_top / view.scale)


def _instruction_block(view: BatchView) -> BlockScores:
    """Negatives {s(z_{i←j}, p_i) : valid slot j} — a (n, K) block, never gathered."""
    swapped, mask, dtype = view.iq_swapped, view.swap_mask, compute_dtype(view.iq.dtype)
    with torch.autocast(device_type=swapped.device.type, enabled=False):
        cos = torch.einsum("nkd,nd->nk", swapped.to(dtype), view.passages.to(dtype))  # (n, K)
    if mask is None:
        mask = torch.ones_like(cos, dtype=torch.bool)  # (n, K)
    has_any = mask.any(-1, keepdim=True)  # (n, 1)
    # Fully padded rows are summed over zeros (finite gradient) and then replaced by -inf: an all -inf
    # logsumexp would back-propagate NaN.
    scores = (cos * view.scale).masked_fill(~mask, float("-inf"))  # (n, K)
    scores = torch.where(has_any, scores, torch.zeros_like(scores))  # (n, K)
    lse = torch.where(has_any[:, 0], torch.logsumexp(scores, -1), float("-inf"))  # (n,)
    floor = cos.new_full((cos.shape[0], 1), float("-inf"))  # (n, 1): keeps amax defined when K = 0
    hardest = torch.cat([cos.detach().masked_fill(~mask, float("-inf")), floor], -1).amax(-1)  # (n,)
    return BlockScores(lse=lse, hardest=hardest)
