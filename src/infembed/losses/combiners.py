"""The two ways of joining conditionals (docs/method.md, "The eleven losses").

With positive score s_ii and, per block b, L_b,i = log Σ_{negatives j of b} e^{s_ij}:

    uni:   ℓ_i = −log e^{s_ii} / (e^{s_ii} + Σ_b Σ_{neg j of b} e^{s_ij})
               = logsumexp(s_ii, L_1,i, …, L_B,i) − s_ii                (ONE softmax, positive counted once)
    multi: ℓ_i = Σ_b −log e^{s_ii} / (e^{s_ii} + Σ_{neg j of b} e^{s_ij})
               = Σ_b (logaddexp(s_ii, L_b,i) − s_ii)                    (sum of separately normalised conditionals)

Both return the per-row loss (n,); the caller takes the mean over rows.
"""

from __future__ import annotations

import torch
from torch import Tensor


def conditional(positive: Tensor, negative_lse: Tensor) -> Tensor:
    """One conditional's per-row loss: logaddexp(s_ii, L_b,i) − s_ii. Shapes (n,) → (n,)."""
    return torch.logaddexp(positive, negative_lse) - positive


def uni(positive: Tensor, negative_lse: list[Tensor]) -> Tensor:
    """One softmax over the union of all blocks' candidates, the positive counted once. Returns (n,)."""
    logits = torch.stack([positive, *negative_lse], dim=-1)  # (n, 1 + B)
    return torch.logsumexp(logits, dim=-1) - positive


def multi(positive: Tensor, negative_lse: list[Tensor]) -> Tensor:
    """Sum of the separately normalised conditionals. Returns (n,)."""
    return torch.stack([conditional(positive, lse) for lse in negative_lse], dim=-1).sum(-1)  # (n,)
