"""LightningModule: encode pairs, passages and instruction-swap pairs, then apply one InF-Embed loss.

Per training step (N triplets on this device, K swap negatives per triplet, S unique new swap texts):

1. z = E(pairs)            (N, D)  each "query instruction" text encoded once (the positive is never re-encoded);
2. p = E(passages)         (N, D);
3. only for losses with ℓ_I: e = E(swap_pairs) (S, D); z_{i←j} = cat(z, e)[swap_index] (N, K, D). Swapped texts
   that already are a pair text of the batch (Q+ ⊕ I- is the second triplet of its row) reuse that embedding.
4. loss(z, p, z_swapped, swap_mask) from the registry in :mod:`infembed.losses`.

The optimiser is AdamW (no weight decay on biases and norms) with linear warmup then linear decay to zero; the
master weights stay fp32 whatever the trainer precision (``bf16-mixed`` autocasts only the compute).
"""
from __future__ import annotations

import logging

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from infembed.losses import build_loss
from infembed.models.encoder import BiEncoder

log = logging.getLogger(__name__)


class RetrievalModule(L.LightningModule):
    """Trains a :class:`BiEncoder` with an InF-Embed loss.

    Args:
        encoder: keyword arguments of :class:`BiEncoder` (plain dict, so checkpoints rebuild without Hydra).
        loss: ``{"name": ..., "temperature": ...}``; the name is one of ``infembed.losses.LOSS_NAMES``.
        kernel: log-sum-exp backend for the loss (``auto`` | ``naive`` | ``chunked`` | ``triton``).
        lr, weight_decay, betas, eps: AdamW settings.
        warmup_ratio: share of the total optimiser steps spent warming up linearly from 0 to ``lr``.
    """

    def __init__(
        self,
        encoder: dict,
        loss: dict,
        kernel: str = "auto",
        lr: float = 2e-5,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        warmup_ratio: float = 0.1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = BiEncoder(**encoder)
        self.loss_fn = build_loss(loss["name"], temperature=loss["temperature"], kernel=kernel)

    @property
    def needs_swaps(self) -> bool:
        return bool(self.loss_fn.needs_swaps)

    def embed_batch(self, batch: dict) -> dict[str, torch.Tensor | None]:
        """Encoder passes for one collated batch -> the loss inputs."""
        iq = self.encoder(batch["pairs"], "pair")  # (N, D)
        passages = self.encoder(batch["passages"], "passage")  # (N, D)
        iq_swapped = swap_mask = None
        if self.needs_swaps:
            if "swap_index" not in batch:
                raise ValueError(
                    f"loss {self.hparams.loss['name']!r} needs instruction-swap negatives but the batch has none: "
                    "set data.num_swap_negatives > 0 (or auto)"
                )
            swap_pairs = batch["swap_pairs"]
            if swap_pairs["input_ids"].shape[0] > 0:
                extra = self.encoder(swap_pairs, "pair")  # (S, D)
                pool = torch.cat([iq, extra])  # (N + S, D)
            else:
                pool = iq  # (N, D)
            iq_swapped = pool[batch["swap_index"]]  # (N, K, D)
            swap_mask = batch["swap_mask"]  # (N, K)
        return {"iq": iq, "passages": passages, "iq_swapped": iq_swapped, "swap_mask": swap_mask}

    def on_train_start(self) -> None:
        """One log line with the derived sizes, so a sweep's batch arithmetic can be checked at a glance."""
        datamodule = self.trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "describe"):
            return
        sizes = datamodule.describe()
        n, k = sizes["triplets_per_device"], sizes["num_swap_negatives"] if self.needs_swaps else 0
        swaps = f" + at most {n * k} unique swap pairs (K={k})" if self.needs_swaps else " (no swap pairs)"
        rank_zero_info(
            f"batch sizes: {sizes}; loss={self.hparams.loss['name']}; "
            f"encoder passes per device and step: {n} pairs + {n} passages{swaps}"
        )

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        out = self.loss_fn(**self.embed_batch(batch))
        n = batch["pairs"]["input_ids"].shape[0]
        self.log(f"{stage}/loss", out.loss, prog_bar=True, batch_size=n, sync_dist=stage != "train")
        for key, value in out.logs.items():
            self.log(f"{stage}/{key}", value, batch_size=n, sync_dist=stage != "train")
        return out.loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self):
        hp = self.hparams
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim < 2 else decay).append(param)  # biases and norm weights are 1-D
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=hp.lr,
            betas=tuple(hp.betas),
            eps=hp.eps,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(hp.warmup_ratio * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def linear_warmup_decay(warmup: int, total: int):
    """lr factor: step/warmup during warmup, then (total - step)/(total - warmup) down to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor
