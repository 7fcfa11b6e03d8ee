"""Naive backend: materialise S = scale · q kᵀ and take log-sum-exp along rows / columns.

This is the single source of truth the other backends are tested against. It is what plain torch does: the
matmul runs in the input precision (float64 stays float64, so ``torch.autograd.gradcheck`` works), the
log-sum-exp in float32 (float64 for float64 inputs). Memory is O(M·N) for S plus O(M·N) for its gradient.

Masking: with ``exclude_diagonal`` the entry j == i + diagonal_offset of row i is dropped (set to -inf). A row
(or column) whose entries are all dropped has lse = -inf and contributes a zero gradient.
"""

import torch

from infembed.kernels.precision import compute_dtype


def diagonal_mask(rows: torch.Tensor, n_cols: int, diagonal_offset: int) -> torch.Tensor:
    """Boolean (len(rows), n_cols) mask, True where column j == row i + diagonal_offset."""
    cols = torch.arange(n_cols, device=rows.device)  # (N,)
    return cols[None, :] == (rows[:, None] + diagonal_offset)  # (B, N)


def safe_logsumexp(s: torch.Tensor, dim: int) -> torch.Tensor:
    """logsumexp along ``dim`` that gives -inf, with zero gradient, for slices that are entirely -inf."""
    empty = torch.isneginf(s).all(dim=dim)  # (other dim,)
    lse = torch.logsumexp(s.masked_fill(empty.unsqueeze(dim), 0.0), dim=dim)
    return lse.masked_fill(empty, float("-inf"))


def naive_scores(
    q, k, scale: float, exclude_diagonal: bool = False, diagonal_offset: int = 0
) -> torch.Tensor:
    """S_ij = scale · q_i·k_j as a materialised (M, N) matrix in float32 (float64), masked entries -inf."""
    s = (q @ k.T).to(compute_dtype(q.dtype)) * scale  # (M, N)
    if exclude_diagonal:
        rows = torch.arange(q.shape[0], device=q.device)  # (M,)
        s = s.masked_fill(diagonal_mask(rows, k.shape[0], diagonal_offset), float("-inf"))
    return s


def naive_similarity_lse(q, k, scale: float, exclude_diagonal: bool = False, diagonal_offset: int = 0):
    """lse_i = log Σ_j exp(S_ij), j ≠ i + diagonal_offset when exclude_diagonal. Returns (M,)."""
    return safe_logsumexp(naive_scores(q, k, scale, exclude_diagonal, diagonal_offset), dim=1)


def naive_similarity_lse_rowcol(q, k, scale: float, exclude_diagonal: bool = False):
    """(row_lse (M,), col_lse (N,)) of one S: row_i = log Σ_j exp(S_ij), col_j = log Σ_i exp(S_ij)."""
    s = naive_scores(q, k, scale, exclude_diagonal)  # (M, N)
    return safe_logsumexp(s, dim=1), safe_logsumexp(s, dim=0)


def naive_similarity(q, k, scale, exclude_diagonal, offset, with_col, with_max):
    """(row lse (M,), col lse (N,) | None, row max (M,) | None, col max (N,) | None) of one materialised S; the
    maxima are detached."""
    s = naive_scores(q, k, scale, exclude_diagonal, offset)  # (M, N)
    row, col = safe_logsumexp(s, dim=1), (safe_logsumexp(s, dim=0) if with_col else None)
    row_max = s.detach().amax(1) if with_max else None
    col_max = s.detach().amax(0) if with_max and with_col else None
    return row, col, row_max, col_max
