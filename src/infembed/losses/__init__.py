"""InF-Embed contrastive losses: three conditionals (ℓ_P, ℓ_IQ, ℓ_I), two combiners (uni, multi), a registry.

from infembed.losses import build_loss, LOSS_NAMES
loss_fn = build_loss("multi_p_i", temperature=0.05, kernel="auto", gather=True)
out = loss_fn(iq, passages, iq_swapped, swap_mask)   # out.loss, out.logs
"""

from infembed.losses.distributed import UnequalShardError
from infembed.losses.module import InfEmbedLoss, LossInputError, LossOutput
from infembed.losses.registry import (
    LOSS_CLASSES,
    LOSS_NAMES,
    LOSS_REGISTRY,
    UnknownLossError,
    build_loss,
    formula_table,
)

__all__ = [
    "LOSS_CLASSES",
    "LOSS_NAMES",
    "LOSS_REGISTRY",
    "InfEmbedLoss",
    "LossInputError",
    "LossOutput",
    "UnequalShardError",
    "UnknownLossError",
    "build_loss",
    "formula_table",
]
