"""Chunked backend: pure torch in row blocks, O(block·N) memory instead of O(M·N).

Forward: for each block of B rows, S_blk = scale · q_blk kᵀ (B, N) in float32 (float64 for float64 inputs),
row lse_blk = logsumexp(S_blk, dim=1). For the row+column variant the column lse is accumulated online across
row blocks: col ← logaddexp(col, logsumexp(S_blk, dim=0)).

Backward (the autograd.Function saves only q, k and the lse vectors, then recomputes each S_blk):
    ∂lse_i/∂S_ij = p_ij = exp(S_ij − lse_i)            (row softmax; masked entries have S = −inf → p = 0)
    ∂col_j/∂S_ij = c_ij = exp(S_ij − col_j)            (column softmax)
    G_ij = scale · (g_i p_ij + h_j c_ij)               (g, h: incoming grads of row / column lse)
    dq_blk = G_blk k,   dk += G_blkᵀ q_blk
Rows (columns) whose entries are all masked have lse = −inf; it is replaced by 0 so exp(−inf − 0) = 0.

Memory: inputs, their float32 copies when they are bf16/fp16, the (M,)/(N,) results and a few (B, N)
temporaries. The default block size keeps one (B, N) float32 block within ``DEFAULT_BLOCK_BYTES``.
"""

import torch
from torch.autograd.function import once_differentiable

from infembed.kernels.reference import compute_dtype

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


def _finite(lse):
    """lse with −inf replaced by 0, so exp(S − lse) is 0 (not nan) on fully masked rows/columns."""
    return lse.masked_fill(torch.isneginf(lse), 0.0)


def _backward(ctx, g_row, g_col):
    """dq, dk of Σ_i g_i row_i + Σ_j h_j col_j, recomputing S block by block (see module docstring)."""
    q, k, row_lse, col_lse = ctx.saved_tensors
    dtype = compute_dtype(q.dtype)
    q_c, k_c = q.to(dtype), k.to(dtype)
    dq = torch.empty_like(q_c) if ctx.needs_input_grad[0] else None  # (M, D), every row block written once
    dk = torch.zeros_like(k_c) if ctx.needs_input_grad[1] else None  # (N, D)
    row_f = _finite(row_lse) if g_row is not None else None
    col_f = _finite(col_lse) if g_col is not None else None
    for start in range(0, q.shape[0], ctx.block_rows):
        stop = min(start + ctx.block_rows, q.shape[0])
        s = _block_scores(
            q_c, k_c, start, stop, ctx.scale, ctx.exclude_diagonal, ctx.diagonal_offset
        )  # (B, N)
        grad_s = None  # (B, N) G = scale · (g p + h c), the scale folded into the (M,)/(N,) grads
        if g_col is not None:
            grad_s = (s - col_f[None, :]).exp_().mul_(ctx.scale * g_col.to(dtype)[None, :])
        if g_row is not None:
            row_term = (
                s.sub_(row_f[start:stop, None]).exp_().mul_(ctx.scale * g_row[start:stop].to(dtype)[:, None])
            )
            grad_s = row_term if grad_s is None else grad_s.add_(row_term)
        if dq is not None:
            torch.mm(grad_s, k_c, out=dq[start:stop])
        if dk is not None:
            dk.addmm_(grad_s.T, q_c[start:stop])
    return (None if dq is None else dq.to(q.dtype)), (None if dk is None else dk.to(k.dtype))


class _ChunkedLSE(torch.autograd.Function):
    """Row log-sum-exp of scale · q kᵀ in row blocks (recomputed in backward)."""

    @staticmethod
    def forward(ctx, q, k, scale, exclude_diagonal, diagonal_offset, block_rows):
        dtype = compute_dtype(q.dtype)
        q_c, k_c = q.to(dtype), k.to(dtype)
        lse = torch.empty(q.shape[0], dtype=dtype, device=q.device)  # (M,)
        for start in range(0, q.shape[0], block_rows):
            stop = min(start + block_rows, q.shape[0])
            s = _block_scores(q_c, k_c, start, stop, scale, exclude_diagonal, diagonal_offset)  # (B, N)
            lse[start:stop] = torch.logsumexp(s, dim=1)  # forward only: all -inf gives -inf
        ctx.save_for_backward(q, k, lse, None)
        ctx.scale, ctx.exclude_diagonal, ctx.diagonal_offset, ctx.block_rows = (
            scale,
            exclude_diagonal,
            diagonal_offset,
            block_rows,
        )
        ctx.set_materialize_grads(False)
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx, g_row):
        if g_row is None:
            return None, None, None, None, None, None
        dq, dk = _backward(ctx, g_row, None)
        return dq, dk, None, None, None, None


class _ChunkedRowColLSE(torch.autograd.Function):
    """Row and column log-sum-exp of one scale · q kᵀ, columns accumulated online across row blocks."""

    @staticmethod
    def forward(ctx, q, k, scale, exclude_diagonal, block_rows):
        dtype = compute_dtype(q.dtype)
        q_c, k_c = q.to(dtype), k.to(dtype)
        row = torch.empty(q.shape[0], dtype=dtype, device=q.device)  # (M,)
        col = torch.full((k.shape[0],), float("-inf"), dtype=dtype, device=q.device)  # (N,)
        for start in range(0, q.shape[0], block_rows):
            stop = min(start + block_rows, q.shape[0])
            s = _block_scores(q_c, k_c, start, stop, scale, exclude_diagonal, 0)  # (B, N)
            row[start:stop] = torch.logsumexp(s, dim=1)  # forward only: all -inf gives -inf
            col = torch.logaddexp(col, torch.logsumexp(s, dim=0))
        ctx.save_for_backward(q, k, row, col)
        ctx.scale, ctx.exclude_diagonal, ctx.diagonal_offset, ctx.block_rows = (
            scale,
            exclude_diagonal,
            0,
            block_rows,
        )
        ctx.set_materialize_grads(False)
        return row, col

    @staticmethod
    @once_differentiable
    def backward(ctx, g_row, g_col):
        if g_row is None and g_col is None:
            return None, None, None, None, None
        dq, dk = _backward(ctx, g_row, g_col)
        return dq, dk, None, None, None


def chunked_similarity_lse(q, k, scale, exclude_diagonal=False, diagonal_offset=0, block_rows=None):
    """Row lse (M,) of scale · q kᵀ, O(block_rows · N) memory. ``block_rows`` None: from
    DEFAULT_BLOCK_BYTES."""
    block_rows = block_rows or default_block_rows(q.shape[0], k.shape[0])
    return _ChunkedLSE.apply(
        q, k, float(scale), bool(exclude_diagonal), int(diagonal_offset), int(block_rows)
    )


def chunked_similarity_lse_rowcol(q, k, scale, exclude_diagonal=False, block_rows=None):
    """(row lse (M,), col lse (N,)) of one scale · q kᵀ, O(block_rows · N) memory."""
    block_rows = block_rows or default_block_rows(q.shape[0], k.shape[0])
    return _ChunkedRowColLSE.apply(q, k, float(scale), bool(exclude_diagonal), int(block_rows))
