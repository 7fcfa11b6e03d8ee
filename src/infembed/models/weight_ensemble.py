"""Weight-space ensembling of a fine-tuned encoder with the model it started from (WiSE-FT).

Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022: fine-tuning raises in-distribution accuracy but
can lower it on other distributions; linearly interpolating the weights,

    θ(α) = (1 − α)·θ₀ + α·θ_ft,      α ∈ [0, 1]  (α = 1: the fine-tuned model, α = 0: the initial one),

keeps much of the gain while recovering the initial model's robustness. One encoder pass at inference, no
retraining: α is chosen after training (``python run.py task=evaluate ckpt_path=... evaluation.wise_ft=0.5``).
"""

from __future__ import annotations

import torch

from infembed.errors import CheckpointError
from infembed.models.encoder import BiEncoder


def interpolate(fine_tuned: BiEncoder, initial: BiEncoder, alpha: float) -> BiEncoder:
    """``fine_tuned`` with θ(α) written into its weights in place (floating-point tensors; integer buffers kept)."""
    if fine_tuned.options().get("lora"):
        raise CheckpointError(
            "evaluation.wise_ft on a LoRA checkpoint: the adapters' A and B matrices do not "
            "interpolate linearly; export with merged adapters first"
        )
    tuned, start = fine_tuned.state_dict(), initial.state_dict()
    mismatched = sorted(set(tuned) ^ set(start)) or [k for k in tuned if tuned[k].shape != start[k].shape]
    if mismatched:
        raise CheckpointError(
            f"evaluation.wise_ft: the checkpoint's encoder ({fine_tuned.name}) and the initial model "
            f"({initial.name}) differ at {mismatched[0]!r}; give the model preset the checkpoint was trained from "
            "(model=...)"
        )
    with torch.no_grad():
        blended = {
            k: torch.lerp(start[k].to(v.dtype), v, alpha) if v.is_floating_point() else v
            for k, v in tuned.items()
        }
    fine_tuned.load_state_dict(blended)
    return fine_tuned


__all__ = ["interpolate"]
