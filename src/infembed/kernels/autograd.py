"""One autograd.Function for every backend that recomputes S in backward (chunked, triton).

A backend ("impl") provides
    prepare(q, k) -> (q', k')                     the tensors the kernels read (e.g. contiguous, D padded)
    forward(q', k', scale, exclude, offset, with_col, with_max) -> (row, col, row_max, col_max)
    backward(q', k', row, col, g_row, g_col, scale, exclude, offset, needs) -> (dq', dk')
with row (M,), col (N,) log-sum-exps (col None unless with_col) and row_max (M,), col_max (N,) the maxima of
S over the same entries (None unless with_max; −inf where everything is masked). The Function saves only q',
k' and the lse vectors, marks the maxima non-differentiable, and gives back gradients in the inputs' dtype
and shape (the first D columns of dq', dk').
"""

import torch
from torch.autograd.function import once_differentiable


class SimilarityLSE(torch.autograd.Function):
    """(row lse, col lse | None, row max | None, col max | None) of S = scale · q kᵀ."""

    @staticmethod
    def forward(ctx, q, k, impl, scale, exclude_diagonal, offset, with_col, with_max):
        q_p, k_p = impl.prepare(q, k)
        row, col, row_max, col_max = impl.forward(
            q_p, k_p, scale, exclude_diagonal, offset, with_col, with_max
        )
        ctx.save_for_backward(q_p, k_p, row, col)
        ctx.impl, ctx.args, ctx.shape, ctx.dtype = impl, (scale, exclude_diagonal, offset), q.shape, q.dtype
        ctx.mark_non_differentiable(*[t for t in (row_max, col_max) if t is not None])
        ctx.set_materialize_grads(False)
        return row, col, row_max, col_max

    @staticmethod
    @once_differentiable
    def backward(ctx, g_row, g_col, _g_row_max, _g_col_max):
        none = (None,) * 6
        if g_row is None and g_col is None:
            return (None, None, *none)
        q_p, k_p, row, col = ctx.saved_tensors
        needs = ctx.needs_input_grad[:2]
        grads = ctx.impl.backward(q_p, k_p, row, col, g_row, g_col, *ctx.args, needs)
        dim = ctx.shape[1]
        dq, dk = (None if g is None else g[:, :dim].to(ctx.dtype) for g in grads)
        return (dq, dk, *none)
