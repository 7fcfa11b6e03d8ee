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

Algorithm. A 2-D grid: program (r, v) owns rows r·BLOCK_M ... of x and the D slice v·BLOCK_DV ... of dx. It
keeps that (BLOCK_M, BLOCK_DV) slice of dx in fp32 registers across the whole column loop: for each BLOCK_N
tile of y it recomputes the S tile (fp32 accumulation over all of D), forms G (BLOCK_M, BLOCK_N) in fp32,
casts it to the input dtype (as torch's own backward in that precision does; fp32 stays fp32, tf32x3) and adds
G · y[tile, slice] to the accumulator; the slice is stored once at the end. Each dx element is written by one
program exactly once: deterministic, no atomics, no read-modify-write of global memory.

Cost. The S tile is recomputed once per D slice, so a gradient costs (ceil(D / BLOCK_DV) + 1) GEMM-sized
passes: 2 when D ≤ BLOCK_DV (flash-attention's backward), 4 at D = 768 with BLOCK_DV = 256. The tiles in
triton_ops.TILES trade that against registers (a wider slice holds more accumulator per thread).
"""

import triton
import triton.language as tl

from infembed.kernels.triton_tiles import finite, score_tile, tile_dot


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
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    dv = tl.program_id(1) * BLOCK_DV + tl.arange(0, BLOCK_DV)  # (BLOCK_DV,) this program's slice of D
    row_ok = rows < n_x
    if X_TERM:
        x_lse = finite(tl.load(x_lse_ptr + rows, mask=row_ok, other=0.0))  # (BLOCK_M,)
        x_grad = tl.load(x_grad_ptr + rows, mask=row_ok, other=0.0) * scale  # (BLOCK_M,)
    acc = tl.zeros((BLOCK_M, BLOCK_DV), dtype=tl.float32)  # dx[rows, dv], in registers for the whole loop
    for n0 in range(0, n_y, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
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
        )  # (BLOCK_M, BLOCK_N)
        g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if X_TERM:
            g += x_grad[:, None] * tl.exp(s - x_lse[:, None])
        if Y_TERM:
            y_lse = finite(tl.load(y_lse_ptr + cols, mask=col_ok, other=0.0))  # (BLOCK_N,)
            y_grad = tl.load(y_grad_ptr + cols, mask=col_ok, other=0.0) * scale  # (BLOCK_N,)
            g += y_grad[None, :] * tl.exp(s - y_lse[None, :])
        y = tl.load(
            y_ptr + cols.to(tl.int64)[:, None] * stride_y + dv[None, :],
            mask=col_ok[:, None] & (dv < D)[None, :],
            other=0.0,
        )  # (BLOCK_N, BLOCK_DV)
        acc += tile_dot(g.to(y_ptr.dtype.element_ty), y, PRECISION)  # (BLOCK_M, BLOCK_DV)
    dx_ptrs = dx_ptr + rows.to(tl.int64)[:, None] * stride_dx + dv[None, :]
    tl.store(dx_ptrs, acc, mask=row_ok[:, None] & (dv < D)[None, :])
