"""Errors raised by the similarity log-sum-exp kernels."""


class KernelInputError(ValueError):
    """An argument of ``similarity_lse`` / ``similarity_lse_rowcol`` is malformed (names the field and
    expectation)."""


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (e.g. ``triton`` without triton, or on CPU without the
    interpreter)."""
