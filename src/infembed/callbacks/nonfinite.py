"""Non-finite guard: a NaN/inf loss or gradient stops the run before the optimiser step, naming the step, the loss
terms and the batch's source rows; the last good checkpoint stays the newest (nothing is saved on the way out).

``skip_steps: N`` instead skips up to N such steps: their gradients are dropped (set to None, so the optimiser leaves
every weight and moment untouched; the learning-rate schedule still advances) and each is reported; the (N+1)-th
stops the run. Under DDP the ranks agree (any rank non-finite → every rank skips or stops at the same step).
Cost: one norm over the gradients and one host sync per optimiser step.
"""

from __future__ import annotations

import logging

import torch
from lightning.pytorch.callbacks import Callback

from infembed.errors import UserError, check_int

log = logging.getLogger(__name__)


class NonFiniteError(UserError):
    """A training step produced a non-finite loss or gradient (lr too high, a bad row, an overflow)."""


class NonFiniteGuard(Callback):
    """See the module docstring. ``skip_steps``: how many non-finite steps to skip before stopping (0: stop at
    the first)."""

    def __init__(self, skip_steps: int = 0):
        check_int(skip_steps, "callbacks.nonfinite.skip_steps", minimum=0)
        self.skip_steps = skip_steps
        self.skipped: list[str] = []
        self.losses: list[torch.Tensor] = []  # of the micro-batches since the last optimiser step
        self.sources: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.sources += batch.sources

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self.losses.append(loss.detach())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        losses, sources, self.losses, self.sources = self.losses, self.sources, [], []
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        finite_loss = bool(torch.isfinite(torch.stack(losses)).all()) if losses else True
        finite_grads = not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))
        if not trainer.strategy.reduce_boolean_decision(not (finite_loss and finite_grads), all=False):
            return
        message = describe(trainer, finite_loss, finite_grads, sources)
        if len(self.skipped) >= self.skip_steps:
            raise NonFiniteError(message + stop_hint(self.skip_steps))
        optimizer.zero_grad(set_to_none=True)
        self.skipped.append(message)
        log.warning("skipped (%d of at most %d): %s", len(self.skipped), self.skip_steps, message)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.skipped:
            log.warning("%d non-finite step(s) skipped:\n  %s", len(self.skipped), "\n  ".join(self.skipped))


def describe(trainer, finite_loss: bool, finite_grads: bool, sources: list[str]) -> str:
    """One line: the step, what was non-finite, the logged loss terms and the rows of the batch."""
    what = (
        " and ".join(part for part, ok in (("loss", finite_loss), ("gradient", finite_grads)) if not ok)
        or "gradient on another rank"
    )
    terms = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    shown = ", ".join(f"{k.removeprefix('train/')}={v:.4g}" for k, v in sorted(terms.items()))
    return (
        f"non-finite {what} at step {trainer.global_step + 1} (loss terms: {shown or 'none logged'}); "
        f"batch rows: {'; '.join(sources)}"
    )


def stop_hint(skip_steps: int) -> str:
    return (
        f"; stopped before the optimiser step ({skip_steps} such steps may be skipped: "
        "callbacks.nonfinite.skip_steps); the last checkpoint is the last good step"
    )
