"""The eleven InF-Embed losses (docs/method.md, "The eleven losses"): one table, from which each loss gets its class and docstring.

Each name resolves to a subclass of :class:`InfEmbedLoss` (``LOSS_CLASSES[name]``, also what :func:`build_loss`
returns) whose docstring carries the row formula, the paper reference and the inputs; ``python -m infembed.losses``
prints the formula table that the README shows (a test keeps the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass

from infembed.errors import ConfigError
from infembed.losses import combiners
from infembed.losses.module import Combiner, InfEmbedLoss

REFERENCE = 'Zhuang, Trinh et al. (2025), "Towards Better Instruction Following Retrieval Models" (InF-IR / InF-Embed)'
INPUTS = """Inputs (forward): iq (N, D) L2-normalised pair embeddings z_i; passages (N, D) their positives p_i;
iq_swapped (N, K, D) instruction-swap pairs z_{i←j} and swap_mask (N, K) bool (needed iff the loss has ℓ_I).
s(a, b) = ⟨a, b⟩/τ; S_i = the valid swap slots of row i; the loss is the mean over rows i of the row term."""


@dataclass(frozen=True)
class LossSpec:
    """One registry entry: how the conditionals combine, which blocks, and the row term ℓ_i as text."""

    combiner: Combiner
    blocks: tuple[str, ...]
    formula: str


# name → spec; order = docs/method.md, "The eleven losses"
LOSS_REGISTRY: dict[str, LossSpec] = {
    "uni_p": LossSpec(combiners.uni, ("p",), "ℓ_P,i = −log e^{s_ii} / Σ_j e^{s(z_i,p_j)}"),
    "uni_iq": LossSpec(combiners.uni, ("iq",), "ℓ_IQ,i = −log e^{s_ii} / Σ_j e^{s(p_i,z_j)}"),
    "uni_i": LossSpec(
        combiners.uni, ("i",), "ℓ_I,i = −log e^{s_ii} / ( e^{s_ii} + Σ_{j∈S_i} e^{s(z_{i←j},p_i)} )"
    ),
    "uni_p_iq": LossSpec(
        combiners.uni, ("p", "iq"), "−log e^{s_ii} / ( Σ_j e^{s(z_i,p_j)} + Σ_{j≠i} e^{s(p_i,z_j)} )"
    ),
    "uni_p_i": LossSpec(
        combiners.uni, ("p", "i"), "−log e^{s_ii} / ( Σ_j e^{s(z_i,p_j)} + Σ_{j∈S_i} e^{s(z_{i←j},p_i)} )"
    ),
    "uni_i_iq": LossSpec(
        combiners.uni, ("i", "iq"), "−log e^{s_ii} / ( Σ_j e^{s(p_i,z_j)} + Σ_{j∈S_i} e^{s(z_{i←j},p_i)} )"
    ),
    "uni_p_i_iq": LossSpec(
        combiners.uni,
        ("p", "i", "iq"),
        "−log e^{s_ii} / ( Σ_j e^{s(z_i,p_j)} + Σ_{j≠i} e^{s(p_i,z_j)} + Σ_{j∈S_i} e^{s(z_{i←j},p_i)} )",
    ),
    "multi_p_iq": LossSpec(combiners.multi, ("p", "iq"), "ℓ_P,i + ℓ_IQ,i"),
    "multi_p_i": LossSpec(
        combiners.multi, ("p", "i"), "ℓ_P,i + ℓ_I,i (the paper's best objective; the default)"
    ),
    "multi_i_iq": LossSpec(combiners.multi, ("i", "iq"), "ℓ_I,i + ℓ_IQ,i"),
    "multi_p_i_iq": LossSpec(combiners.multi, ("p", "i", "iq"), "ℓ_P,i + ℓ_I,i + ℓ_IQ,i"),
}
LOSS_NAMES: tuple[str, ...] = tuple(LOSS_REGISTRY)


class UnknownLossError(ConfigError):
    """A loss name that is not in the registry."""


def _loss_class(name: str, spec: LossSpec) -> type[InfEmbedLoss]:
    """``multi_p_i`` → class ``MultiPILoss(InfEmbedLoss)`` with the formula, reference and inputs as docstring."""
    class_name = (
        "".join(part.upper() if len(part) == 1 else part.capitalize() for part in name.split("_")) + "Loss"
    )
    kind = "one softmax over the union of" if spec.combiner is combiners.uni else "the sum of the separate"
    doc = (
        f"InF-Embed loss ``{name}``: {kind} conditionals {', '.join(spec.blocks)}.\n\n"
        f"Row term: ℓ_i = {spec.formula}\n\n{INPUTS}\n\nReference: {REFERENCE}."
    )

    def __init__(self, temperature: float = 0.05, kernel: str = "auto", gather: bool = True):
        InfEmbedLoss.__init__(self, name, spec.blocks, spec.combiner, temperature, kernel, gather)

    return type(class_name, (InfEmbedLoss,), {"__doc__": doc, "__init__": __init__, "__module__": __name__})


LOSS_CLASSES: dict[str, type[InfEmbedLoss]] = {
    name: _loss_class(name, spec) for name, spec in LOSS_REGISTRY.items()
}


def build_loss(
    name: str, temperature: float = 0.05, kernel: str = "auto", gather: bool = True
) -> InfEmbedLoss:
    """Build the registered loss ``name`` (one of ``LOSS_NAMES``) as a ``torch.nn.Module``."""
    if name not in LOSS_CLASSES:
        raise UnknownLossError(f"loss.name={name!r}: expected one of {', '.join(LOSS_NAMES)}")
    return LOSS_CLASSES[name](temperature=temperature, kernel=kernel, gather=gather)


def formula_table() -> str:
    """The markdown table of the eleven row terms (the README's "The losses" table)."""
    lines = ["| `loss=` | row term ℓ_i |", "|---|---|"]
    lines += [f"| `{name}` | {spec.formula} |" for name, spec in LOSS_REGISTRY.items()]
    return "\n".join(lines)
