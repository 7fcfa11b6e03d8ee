"""Triton kernel of the blocked backward: G = ∂L/∂S for a slab of rows, written once in the input dtype.

Gradient (as in triton_lse_bwd.py): with row_i = log Σ_j exp S_ij, col_j = log Σ_i exp S_ij and incoming grads
g_i (rows), h_j (columns),
    G_ij = scale · (g_i exp(S_ij − row_i) + h_j exp(S_ij − col_j)),    S_ij = scale · x_i·y_j
    dx = G y,    dy = Gᵀ x    (the launcher computes dy as dx of Sᵀ, below).

Algorithm (triton_ops.BlockedBackward). The rows of x are cut into slabs of R rows, R fixed by a byte budget for
one (R, n_y) G buffer. For each slab, this kernel runs on a 1-D grid of (row tile, column tile) pairs in row-major
order (one axis: no 65,535 limit on the column tiles at large N): program (r, c) recomputes the (BLOCK_M, BLOCK_N) tile of S by a tensor-core GEMM over D (triton_tiles.score_tile, fp32
accumulation), applies the epilogue above in fp32 registers and stores G rounded to the input dtype (as torch's own
backward in that precision does; fp32 stays fp32). The launcher then runs one GEMM dx[slab] = G · y (cuBLAS, fp32
accumulation) into the slab's rows of dx. dy is the same two steps on Sᵀ = scale · y xᵀ with the terms swapped and
−offset (the diagonal j == i + offset becomes i == j − offset), so each element of dx and dy is written by one GEMM
exactly once: deterministic, no atomics, no accumulation across slabs.

Cost: per gradient one S-sized pass (this kernel) and one GEMM-sized pass (G · y), whatever D: with the forward,
5 GEMM-equivalent passes for dq and dk at every D, against (⌈D / BLOCK_DV⌉ + 1) per gradient for the
register-resident kernel. Extra memory: the (R, n_y) G buffer, within the budget.
"""

import triton
import triton.language as tl

from infembed.kernels.triton_tiles import finite, score_tile


@triton.jit
def grad_scores_kernel(
    x_ptr,
    y_ptr,
    g_ptr,
    x_lse_ptr,
    x_grad_ptr,
    y_lse_ptr,
    y_grad_ptr,
    n_x,
    n_y,
    D,
    stride_x,
    stride_y,
    stride_g,
    scale,
    offset,
    EXCLUDE_DIAG: tl.constexpr,
    X_TERM: tl.constexpr,
    Y_TERM: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid, col_tiles = tl.program_id(0), tl.cdiv(n_y, BLOCK_N)
    row_tile, col_tile = pid // col_tiles, pid % col_tiles  # row-major: neighbours share the x tile
    rows = row_tile * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) rows of the slab
    cols = col_tile * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    row_ok = rows < n_x
    col_ok = cols < n_y
    s = score_tile(
        x_ptr,
        y_ptr,
        rows,
        cols,
        n_x,
        n_y,
        D,
        stride_x,
        stride_y,
        scale,
        offset,
        EXCLUDE_DIAG,
        PRECISION,
        BLOCK_M,
        BLOCK_N,
        BLOCK_D,
    )  # (BLOCK_M, BLOCK_N), −inf where masked
    g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if X_TERM:
        x_lse = finite(tl.load(x_lse_ptr + rows, mask=row_ok, other=0.0))  # (BLOCK_M,)
        x_grad = tl.load(x_grad_ptr + rows, mask=row_ok, other=0.0) * scale  # (BLOCK_M,)
        g += x_grad[:, None] * tl.exp(s - x_lse[:, None])
    if Y_TERM:
        y_lse = finite(tl.load(y_lse_ptr + cols, mask=col_ok, other=0.0))  # (BLOCK_N,)
        y_grad = tl.load(y_grad_ptr + cols, mask=col_ok, other=0.0) * scale  # (BLOCK_N,)
        g += y_grad[None, :] * tl.exp(s - y_lse[None, :])
    g_ptrs = g_ptr + rows.to(tl.int64)[:, None] * stride_g + cols[None, :]
    tl.store(g_ptrs, g.to(g_ptr.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])
