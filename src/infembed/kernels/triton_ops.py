"""Triton backend: launchers and autograd.Functions around the fused kernels.

Forward: triton_lse_fwd.lse_fwd_kernel (row lse; column partials from the same tiles for the row+column
variant). Backward: triton_lse_bwd.lse_bwd_kernel, called once for dq and once for dk (on Sᵀ). The Functions
save only q, k and the (M,)/(N,) lse vectors. Device properties are queried at call time, never at import. On
CPU tensors the kernels run under TRITON_INTERPRET=1 (slow; tests use tiny shapes).
"""

import torch
import triton
from torch.autograd.function import once_differentiable

from infembed.kernels.triton_lse_bwd import lse_bwd_kernel
from infembed.kernels.triton_lse_fwd import lse_fwd_kernel

NUM_WARPS = 4


def _blocks(n_rows: int, n_cols: int, dim: int, device: torch.device):
    """(BLOCK_M, BLOCK_N, BLOCK_D): 64 on CUDA (32 under the interpreter), shrunk for tiny inputs, ≥ 16 for
    tl.dot."""
    cap = 64 if device.type == "cuda" else 32
    fit = lambda n, top: min(top, max(16, triton.next_power_of_2(n)))
    return fit(n_rows, cap), fit(n_cols, cap), fit(dim, 64)


def _dot_fp32(x: torch.Tensor) -> bool:
    """tl.dot in fp32 with ieee products: for fp32 inputs, and off CUDA (the interpreter's bf16 tl.dot is
    wrong in triton 3.9, so bf16/fp16 tiles are upcast there; exact products, same fp32 accumulation)."""
    return x.dtype == torch.float32 or x.device.type != "cuda"


def _max_programs(device: torch.device) -> int:
    """Persistent-grid size for the column partials: 4 per SM on CUDA, 2 under the interpreter (exercises
    reuse)."""
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 2


def _forward(q, k, scale, exclude_diagonal, offset, with_col):
    """row lse (M,) float32 and, with_col, col lse (N,) float32 of scale · q kᵀ."""
    (m, dim), n = q.shape, k.shape[0]
    bm, bn, bd = _blocks(m, n, dim, q.device)
    n_blocks = triton.cdiv(m, bm)
    programs = min(n_blocks, _max_programs(q.device)) if with_col else n_blocks
    row = torch.empty(m, dtype=torch.float32, device=q.device)  # (M,)
    part = torch.full((programs, n), float("-inf"), dtype=torch.float32, device=q.device) if with_col else row
    lse_fwd_kernel[(programs,)](
        q,
        k,
        row,
        part,
        m,
        n,
        dim,
        q.stride(0),
        k.stride(0),
        scale,
        offset,
        EXCLUDE_DIAG=exclude_diagonal,
        WITH_COL=with_col,
        DOT_FP32=_dot_fp32(q),
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_D=bd,
        num_warps=NUM_WARPS,
    )
    return row, (torch.logsumexp(part, dim=0) if with_col else None)  # (M,), (N,)


def _grad_rows(x, y, x_lse, x_grad, y_lse, y_grad, scale, exclude_diagonal, offset):
    """dx (x's dtype) of Σ_i x_grad_i x_lse_i + Σ_j y_grad_j y_lse_j for S = scale · x yᵀ (a term is None if
    absent)."""
    (n_x, dim), n_y = x.shape, y.shape[0]
    bm, bn, bd = _blocks(n_x, n_y, dim, x.device)
    dx = torch.zeros(n_x, dim, dtype=torch.float32, device=x.device)  # (n_x, D) accumulator
    as_f32 = lambda t: dx if t is None else t.to(torch.float32).contiguous()
    lse_bwd_kernel[(triton.cdiv(n_x, bm),)](
        x,
        y,
        dx,
        as_f32(x_lse),
        as_f32(x_grad),
        as_f32(y_lse),
        as_f32(y_grad),
        n_x,
        n_y,
        dim,
        x.stride(0),
        y.stride(0),
        dx.stride(0),
        scale,
        offset,
        EXCLUDE_DIAG=exclude_diagonal,
        X_TERM=x_grad is not None,
        Y_TERM=y_grad is not None,
        DOT_FP32=_dot_fp32(x),
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_D=bd,
        num_warps=NUM_WARPS,
    )
    return dx.to(x.dtype)


def _backward(ctx, g_row, g_col):
    """dq, dk from the saved q, k, row/col lse and the incoming grads (None when absent)."""
    q, k, row, col = ctx.saved_tensors
    args = (ctx.scale, ctx.exclude_diagonal)
    dq = _grad_rows(q, k, row, g_row, col, g_col, *args, ctx.offset) if ctx.needs_input_grad[0] else None
    dk = _grad_rows(k, q, col, g_col, row, g_row, *args, -ctx.offset) if ctx.needs_input_grad[1] else None
    return dq, dk


class _TritonLSE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, scale, exclude_diagonal, offset):
        q, k = q.contiguous(), k.contiguous()
        row, _ = _forward(q, k, scale, exclude_diagonal, offset, with_col=False)
        ctx.save_for_backward(q, k, row, None)
        ctx.scale, ctx.exclude_diagonal, ctx.offset = scale, exclude_diagonal, offset
        ctx.set_materialize_grads(False)
        return row

    @staticmethod
    @once_differentiable
    def backward(ctx, g_row):
        if g_row is None:
            return None, None, None, None, None
        return (*_backward(ctx, g_row, None), None, None, None)


class _TritonRowColLSE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, scale, exclude_diagonal):
        q, k = q.contiguous(), k.contiguous()
        row, col = _forward(q, k, scale, exclude_diagonal, 0, with_col=True)
        ctx.save_for_backward(q, k, row, col)
        ctx.scale, ctx.exclude_diagonal, ctx.offset = scale, exclude_diagonal, 0
        ctx.set_materialize_grads(False)
        return row, col

    @staticmethod
    @once_differentiable
    def backward(ctx, g_row, g_col):
        if g_row is None and g_col is None:
            return None, None, None, None
        return (*_backward(ctx, g_row, g_col), None, None)


def triton_similarity_lse(q, k, scale: float, exclude_diagonal: bool = False, diagonal_offset: int = 0):
    """Row lse (M,) float32 of scale · q kᵀ with the fused kernels (inputs fp32 / bf16 / fp16)."""
    return _TritonLSE.apply(q, k, float(scale), bool(exclude_diagonal), int(diagonal_offset))


def triton_similarity_lse_rowcol(q, k, scale: float, exclude_diagonal: bool = False):
    """(row lse (M,), col lse (N,)) float32 of one scale · q kᵀ from the same tiles."""
    return _TritonRowColLSE.apply(q, k, float(scale), bool(exclude_diagonal))
