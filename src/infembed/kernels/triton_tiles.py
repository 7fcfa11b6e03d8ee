"""Shared Triton device functions: one masked tile of S = scale · x yᵀ (fp32 accumulation), and ``finite``.

Used by the forward kernel (triton_lse_fwd.py) and the backward kernel (triton_lse_bwd.py), which recompute
tiles instead of storing S. Importing this module imports triton (the dispatch layer only imports it on
demand).

Any D: the reduction over D walks BLOCK_D-wide chunks, the tail chunk masked with zeros (zeros add nothing to
the dot product; the launcher pads D to a multiple of 16 so the loads stay vectorised and pipelined). Rows ≥
n_rows, columns ≥ n_cols and, with EXCLUDE_DIAG, the entry col == row + offset are set to -inf, so exp(S −
anything finite) is 0 there and they drop out of every sum. Row offsets are int64 (rows · stride may pass 2³¹).

Products (PRECISION, chosen by triton_ops.dot_precision):
    "native"  bf16/fp16 tiles on tensor cores (wgmma on sm_90), fp32 accumulation;
    "tf32x3"  fp32 tiles as three tf32 tensor-core products (hi·hi + hi·lo + lo·hi): ~fp32 accuracy;
    "ieee"    fp32 products without tensor cores: the Triton interpreter (its bf16 dot is wrong in triton
              3.9, so half tiles are upcast there; exact products, same fp32 accumulation).
"""

import triton
import triton.language as tl


@triton.jit
def finite(x):
    """x with −inf replaced by 0 (a safe subtrahend for exp)."""
    return tl.where(x == float("-inf"), 0.0, x)


@triton.jit
def tile_dot(a, b, PRECISION: tl.constexpr):
    """a (P, R) · b (R, Q) → (P, Q) fp32 with the products named by PRECISION (module docstring)."""
    if PRECISION == "ieee":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    elif PRECISION == "tf32x3":
        return tl.dot(a, b, input_precision="tf32x3")
    else:
        return tl.dot(a, b)


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
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """S[rows, cols] = scale · x[rows] · y[cols]ᵀ as a (BLOCK_M, BLOCK_N) fp32 tile, invalid entries -inf."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    row_ok = rows < n_rows  # (BLOCK_M,)
    col_ok = cols < n_cols  # (BLOCK_N,)
    x_rows = x_ptr + rows.to(tl.int64)[:, None] * stride_x  # (BLOCK_M, 1) int64 row offsets
    y_rows = y_ptr + cols.to(tl.int64)[:, None] * stride_y  # (BLOCK_N, 1)
    for d0 in range(0, dim, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)  # (BLOCK_D,)
        d_ok = d < dim
        x = tl.load(
            x_rows + d[None, :], mask=row_ok[:, None] & d_ok[None, :], other=0.0
        )  # (BLOCK_M, BLOCK_D)
        y = tl.load(
            y_rows + d[None, :], mask=col_ok[:, None] & d_ok[None, :], other=0.0
        )  # (BLOCK_N, BLOCK_D)
        acc += tile_dot(x, tl.trans(y), PRECISION)
    valid = row_ok[:, None] & col_ok[None, :]  # (BLOCK_M, BLOCK_N)
    if EXCLUDE_DIAG:
        valid = valid & (cols[None, :] != rows[:, None] + offset)
    return tl.where(valid, acc * scale, float("-inf"))
