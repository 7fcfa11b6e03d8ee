"""Training progress counted in optimiser steps: a bar in a terminal, plain log lines in a file (a SLURM log).

Lightning's bars count the batches of an epoch. The training stream here is one endless epoch bounded by
``trainer.max_steps``, so they read "Epoch 0/-2", a file gets one bar when the run ends, and a resumed run starts
again at 0. :class:`StepProgress` counts from ``trainer.global_step`` (the restored step after a resume) to
``max_steps`` and reports, every ``every_n_steps`` steps and once at the end::

    step 40/100 | train/loss 3.121 | lr 1.80e-05 | 52.3 triplets/s | peak mem 1.21 GiB (cuda)

triplets/s = (triplets of every device since the previous report) / (wall seconds since it), where one device's
triplets per batch are ``batch.num_triplets`` and every device sees as many. Peak memory is
``torch.cuda.max_memory_allocated`` on a GPU and the process's peak resident set size on a CPU. Validation adds one
line with the ``val/*`` values. Rank 0 only: Lightning disables progress bars on the other ranks.
"""

from __future__ import annotations

import logging
import resource
import sys
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import ProgressBar
from tqdm import tqdm

from infembed.errors import check_int

log = logging.getLogger(__name__)
GIB = 2**30


def peak_memory(device: torch.device) -> str:
    """``"1.21 GiB (cuda)"``: peak allocated GPU memory, or the process's peak RSS on a CPU (Linux: KiB)."""
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / GIB:.2f} GiB (cuda)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB:.2f} GiB (rss)"


class StepProgress(ProgressBar):
    """Step-based progress: a tqdm bar when ``interactive`` (default: stdout is a terminal), else log lines.

    Args:
        every_n_steps: optimiser steps between two reports (a line, or a refresh of the bar's numbers).
        interactive: force the bar (True) or the lines (False); None decides from ``sys.stdout.isatty()``.
    """

    def __init__(self, every_n_steps: int = 50, interactive: bool | None = None) -> None:
        super().__init__()
        check_int(every_n_steps, "callbacks.progress.every_n_steps", minimum=1)
        self.every_n_steps = every_n_steps
        self.interactive = interactive
        self.enabled = True
        self.bar: tqdm | None = None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        self.reported_step = trainer.global_step
        self.triplets = 0
        self.clock = time.perf_counter()
        if self.interactive if self.interactive is not None else sys.stdout.isatty():
            self.bar = tqdm(
                total=trainer.max_steps,
                initial=trainer.global_step,
                desc="train",
                unit="step",
                file=sys.stdout,
                dynamic_ncols=True,
            )
        else:
            log.info("training from step %d to %d", trainer.global_step, trainer.max_steps)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ):
        if not self.enabled:
            return
        self.triplets += batch.num_triplets * trainer.world_size
        step = trainer.global_step
        if self.bar is not None:
            self.bar.update(step - self.bar.n)  # 0 while gradients accumulate
        if step > self.reported_step and step % self.every_n_steps == 0:
            self.report(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or trainer.sanity_checking:
            return
        values = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k.startswith("val/")}
        message = f"validation at step {trainer.global_step}: " + " | ".join(
            f"{k} {v:.4g}" for k, v in values.items()
        )
        (self.bar.write if self.bar is not None else log.info)(message)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        if trainer.global_step > self.reported_step:
            self.report(trainer, pl_module)
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def report(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """One line (or the bar's postfix) for the steps since the previous report."""
        now = time.perf_counter()
        fields = [
            f"{k} {v:.4g}" for k, v in self.get_metrics(trainer, pl_module).items() if k.startswith("train/")
        ]
        if trainer.optimizers:
            fields.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.2e}")
        fields.append(f"{self.triplets / max(now - self.clock, 1e-9):.1f} triplets/s")
        fields.append(f"peak mem {peak_memory(pl_module.device)}")
        self.reported_step, self.triplets, self.clock = trainer.global_step, 0, now
        if self.bar is not None:
            self.bar.set_postfix_str(" | ".join(fields))
        else:
            log.info("step %d/%d | %s", trainer.global_step, trainer.max_steps, " | ".join(fields))
