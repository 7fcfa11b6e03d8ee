"""Triton forward kernel: row log-sum-exp (and max) of S = scale · q kᵀ, optionally column partials from the
same tiles.

Algorithm (online log-sum-exp, as in flash attention). A persistent grid of P programs (P = resident programs
per SM × SMs, from the compiled kernel's registers and shared memory, triton_ops.resident_programs); program p
takes row blocks p, p + P, p + 2P, ... For one row block (BLOCK_M rows) it walks the N columns in BLOCK_N
tiles, recomputing the S tile (triton_tiles.score_tile, fp32 accumulation over D) and keeping a running max
m_i and running sum l_i = Σ_j exp(S_ij − m_i):
    m' = max(m, max_j S_ij),   l' = l · exp(m − m') + Σ_j exp(S_ij − m'),   lse_i = m + log l.
(The exp shift is m with −inf replaced by 0, so fully masked rows give l = 0 and lse = −inf, never nan.)
The row max m_i (the logged hardest negative) is stored beside the lse, for free.

Columns (WITH_COL): the same tile also gives each column's log-sum-exp and max over the tile's rows; program
p merges them into its own row of two (P, N) float32 partial buffers, partial[p, j] ← logaddexp(partial[p, j],
tile_lse_j) and max_part[p, j] ← max(max_part[p, j], tile_max_j). The launcher reduces the P partials with one logsumexp (max) over dim 0. Each
program owns its partial row, so there are no atomics and no races (a barrier separates row blocks).

Memory plan: outputs (M,) and, with columns, (P, N) (twice) with P a constant of the device, so
O(N); no M×N buffer. Registers hold one (BLOCK_M, BLOCK_N) fp32 tile; the (BLOCK_M|BLOCK_N, BLOCK_D) chunks of
the inputs stream through shared memory, pipelined over D (num_stages).
"""

import triton
import triton.language as tl

from infembed.kernels.triton_tiles import finite, score_tile


@triton.jit
def lse_fwd_kernel(
    q_ptr,
    k_ptr,
    row_lse_ptr,
    row_max_ptr,
    col_lse_part_ptr,
    col_max_part_ptr,
    M,
    N,
    D,
    stride_q,
    stride_k,
    scale,
    offset,
    EXCLUDE_DIAG: tl.constexpr,
    WITH_COL: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    n_progs = tl.num_programs(0)
    part_row = pid.to(tl.int64) * N  # this program's row of the (P, N) partials
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
                PRECISION,
                BLOCK_M,
                BLOCK_N,
                BLOCK_D,
            )  # (BLOCK_M, BLOCK_N)
            m_new = tl.maximum(m_i, tl.max(s, axis=1))  # (BLOCK_M,) running max, −inf while all masked
            shift = finite(m_new)
            l_i = l_i * tl.exp(m_i - shift) + tl.sum(tl.exp(s - shift[:, None]), axis=1)
            m_i = m_new
            if WITH_COL:
                t_max = tl.max(s, axis=0)  # (BLOCK_N,)
                c_max = finite(t_max)
                c_lse = c_max + tl.log(
                    tl.sum(tl.exp(s - c_max[None, :]), axis=0)
                )  # (BLOCK_N,), −inf if empty
                part_ptrs = col_lse_part_ptr + part_row + cols
                old = tl.load(part_ptrs, mask=cols < N, other=float("-inf"))
                top = finite(tl.maximum(old, c_lse))
                tl.store(part_ptrs, top + tl.log(tl.exp(old - top) + tl.exp(c_lse - top)), mask=cols < N)
                max_ptrs = col_max_part_ptr + part_row + cols
                old_max = tl.load(max_ptrs, mask=cols < N, other=float("-inf"))
                tl.store(max_ptrs, tl.maximum(old_max, t_max), mask=cols < N)
        tl.store(row_lse_ptr + rows, m_i + tl.log(l_i), mask=rows < M)
        tl.store(row_max_ptr + rows, m_i, mask=rows < M)
        tl.debug_barrier()
