"""The eleven InF-Embed losses (method.md §5) as (combiner, blocks) table entries."""
from __future__ import annotations

from infembed.errors import ConfigError
from infembed.losses import combiners
from infembed.losses.module import Combiner, InfEmbedLoss

# name → (combiner, conditional blocks); order = method.md §5
LOSS_REGISTRY: dict[str, tuple[Combiner, tuple[str, ...]]] = {
    "uni_p": (combiners.uni, ("p",)),
    "uni_iq": (combiners.uni, ("iq",)),
    "uni_i": (combiners.uni, ("i",)),
    "uni_p_iq": (combiners.uni, ("p", "iq")),
    "uni_p_i": (combiners.uni, ("p", "i")),
    "uni_i_iq": (combiners.uni, ("i", "iq")),
    "uni_p_i_iq": (combiners.uni, ("p", "i", "iq")),
    "multi_p_iq": (combiners.multi, ("p", "iq")),
    "multi_p_i": (combiners.multi, ("p", "i")),
    "multi_i_iq": (combiners.multi, ("i", "iq")),
    "multi_p_i_iq": (combiners.multi, ("p", "i", "iq")),
}
LOSS_NAMES: tuple[str, ...] = tuple(LOSS_REGISTRY)


class UnknownLossError(ConfigError):
    """A loss name that is not in the registry."""


def build_loss(name: str, temperature: float = 0.05, kernel: str = "auto", gather: bool = True) -> InfEmbedLoss:
    """Build the registered loss ``name`` (one of ``LOSS_NAMES``) as a ``torch.nn.Module``."""
    if name not in LOSS_REGISTRY:
        raise UnknownLossError(f"unknown loss {name!r}; valid names: {', '.join(LOSS_NAMES)}")
    combiner, blocks = LOSS_REGISTRY[name]
    return InfEmbedLoss(name, blocks, combiner, temperature=temperature, kernel=kernel, gather=gather)
