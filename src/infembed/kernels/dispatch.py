"""Public entry points: validate inputs, pick a backend, call it.

Backends: ``naive`` (reference.py, materialises S), ``chunked`` (chunked.py, row blocks, pure torch),
``triton`` (triton_ops.py, fused kernels; imported lazily so ``import infembed.kernels`` never imports
triton), ``auto`` (triton on CUDA when triton is importable, chunked elsewhere).
"""

import importlib.util
import math
import os

import torch

from infembed.kernels.chunked import chunked_similarity_lse, chunked_similarity_lse_rowcol
from infembed.kernels.errors import BackendUnavailableError, KernelInputError
from infembed.kernels.reference import naive_similarity_lse, naive_similarity_lse_rowcol

BACKENDS = ("auto", "naive", "chunked", "triton")
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def resolve_backend(backend: str, device) -> str:
    """The concrete backend for ``backend`` on ``device``: auto → triton on CUDA (triton importable), else
    chunked."""
    if backend not in BACKENDS:
        raise KernelInputError(f"kernel backend: got {backend!r}, expected one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    on_cuda = torch.device(device).type == "cuda"
    return "triton" if on_cuda and importlib.util.find_spec("triton") is not None else "chunked"


def _check_scale(scale) -> float:
    """scale as a finite Python float (a fixed number: the kernels do not differentiate w.r.t. it)."""
    if isinstance(scale, torch.Tensor):
        if scale.numel() != 1 or scale.requires_grad:
            raise KernelInputError(
                f"scale: got a tensor of shape {tuple(scale.shape)} (requires_grad="
                f"{scale.requires_grad}), expected a fixed number"
            )
        scale = scale.item()
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise KernelInputError(f"scale: got {scale!r}, expected a finite number")
    return float(scale)


def _check_inputs(q, k):
    """q (M, D) and k (N, D): non-empty 2-D floating tensors with the same D, dtype and device."""
    for name, t in (("q", q), ("k", k)):
        if not isinstance(t, torch.Tensor):
            raise KernelInputError(f"{name}: got {type(t).__name__}, expected a torch.Tensor")
        if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise KernelInputError(
                f"{name}: got shape {tuple(t.shape)}, expected a non-empty 2-D (rows, D) tensor"
            )
        if t.dtype not in _DTYPES:
            raise KernelInputError(f"{name}: got dtype {t.dtype}, expected one of {_DTYPES}")
    if q.shape[1] != k.shape[1]:
        raise KernelInputError(
            f"q, k: embedding dims differ ({q.shape[1]} vs {k.shape[1]}), expected the same D"
        )
    if q.dtype != k.dtype or q.device != k.device:
        raise KernelInputError(
            f"q, k: got {q.dtype}/{q.device} and {k.dtype}/{k.device}, expected the same dtype and device"
        )


def _triton_ops(q):
    """The triton backend module, imported now; clear errors where it cannot run."""
    if importlib.util.find_spec("triton") is None:
        raise BackendUnavailableError(
            "kernel backend 'triton': the triton package is not installed "
            "(pip install triton, or use backend='chunked')"
        )
    if q.dtype not in _TRITON_DTYPES:
        raise KernelInputError(
            f"q, k: backend 'triton' got dtype {q.dtype}, expected one of {_TRITON_DTYPES}"
        )
    if q.device.type != "cuda" and os.environ.get("TRITON_INTERPRET", "0").lower() not in ("1", "true"):
        raise BackendUnavailableError(
            f"kernel backend 'triton': tensors are on {q.device}; Triton needs CUDA "
            "tensors, or TRITON_INTERPRET=1 set before triton is imported (CPU, slow)"
        )
    from infembed.kernels import triton_ops

    return triton_ops


def similarity_lse(q, k, scale, exclude_diagonal=False, backend="auto", diagonal_offset=0):
    """lse_i = log Σ_j exp(scale · q_i·k_j), skipping j == i + diagonal_offset when exclude_diagonal.

    q: (M, D), k: (N, D) → (M,) float32 (float64 for float64 inputs); differentiable w.r.t. q and k.
    A row with every column excluded gives -inf (and zero gradient).
    """
    _check_inputs(q, k)
    scale = _check_scale(scale)
    if isinstance(diagonal_offset, bool) or not isinstance(diagonal_offset, int):
        raise KernelInputError(f"diagonal_offset: got {diagonal_offset!r}, expected an int")
    name = resolve_backend(backend, q.device)
    if name == "naive":
        return naive_similarity_lse(q, k, scale, bool(exclude_diagonal), diagonal_offset)
    if name == "chunked":
        return chunked_similarity_lse(q, k, scale, bool(exclude_diagonal), diagonal_offset)
    return _triton_ops(q).triton_similarity_lse(q, k, scale, bool(exclude_diagonal), diagonal_offset)


def similarity_lse_rowcol(q, k, scale, exclude_diagonal=False, backend="auto"):
    """(row_lse (M,), col_lse (N,)) of ONE S = scale · q kᵀ: row_i = log Σ_j exp S_ij, col_j = log Σ_i exp
    S_ij.

    exclude_diagonal (needs M == N) drops S_ii from both. Outputs float32 (float64 for float64 inputs).
    """
    _check_inputs(q, k)
    scale = _check_scale(scale)
    if exclude_diagonal and q.shape[0] != k.shape[0]:
        raise KernelInputError(
            f"exclude_diagonal: needs M == N for similarity_lse_rowcol, got q rows "
            f"{q.shape[0]} and k rows {k.shape[0]}"
        )
    name = resolve_backend(backend, q.device)
    if name == "naive":
        return naive_similarity_lse_rowcol(q, k, scale, bool(exclude_diagonal))
    if name == "chunked":
        return chunked_similarity_lse_rowcol(q, k, scale, bool(exclude_diagonal))
    return _triton_ops(q).triton_similarity_lse_rowcol(q, k, scale, bool(exclude_diagonal))
