"""Similarity log-sum-exp primitives: lse of scale · q kᵀ along rows (and columns) without materialising it.

``naive`` (reference), ``chunked`` (pure torch, row blocks) and ``triton`` (fused kernels) backends; triton is
only imported when the triton backend is used.
"""

from infembed.kernels.dispatch import BACKENDS, resolve_backend, similarity_lse, similarity_lse_rowcol
from infembed.kernels.errors import BackendUnavailableError, KernelInputError

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "KernelInputError",
    "resolve_backend",
    "similarity_lse",
    "similarity_lse_rowcol",
]
