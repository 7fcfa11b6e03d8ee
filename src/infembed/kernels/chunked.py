"""Chunked backend: pure torch in row blocks, O(block·N) memory instead of O(M·N).

Forward: for each block of B rows, S_blk = scale · q_blk kᵀ (B, N) in float32 (float64 for float64 inputs),
row lse_blk = logsumexp(S_blk, dim=1). For the row+column variant the column lse is accumulated online across
row blocks: col ← logaddexp(col, logsumexp(S_blk, dim=0)). With ``with_max`` the row (column) maxima of the
same blocks come out beside them.

Backward (autograd.SimilarityLSE saves only q, k and the lse vectors, then this recomputes each S_blk):
    ∂lse_i/∂S_ij = p_ij = exp(S_ij − lse_i)            (row softmax; masked entries have S = −inf → p = 0)
    ∂col_j/∂S_ij = c_ij = exp(S_ij − col_j)            (column softmax)
    G_ij = scale · (g_i p_ij + h_j c_ij)               (g, h: incoming grads of row / column lse)
    dq_blk = G_blk k,   dk += G_blkᵀ q_blk
Rows (columns) whose entries are all masked have lse = −inf; it is replaced by 0 so exp(−inf − 0) = 0.

Memory: inputs, their float32 copies when they are bf16/fp16, the (M,)/(N,) results and a few (B, N)
temporaries. The default block size keeps one (B, N) float32 block within ``DEFAULT_BLOCK_BYTES``.
"""

from dataclasses import dataclass

import torch

from infembed.kernels.autograd import SimilarityLSE
from infembed.kernels.precision import compute_dtype, finite

DEFAULT_BLOCK_BYTES = 64 * 2**20


def default_block_rows(n_rows: int, n_cols: int, budget_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Rows per block so that one (B, N) float32 block fits ``budget_bytes``; at least 1, at most n_rows."""
    return max(1, min(n_rows, budget_bytes // (4 * max(n_cols, 1))))


def _block_scores(q_c, k_c, start, stop, scale, exclude_diagonal, diagonal_offset):
    """Masked S[start:stop] = scale · q[start:stop] kᵀ in the compute dtype. Returns (B, N)."""
    s = (q_c[start:stop] @ k_c.T).mul_(scale)  # (B, N)
    if exclude_diagonal:  # O(B) scatter of -inf at (i, i + offset), not an O(B·N) mask
        rows = torch.arange(start, stop, device=q_c.device)  # (B,)
        cols = rows + diagonal_offset  # (B,)
        inside = (cols >= 0) & (cols < k_c.shape[0])  # (B,)
        s[rows[inside] - start, cols[inside]] = float("-inf")
    return s


@dataclass(frozen=True)
class ChunkedImpl:
    """The chunked backend for autograd.SimilarityLSE, ``block_rows`` rows of S at a time."""

    block_rows: int

    def prepare(self, q, k):
        return q, k

    def _blocks(self, n_rows):
        return ((start, min(start + self.block_rows, n_rows)) for start in range(0, n_rows, self.block_rows))

    def forward(self, q, k, scale, exclude_diagonal, offset, with_col, with_max):
        dtype = compute_dtype(q.dtype)
        q_c, k_c = q.to(dtype), k.to(dtype)
        m, n = q.shape[0], k.shape[0]
        new = lambda size: torch.full((size,), float("-inf"), dtype=dtype, device=q.device)
        row = torch.empty(m, dtype=dtype, device=q.device)  # (M,)
        col = new(n) if with_col else None  # (N,)
        row_max = torch.empty(m, dtype=dtype, device=q.device) if with_max else None  # (M,)
        col_max = new(n) if with_max and with_col else None  # (N,)
        for start, stop in self._blocks(m):
            s = _block_scores(q_c, k_c, start, stop, scale, exclude_diagonal, offset)  # (B, N)
            row[start:stop] = torch.logsumexp(s, dim=1)  # forward only: all -inf gives -inf
            if with_col:
                col = torch.logaddexp(col, torch.logsumexp(s, dim=0))
            if with_max:
                row_max[start:stop] = s.amax(dim=1)
            if col_max is not None:
                col_max = torch.maximum(col_max, s.amax(dim=0))
        return row, col, row_max, col_max

    def backward(self, q, k, row, col, g_row, g_col, scale, exclude_diagonal, offset, needs):
        """dq, dk of Σ_i g_i row_i + Σ_j h_j col_j, recomputing S block by block (see module docstring)."""
        dtype = compute_dtype(q.dtype)
        q_c, k_c = q.to(dtype), k.to(dtype)
        dq = torch.empty_like(q_c) if needs[0] else None  # (M, D), every row block written once
        dk = torch.zeros_like(k_c) if needs[1] else None  # (N, D)
        row_f = finite(row) if g_row is not None else None
        col_f = finite(col) if g_col is not None else None
        for start, stop in self._blocks(q.shape[0]):
            s = _block_scores(q_c, k_c, start, stop, scale, exclude_diagonal, offset)  # (B, N)
            grad_s = None  # (B, N) G = scale · (g p + h c), the scale folded into the (M,)/(N,) grads
            if g_col is not None:
                grad_s = (s - col_f[None, :]).exp_().mul_(scale * g_col.to(dtype)[None, :])
            if g_row is not None:
                g = scale * g_row[start:stop].to(dtype)[:, None]  # (B, 1)
                row_term = s.sub_(row_f[start:stop, None]).exp_().mul_(g)
                grad_s = row_term if grad_s is None else grad_s.add_(row_term)
            if dq is not None:
                torch.mm(grad_s, k_c, out=dq[start:stop])
            if dk is not None:
                dk.addmm_(grad_s.T, q_c[start:stop])
        return dq, dk


def chunked_similarity(q, k, scale, exclude_diagonal, offset, with_col, with_max, block_rows=None):
    """(row lse (M,), col lse (N,) | None, row max | None, col max | None) of scale · q kᵀ in blocks of
    ``block_rows`` rows, O(block_rows · N) memory (None: from DEFAULT_BLOCK_BYTES)."""
    impl = ChunkedImpl(block_rows or default_block_rows(q.shape[0], k.shape[0]))
    return SimilarityLSE.apply(
        q, k, impl, float(scale), bool(exclude_diagonal), int(offset), bool(with_col), bool(with_max)
    )
