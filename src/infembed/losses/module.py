"""The loss module: validate inputs → (gather) → compute the needed blocks → combine → log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from infembed.losses.blocks import BLOCK_NAMES, BatchView, BlockScores, compute_blocks, positive_scores
from infembed.losses.combiners import conditional
from infembed.losses.distributed import gather_rows, world_size_if_gathering

Combiner = Callable[[Tensor, list[Tensor]], Tensor]


class LossInputError(ValueError):
    """A loss was called with embeddings of the wrong shape, dtype or with a needed input missing."""


@dataclass
class LossOutput:
    """``loss``: scalar tensor with graph. ``logs``: detached float scalars (see ``InfEmbedLoss``)."""

    loss: Tensor
    logs: dict[str, Tensor]


class InfEmbedLoss(nn.Module):
    """One InF-Embed objective (docs/method.md, "The three conditionals" and "The eleven losses"): a combiner over a set of conditional blocks.

    Args:
        name: registry name, e.g. ``"multi_p_i"`` (for repr and errors).
        blocks: subset of ``("p", "iq", "i")`` (ℓ_P, ℓ_IQ, ℓ_I); only these are computed.
        combiner: ``combiners.uni`` (one softmax over the union, positive counted once) or ``combiners.multi``.
        temperature: τ > 0; scores are s(a, b) = ⟨a, b⟩ / τ, exactly.
        kernel: ``infembed.kernels`` backend for the log-sum-exp over similarity matrices.
        gather: all-gather pairs and passages across ranks when a process group with W > 1 is initialised.

    Forward ``(iq, passages, iq_swapped=None, swap_mask=None)``:
        iq (N, D) L2-normalised z_i; passages (N, D) L2-normalised p_i aligned with iq;
        iq_swapped (N, K, D) z_{i←j} (none is the positive; needed iff ``needs_swaps``);
        swap_mask (N, K) bool, False marks a padding slot (its values are ignored but must be finite);
        None = all valid. Returns ``LossOutput`` with ``loss`` = mean over (local) rows of ℓ_i, and ``logs``:
          ``l_p`` / ``l_iq`` / ``l_i``: each computed conditional's value (mean over rows of
              −log e^{s_ii} / (e^{s_ii} + Σ_{negatives of that block} e^{s_ij})), also for uni losses;
          ``margin``: mean over rows having a negative of cos(z_i, p_i) − the hardest negative's cosine over the
              union of the loss's candidate sets (cosine units, so independent of τ);
          ``negatives``: mean over rows of the effective number of negatives
              n_eff,i = Σ_{negatives j} e^{s_ij − max_j s_ij} ∈ [1, #negatives] (0 for a row with none): 1 when
              one hard negative dominates the softmax, the candidate count when all are equally hard.
    """

    def __init__(
        self,
        name: str,
        blocks: tuple[str, ...],
        combiner: Combiner,
        temperature: float = 0.05,
        kernel: str = "auto",
        gather: bool = True,
    ):
        super().__init__()
        unknown = set(blocks) - set(BLOCK_NAMES)
        if not blocks or unknown:
            raise ValueError(f"blocks must be a non-empty subset of {BLOCK_NAMES}, got {blocks}")
        if not temperature > 0:
            raise ValueError(f"loss temperature must be > 0, got {temperature}")
        self.name, self.blocks, self.combiner = name, tuple(blocks), combiner
        self.temperature, self.kernel, self.gather = float(temperature), kernel, gather

    @property
    def needs_swaps(self) -> bool:
        """True iff the loss contains ℓ_I, i.e. the caller must encode instruction-swap pairs."""
        return "i" in self.blocks

    def extra_repr(self) -> str:
        return f"name={self.name}, temperature={self.temperature}, kernel={self.kernel}, gather={self.gather}"

    def forward(
        self, iq: Tensor, passages: Tensor, iq_swapped: Tensor | None = None, swap_mask: Tensor | None = None
    ) -> LossOutput:
        self._check_inputs(iq, passages, iq_swapped, swap_mask)
        view = self._view(iq, passages, iq_swapped, swap_mask)
        positive = positive_scores(view)  # (n,)
        scores = compute_blocks(self.blocks, view)
        per_row = self.combiner(positive, [scores[b].lse for b in self.blocks])  # (n,)
        logs = _logs(positive, scores, view)
        return LossOutput(loss=per_row.mean(), logs=logs)

    def _view(self, iq, passages, iq_swapped, swap_mask) -> BatchView:
        iq_all, passages_all, offset = iq, passages, 0
        if world_size_if_gathering(self.gather) > 1:
            iq_all, passages_all, offset = gather_rows(iq, passages)
        return BatchView(
            iq=iq,
            passages=passages,
            iq_all=iq_all,
            passages_all=passages_all,
            offset=offset,
            iq_swapped=iq_swapped if self.needs_swaps else None,
            swap_mask=swap_mask if self.needs_swaps else None,
            scale=1.0 / self.temperature,
            backend=self.kernel,
        )

    def _check_inputs(self, iq, passages, iq_swapped, swap_mask) -> None:
        where = f"loss {self.name!r}"
        if iq.dim() != 2 or passages.shape != iq.shape:
            raise LossInputError(
                f"{where}: iq and passages must both be (N, D) with the same shape, got "
                f"iq {tuple(iq.shape)} and passages {tuple(passages.shape)}"
            )
        if not self.needs_swaps:
            return
        n, d = iq.shape
        if iq_swapped is None:
            raise LossInputError(
                f"{where} contains ℓ_I and needs iq_swapped (N, K, D) = ({n}, K, {d}) instruction-swap "
                "embeddings z_{i←j}; got None"
            )
        if iq_swapped.dim() != 3 or iq_swapped.shape[0] != n or iq_swapped.shape[2] != d:
            raise LossInputError(
                f"{where}: iq_swapped must be (N, K, D) = ({n}, K, {d}), got {tuple(iq_swapped.shape)}"
            )
        if swap_mask is not None and (
            swap_mask.dtype != torch.bool or swap_mask.shape != iq_swapped.shape[:2]
        ):
            raise LossInputError(
                f"{where}: swap_mask must be a bool tensor of shape (N, K) = {tuple(iq_swapped.shape[:2])}, "
                f"got {swap_mask.dtype} {tuple(swap_mask.shape)}"
            )


@torch.no_grad()
def _logs(positive: Tensor, scores: dict[str, BlockScores], view: BatchView) -> dict[str, Tensor]:
    """Per-conditional values, positive-vs-hardest margin and effective negatives (see ``InfEmbedLoss``)."""
    logs = {f"l_{b}": conditional(positive, s.lse).mean() for b, s in scores.items()}
    union_lse = torch.logsumexp(torch.stack([s.lse for s in scores.values()]), 0)  # (n,)
    hardest = torch.stack([s.hardest for s in scores.values()]).amax(0)  # (n,) cosine
    has_neg = torch.isfinite(hardest)  # (n,)
    positive_cos = positive / view.scale  # (n,)
    margin = torch.where(has_neg, positive_cos - hardest, torch.zeros_like(hardest))  # (n,)
    logs["margin"] = margin.sum() / has_neg.sum().clamp(min=1)
    n_eff = torch.where(has_neg, torch.exp(union_lse - hardest * view.scale), torch.zeros_like(hardest))
    logs["negatives"] = n_eff.mean()
    return {k: v.detach() for k, v in logs.items()}
