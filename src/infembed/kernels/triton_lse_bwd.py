"""Triton backward kernel: gradient of the rows of x for log-sum-exps of S = scale · x yᵀ (rows and/or
columns).

Gradient derivation. With row_i = log Σ_j exp S_ij and col_j = log Σ_i exp S_ij, incoming grads g_i (rows) and
h_j (columns):
    ∂row_i/∂S_ij = p_ij = exp(S_ij − row_i),   ∂col_j/∂S_ij = c_ij = exp(S_ij − col_j)
    G_ij := ∂L/∂S_ij = g_i p_ij + h_j c_ij,     S_ij = scale · x_i·y_j
    dx_i = scale · Σ_j G_ij y_j,                dy_j = scale · Σ_i G_ij x_i.
dy is the same formula on Sᵀ = scale · y xᵀ (the column term of S is the row term of Sᵀ and vice versa, and
the diagonal j == i + offset becomes i == j − offset), so one kernel serves both: the launcher calls it with
(x, y) = (q, k) for dq and (k, q) with the terms swapped and −offset for dk. X_TERM / Y_TERM switch off a term
whose incoming grad is absent (plain row lse has no column term). Masked entries have S = −inf, so p = c = 0
there; a fully masked row/column has lse = −inf, replaced by 0 in the exponent so its p stays 0 (not nan).

Algorithm. One program per BLOCK_M rows of x; it walks y in BLOCK_N tiles, recomputes the S tile (fp32
accumulation over D), forms G (BLOCK_M, BLOCK_N) in fp32, casts it to the input dtype (as torch's own backward
in that precision does; fp32 stays fp32 with ieee products, DOT_FP32 as in triton_tiles.py) and adds G ·
y_tile to dx, BLOCK_D columns of D at a time.

Memory plan. No M×N buffer: dx is a float32 (n_x, D) output that only this program's rows touch, used as the
accumulator (a load-add-store per D chunk, separated between tiles by a barrier), so any D works without a
(BLOCK_M, D) register accumulator; registers hold one S/G tile and one D chunk of x, y and dx.
"""

import triton
import triton.language as tl

from infembed.kernels.triton_tiles import score_tile


@triton.jit
def _finite(x):
    """x with −inf replaced by 0 (a safe subtrahend for exp)."""
    return tl.where(x == float("-inf"), 0.0, x)


@triton.jit
def lse_bwd_kernel(
    x_ptr,
    y_ptr,
    dx_ptr,
    x_lse_ptr,
    x_grad_ptr,
    y_lse_ptr,
    y_grad_ptr,
    n_x,
    n_y,
    D,
    stride_x,
    stride_y,
    stride_dx,
    scale,
    offset,
    EXCLUDE_DIAG: tl.constexpr,
    X_TERM: tl.constexpr,
    Y_TERM: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    row_ok = rows < n_x
    if X_TERM:
        x_lse = _finite(tl.load(x_lse_ptr + rows, mask=row_ok, other=0.0))  # (BLOCK_M,)
        x_grad = tl.load(x_grad_ptr + rows, mask=row_ok, other=0.0)  # (BLOCK_M,)
    for n0 in range(0, n_y, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
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
            DOT_FP32,
            BLOCK_M,
            BLOCK_N,
            BLOCK_D,
        )  # (BLOCK_M, BLOCK_N)
        g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if X_TERM:
            g += x_grad[:, None] * tl.exp(s - x_lse[:, None])
        if Y_TERM:
            y_lse = _finite(tl.load(y_lse_ptr + cols, mask=cols < n_y, other=0.0))  # (BLOCK_N,)
            y_grad = tl.load(y_grad_ptr + cols, mask=cols < n_y, other=0.0)  # (BLOCK_N,)
            g += y_grad[None, :] * tl.exp(s - y_lse[None, :])
        g = (g * scale).to(y_ptr.dtype.element_ty)  # (BLOCK_M, BLOCK_N)
        for d0 in range(0, D, BLOCK_D):
            d = d0 + tl.arange(0, BLOCK_D)  # (BLOCK_D,)
            y = tl.load(
                y_ptr + cols[:, None] * stride_y + d[None, :],
                mask=(cols < n_y)[:, None] & (d < D)[None, :],
                other=0.0,
            )  # (BLOCK_N, BLOCK_D)
            if DOT_FP32:
                part = tl.dot(
                    g.to(tl.float32), y.to(tl.float32), input_precision="ieee"
                )  # (BLOCK_M, BLOCK_D)
            else:
                part = tl.dot(g, y)
            dx_ptrs = dx_ptr + rows[:, None] * stride_dx + d[None, :]
            dx_mask = row_ok[:, None] & (d < D)[None, :]
            tl.store(dx_ptrs, tl.load(dx_ptrs, mask=dx_mask, other=0.0) + part, mask=dx_mask)
        tl.debug_barrier()
