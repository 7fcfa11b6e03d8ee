"""Precision policy of the similarity kernels, one home for every backend and for the losses' scores.

* Accumulation and outputs: float32 (float64 for float64 inputs), ``compute_dtype``.
* Inputs under autocast: fp32 embeddings are rounded once to the autocast dtype (bf16 under ``bf16-mixed``)
  before the similarity, so the fused kernels run on tensor cores; products are exact in fp32 and summed in
  fp32 (``autocast_inputs``). The backends themselves then run with autocast off, so no matmul inside them
  rounds a score to bf16. Gradients flow back through the cast to the fp32 leaves.
"""

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 inputs, float32 for everything else (fp32 accumulation and outputs)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def finite(lse: torch.Tensor) -> torch.Tensor:
    """lse with −inf replaced by 0, so exp(S − lse) is 0 (not nan) on fully masked rows/columns."""
    return lse.masked_fill(torch.isneginf(lse), 0.0)


def autocast_inputs(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, k) as the similarity sees them: fp32 inputs under autocast become the autocast dtype (bf16/fp16)."""
    device = q.device.type
    if q.dtype != torch.float32 or not torch.is_autocast_enabled(device):
        return q, k
    dtype = torch.get_autocast_dtype(device)
    return q.to(dtype), k.to(dtype)
