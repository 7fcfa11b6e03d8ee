"""LightningModule: encode pairs, passages and instruction-swap pairs, then apply one InF-Embed loss.

Per training step (N triplets on this device, K swap negatives per triplet, S unique new swap texts):

1. z = E(pairs)            (N, D)  each "query instruction" text encoded once (the positive is never re-encoded);
2. p = E(passages)         (N, D);
3. only for losses with ℓ_I: e = E(swap_pairs) (S, D); z_{i←j} = cat(z, e)[swap_index] (N, K, D). Swapped texts
   that already are a pair text of the batch (Q+ ⊕ I- is the second triplet of its row) reuse that embedding.
4. loss(z, p, z_swapped, swap_mask) from the registry in :mod:`infembed.losses`.

With the encoder's ``fusion="attention"`` (:mod:`infembed.models.fusion`), steps 1 and 3 become one pass over the
N queries and one over the N instructions: z and z_{i←j} are fused from those token states (no swap text is
encoded). The gradient cache does not apply to it (refused: it caches pooled embeddings, not token states).

With ``grad_cache_chunk_size`` = c, steps 1-3 go through :mod:`infembed.models.grad_cache`: each group is encoded
in chunks of c texts without a graph and re-encoded chunk by chunk in the backward (same gradients, the memory of
one chunk); under DDP the gradients are then averaged once per optimiser step by the module, not by DDP's hooks.

The optimiser and the learning-rate schedule are partials from the config (``optimizer=``, ``scheduler=``); biases
and norm weights get no weight decay whatever the optimiser. Master weights stay fp32 whatever the trainer
precision (``bf16-mixed`` autocasts only the compute).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import lightning as L
import torch

from infembed.errors import ConfigError
from infembed.losses import InfEmbedLoss
from infembed.models.checkpoint import KEY, encoder_record
from infembed.models.encoder import BiEncoder
from infembed.models.grad_cache import all_reduce_gradients, cached_encode, check_fusion, disable_ddp_sync
from infembed.models.schedules import warmup_schedule
from infembed.models.validation_metrics import ValidationMetrics

if TYPE_CHECKING:
    from infembed.data.collator import TripletBatch

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
DEFAULT_OPTIMIZER = functools.partial(torch.optim.AdamW, lr=2e-5, weight_decay=0.01)
DEFAULT_SCHEDULER = functools.partial(warmup_schedule, name="linear", warmup_ratio=0.1)
log = logging.getLogger(__name__)


class RetrievalModule(L.LightningModule):
    """Trains a :class:`BiEncoder` with an InF-Embed loss.

    Args:
        encoder: the bi-encoder to train.
        loss: an :class:`~infembed.losses.InfEmbedLoss` (``infembed.losses.build_loss``).
        optimizer: ``optimizer(param_groups) -> Optimizer``, e.g. ``functools.partial(torch.optim.AdamW, lr=1e-4,
            weight_decay=0.01)``; the second parameter group (biases, norms) has weight decay 0.
        scheduler: ``scheduler(optimizer, total_steps=...) -> LRScheduler`` stepped every optimiser step
            (``infembed.models.schedules.warmup_schedule``), or None for a constant learning rate.
        grad_cache_chunk_size: None (encode each group of texts at once) or c >= 1: the gradient cache with c
            sequences per encoder sub-batch (:mod:`infembed.models.grad_cache`).
    """

    def __init__(
        self,
        encoder: BiEncoder,
        loss: InfEmbedLoss,
        optimizer: OptimizerFactory = DEFAULT_OPTIMIZER,
        scheduler: SchedulerFactory | None = DEFAULT_SCHEDULER,
        grad_cache_chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        check_fusion(grad_cache_chunk_size, encoder.fusion)
        self.chunk_size = grad_cache_chunk_size
        self.encoder = encoder
        self.loss_fn = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_metrics = ValidationMetrics()

    def encode(self, tokens: dict[str, torch.Tensor], tower: str) -> torch.Tensor:
        """One group of texts (B, L) -> (B, D): at once, or through the gradient cache in training."""
        if self.chunk_size is None or not (self.training and torch.is_grad_enabled()):
            return self.encoder(tokens, tower)
        return cached_encode(functools.partial(self.encoder, tower=tower), tokens, self.chunk_size)

    def embed_batch(self, batch: TripletBatch) -> dict[str, torch.Tensor | None]:
        """Encoder passes for one collated batch -> the loss inputs."""
        needs_swaps = self.loss_fn.needs_swaps
        if needs_swaps and batch.swap_index is None:
            raise ConfigError(
                f"loss {self.loss_fn.name!r} needs instruction-swap negatives but the batch has none: "
                "set data.num_swap_negatives > 0 (or auto)"
            )
        swap_mask = batch.swap_mask if needs_swaps else None  # (N, K)
        if self.encoder.fusion == "attention":
            swap_index = batch.swap_index if needs_swaps else None  # (N, K) into the instructions
            iq, iq_swapped = self.encoder.encode_fused(batch.queries, batch.instructions, swap_index)
            passages = self.encode(batch.passages, "passage")  # (N, D)
            return {"iq": iq, "passages": passages, "iq_swapped": iq_swapped, "swap_mask": swap_mask}
        iq = self.encode(batch.pairs, "pair")  # (N, D)
        passages = self.encode(batch.passages, "passage")  # (N, D)
        iq_swapped = None
        if needs_swaps:
            pool = iq  # (N, D)
            if batch.swap_pairs["input_ids"].shape[0] > 0:
                pool = torch.cat([iq, self.encode(batch.swap_pairs, "pair")])  # (N + S, D)
            iq_swapped = pool[batch.swap_index]  # (N, K, D)
        return {"iq": iq, "passages": passages, "iq_swapped": iq_swapped, "swap_mask": swap_mask}

    def _step(self, batch: TripletBatch, stage: str) -> torch.Tensor:
        embeddings = self.embed_batch(batch)
        out = self.loss_fn(**embeddings)
        n = batch.num_triplets
        self.log(f"{stage}/loss", out.loss, prog_bar=True, batch_size=n, sync_dist=stage != "train")
        for key, value in out.logs.items():
            self.log(f"{stage}/{key}", value, batch_size=n, sync_dist=stage != "train")
        if stage == "val":  # retrieval metrics of the validation batches (torchmetrics: synced over ranks)
            self.val_metrics.update(
                embeddings["iq"], embeddings["passages"], self.global_rank, self.trainer.world_size
            )
            metrics = {f"val/{k}": m for k, m in self.val_metrics.metrics().items()}
            self.log_dict(metrics, prog_bar=True, batch_size=n)
        return out.loss

    def training_step(self, batch: TripletBatch, batch_idx: int) -> torch.Tensor:
        if batch_idx == 0:
            self._log_loss_batch(batch.num_triplets)
        return self._step(batch, "train")

    def _log_loss_batch(self, n: int) -> None:
        """Log the number of triplets the loss sees, gathered over the ranks (every rank must call this)."""
        total = int(self.all_gather(torch.tensor(n, device=self.device)).sum())
        if self.global_rank == 0:
            log.info(
                "loss batch: %d triplets gathered from %d rank(s) (%d on this one)",
                total,
                self.trainer.world_size,
                n,
            )

    def on_train_start(self) -> None:
        if self.chunk_size is not None:
            disable_ddp_sync(self.trainer.model)  # the chunks' backward passes bypass DDP's hooks

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.chunk_size is not None:  # once per optimiser step, before clipping
            all_reduce_gradients(list(self.parameters()))

    def validation_step(self, batch: TripletBatch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def parameter_groups(self) -> list[dict]:
        """[weights with decay, biases and norm weights (1-D) without decay]."""
        decay, no_decay = [], []
        for param in self.parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 else decay).append(param)
        return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameter_groups())
        if self.scheduler_factory is None:
            return optimizer
        total = self.trainer.estimated_stepping_batches
        if total == float("inf"):
            raise ConfigError(
                "trainer.max_steps must be > 0: the training stream has no end, so the schedule "
                "needs a step budget"
            )
        scheduler = self.scheduler_factory(optimizer, total_steps=max(1, int(total)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """What rebuilds the encoder on another machine (see :mod:`infembed.models.checkpoint`)."""
        loss = {"name": self.loss_fn.name, "temperature": self.loss_fn.temperature}
        checkpoint[KEY] = {"encoder": encoder_record(self.encoder), "loss": loss}
