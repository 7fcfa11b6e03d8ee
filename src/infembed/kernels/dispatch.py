"""Public entry points: validate inputs, apply the precision policy, pick a backend, call it.

Backends: ``naive`` (reference.py, materialises S), ``chunked`` (chunked.py, row blocks, pure torch),
``triton`` (triton_ops.py, fused kernels; imported lazily so ``import infembed.kernels`` never imports
triton), ``auto``: on CUDA for fp32/bf16/fp16, when triton is importable and passed its one-time self-check on
that device (selfcheck.py), whichever of triton and chunked tuning.py timed faster for the shape class (cached on
disk: every process runs the same backend and tiles); chunked otherwise (CPU, float64, or a failed check, with
one warning). ``triton`` on CUDA runs the tiles tuning.py chose for the class. Precision: precision.py (under autocast every backend sees inputs rounded to the autocast dtype and
runs with autocast off; outputs float32, float64 for float64 inputs).
"""

import importlib.util
import math
import os
import warnings

import torch

from infembed.kernels import tuning
from infembed.kernels.chunked import chunked_similarity
from infembed.kernels.errors import BackendUnavailableError, KernelInputError
from infembed.kernels.precision import autocast_inputs
from infembed.kernels.reference import naive_similarity
from infembed.kernels.selfcheck import triton_self_check

BACKENDS = ("auto", "naive", "chunked", "triton")
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_TRITON_CHECKED: dict[str, bool] = {}  # str(device) → passed the self-check


def _triton_eligible(device: torch.device, dtype) -> bool:
    """auto may use triton: a CUDA device, a dtype the kernels take, triton importable."""
    kernel_dtype = dtype is None or dtype in _TRITON_DTYPES
    return device.type == "cuda" and kernel_dtype and importlib.util.find_spec("triton") is not None


def _triton_verified(device: torch.device) -> bool:
    """The self-check's verdict for ``device``, run once; a failure warns once and selects chunked there."""
    key = str(device)
    if key not in _TRITON_CHECKED:
        failure = triton_self_check(device, _triton_ops(device, torch.float32))
        if failure is not None:
            warnings.warn(
                f"kernel backend 'auto': the triton kernels failed their self-check on {device} ({failure}); "
                "using 'chunked' on this device",
                RuntimeWarning,
                stacklevel=3,
            )
        _TRITON_CHECKED[key] = failure is None
    return _TRITON_CHECKED[key]


def resolve_backend(backend: str, device, dtype: torch.dtype | None = None) -> str:
    """The concrete backend for ``backend`` on ``device`` (and input ``dtype``): auto → triton where eligible
    and self-checked, else chunked."""
    if backend not in BACKENDS:
        raise KernelInputError(f"kernel backend: got {backend!r}, expected one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    device = torch.device(device)
    return "triton" if _triton_eligible(device, dtype) and _triton_verified(device) else "chunked"


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


def _triton_ops(device: torch.device, dtype: torch.dtype):
    """The triton backend module, imported now; clear errors where it cannot run."""
    if importlib.util.find_spec("triton") is None:
        raise BackendUnavailableError(
            "kernel backend 'triton': the triton package is not installed "
            "(pip install triton, or use backend='chunked')"
        )
    if dtype not in _TRITON_DTYPES:
        raise KernelInputError(f"q, k: backend 'triton' got dtype {dtype}, expected one of {_TRITON_DTYPES}")
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET", "0").lower() not in ("1", "true"):
        raise BackendUnavailableError(
            f"kernel backend 'triton': tensors are on {device}; Triton needs CUDA "
            "tensors, or TRITON_INTERPRET=1 set before triton is imported (CPU, slow)"
        )
    from infembed.kernels import triton_ops

    return triton_ops


def _plan(backend: str, q, k, exclude_diagonal, with_col) -> tuple[str, object]:
    """(backend that runs, triton plan | None) for ``backend`` triton or auto (self-checked): on CUDA from
    tuning.choose for the shape class (auto: triton vs chunked); under the interpreter
    tuning.interpreter_plan (forced tiles or the interpreter tile, nothing timed)."""
    if q.device.type != "cuda":
        return "triton", tuning.interpreter_plan(q.dtype, q.device)
    cls = tuning.shape_class(
        q.device, q.dtype, q.shape[0], k.shape[0], q.shape[1], exclude_diagonal, with_col
    )
    choice = tuning.choose(cls, q.device, q.dtype, with_chunked=backend == "auto")
    return choice.backend, (choice.plan(q.dtype) if choice.backend == "triton" else None)


def _similarity(q, k, scale, exclude_diagonal, offset, with_col, with_max, backend):
    """(row, col | None, row max | None, col max | None) from the chosen backend (inputs already checked)."""
    name = resolve_backend(backend, q.device, q.dtype)
    q, k = autocast_inputs(q, k)
    args = (q, k, scale, bool(exclude_diagonal), offset, with_col, bool(with_max))
    with torch.autocast(q.device.type, enabled=False):  # tuning, if any, times what then runs
        name, plan = _plan(backend, q, k, exclude_diagonal, with_col) if name == "triton" else (name, None)
        if name == "naive":
            return naive_similarity(*args)
        if name == "chunked":
            return chunked_similarity(*args)
        return _triton_ops(q.device, q.dtype).triton_similarity(*args, plan=plan)


def similarity_lse(q, k, scale, exclude_diagonal=False, backend="auto", diagonal_offset=0, *, with_max=False):
    """lse_i = log Σ_j exp(scale · q_i·k_j), skipping j == i + diagonal_offset when exclude_diagonal.

    q: (M, D), k: (N, D) → (M,) float32 (float64 for float64 inputs); differentiable w.r.t. q and k.
    A row with every column excluded gives -inf (and zero gradient). ``with_max``: returns (lse, max) with
    max_i = max_j scale · q_i·k_j over the same entries (detached; −inf for an empty row), from the same pass.
    """
    _check_inputs(q, k)
    scale = _check_scale(scale)
    if isinstance(diagonal_offset, bool) or not isinstance(diagonal_offset, int):
        raise KernelInputError(f"diagonal_offset: got {diagonal_offset!r}, expected an int")
    row, _, row_max, _ = _similarity(q, k, scale, exclude_diagonal, diagonal_offset, False, with_max, backend)
    return (row, row_max) if with_max else row


def similarity_lse_rowcol(q, k, scale, exclude_diagonal=False, backend="auto", *, with_max=False):
    """(row_lse (M,), col_lse (N,)) of ONE S = scale · q kᵀ: row_i = log Σ_j exp S_ij, col_j = log Σ_i exp
    S_ij.

    exclude_diagonal (needs M == N) drops S_ii from both. Outputs float32 (float64 for float64 inputs).
    ``with_max``: returns (row_lse, col_lse, row_max, col_max), the maxima of S over the same entries
    (detached, −inf where empty), from the same pass.
    """
    _check_inputs(q, k)
    scale = _check_scale(scale)
    if exclude_diagonal and q.shape[0] != k.shape[0]:
        raise KernelInputError(
            f"exclude_diagonal: needs M == N for similarity_lse_rowcol, got q rows "
            f"{q.shape[0]} and k rows {k.shape[0]}"
        )
    outs = _similarity(q, k, scale, exclude_diagonal, 0, True, with_max, backend)
    return outs if with_max else outs[:2]
