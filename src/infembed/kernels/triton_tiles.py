"""Shared Triton device function: one masked tile of S = scale · x yᵀ, accumulated over D in fp32.

Used by the forward kernel (triton_lse_fwd.py) and the backward kernel (triton_lse_bwd.py), which recompute
tiles instead of storing S. Importing this module imports triton (the dispatch layer only imports it on
demand).

Any D: the reduction over D walks BLOCK_D-wide chunks, the tail chunk masked with zeros (zeros add nothing to
the dot product). Rows ≥ n_rows, columns ≥ n_cols and, with EXCLUDE_DIAG, the entry col == row + offset are
set to -inf, so exp(S - anything finite) is 0 there and they drop out of every sum.
"""

import triton
import triton.language as tl


@triton.jit
def score_tile(
    x_ptr,
    y_ptr,
    rows,
    cols,
    n_rows,
    n_cols,
    dim,
    stride_x,
    stride_y,
    scale,
    offset,
    EXCLUDE_DIAG: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """S[rows, cols] = scale · x[rows] · y[cols]ᵀ as a (BLOCK_M, BLOCK_N) fp32 tile, invalid entries -inf."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    row_ok = rows < n_rows  # (BLOCK_M,)
    col_ok = cols < n_cols  # (BLOCK_N,)
    for d0 in range(0, dim, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)  # (BLOCK_D,)
        d_ok = d < dim
        x = tl.load(
            x_ptr + rows[:, None] * stride_x + d[None, :], mask=row_ok[:, None] & d_ok[None, :], other=0.0
        )  # (BLOCK_M, BLOCK_D)
        y = tl.load(
            y_ptr + cols[:, None] * stride_y + d[None, :], mask=col_ok[:, None] & d_ok[None, :], other=0.0
        )  # (BLOCK_N, BLOCK_D)
        if (
            DOT_FP32
        ):  # fp32 inputs (true fp32 products, not tf32), or the interpreter (its bf16 dot is broken)
            acc += tl.dot(x.to(tl.float32), tl.trans(y).to(tl.float32), input_precision="ieee")
        else:  # bf16 / fp16 inputs: tensor cores, fp32 accumulation
            acc += tl.dot(x, tl.trans(y))
    valid = row_ok[:, None] & col_ok[None, :]  # (BLOCK_M, BLOCK_N)
    if EXCLUDE_DIAG:
        valid = valid & (cols[None, :] != rows[:, None] + offset)
    return tl.where(valid, acc * scale, float("-inf"))
