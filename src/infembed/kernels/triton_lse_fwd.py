"""Triton forward kernel: row log-sum-exp of S = scale · q kᵀ, optionally column partials from the same tiles.

Algorithm (online log-sum-exp, as in flash attention). A persistent grid of P programs; program p takes row
blocks p, p + P, p + 2P, ... For one row block (BLOCK_M rows) it walks the N columns in BLOCK_N tiles,
recomputing the S tile (triton_tiles.score_tile, fp32 accumulation over D) and keeping a running max m_i and
running sum l_i = Σ_j exp(S_ij − m_i):
    m' = max(m, max_j S_ij),   l' = l · exp(m − m') + Σ_j exp(S_ij − m'),   lse_i = m + log l.
(The exp shift is m with −inf replaced by 0, so fully masked rows give l = 0 and lse = −inf, never nan.)

Columns (WITH_COL): the same tile also gives each column's log-sum-exp over the tile's rows; program p merges
it into its own row of a (P, N) float32 partial buffer, partial[p, j] ← logaddexp(partial[p, j], tile_lse_j).
The launcher reduces the P partials with one logsumexp over dim 0. Each program owns its partial row, so there
are no atomics and no races (a barrier separates row blocks).

Memory plan: outputs (M,) and, with columns, (P, N) with P ≤ 4 × number of SMs (a constant, so O(N)); no M×N
buffer. Registers hold one (BLOCK_M, BLOCK_N) fp32 tile and one (BLOCK_M|BLOCK_N, BLOCK_D) chunk of each
input.
"""

import triton
import triton.language as tl

from infembed.kernels.triton_tiles import score_tile


@triton.jit
def _finite(x):
    """x with −inf replaced by 0 (a safe subtrahend for exp)."""
    return tl.where(x == float("-inf"), 0.0, x)


@triton.jit
def lse_fwd_kernel(
    q_ptr,
    k_ptr,
    row_lse_ptr,
    col_part_ptr,
    M,
    N,
    D,
    stride_q,
    stride_k,
    scale,
    offset,
    EXCLUDE_DIAG: tl.constexpr,
    WITH_COL: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    n_progs = tl.num_programs(0)
    for rb in range(pid, tl.cdiv(M, BLOCK_M), n_progs):
        rows = rb * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
        m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
        l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
        for n0 in range(0, N, BLOCK_N):
            cols = n0 + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
            s = score_tile(
                q_ptr,
                k_ptr,
                rows,
                cols,
                M,
                N,
                D,
                stride_q,
                stride_k,
                scale,
                offset,
                EXCLUDE_DIAG,
                DOT_FP32,
                BLOCK_M,
                BLOCK_N,
                BLOCK_D,
            )  # (BLOCK_M, BLOCK_N)
            m_new = tl.maximum(m_i, tl.max(s, axis=1))  # (BLOCK_M,) running max, −inf while all masked
            shift = _finite(m_new)
            l_i = l_i * tl.exp(m_i - shift) + tl.sum(tl.exp(s - shift[:, None]), axis=1)
            m_i = m_new
            if WITH_COL:
                c_max = _finite(tl.max(s, axis=0))  # (BLOCK_N,)
                c_lse = c_max + tl.log(
                    tl.sum(tl.exp(s - c_max[None, :]), axis=0)
                )  # (BLOCK_N,), −inf if empty
                part_ptrs = col_part_ptr + pid * N + cols
                old = tl.load(part_ptrs, mask=cols < N, other=float("-inf"))
                top = _finite(tl.maximum(old, c_lse))
                tl.store(part_ptrs, top + tl.log(tl.exp(old - top) + tl.exp(c_lse - top)), mask=cols < N)
        tl.store(row_lse_ptr + rows, m_i + tl.log(l_i), mask=rows < M)
        tl.debug_barrier()
