"""Training progress counted in optimiser steps: a bar in a terminal, plain log lines in a file (a SLURM log).

Lightning's bars count the batches of an epoch. The training stream here is one endless epoch bounded by
``trainer.max_steps``, so they read "Epoch 0/-2", a file gets one bar when the run ends, and a resumed run starts
again at 0. :class:`StepProgress` counts from ``trainer.global_step`` (the restored step after a resume) to
``max_steps`` and reports, every ``every_n_steps`` steps and once at the end::

    step 40/100 | elapsed 00:31 | ETA 00:46 | train/loss 3.121 | lr 1.80e-05 | 52.3 triplets/s | peak mem 1.21 GiB (cuda)

elapsed counts from this process's first step (a resumed run restarts it), ETA assumes the rate since then
(:func:`infembed.logs.eta`). Training starts and ends with a line (``training from step 0 to 100``, ``training
done: 100 steps in 01:17``). In a terminal the bar shows the same (tqdm's own elapsed and ETA) and log lines are
printed above it (:func:`infembed.logs.safe_logging`), never on its line.

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
from infembed.logs import bar, eta, safe_logging

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
        self.redirect = None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        self.reported_step = self.start_step = trainer.global_step
        self.triplets = 0
        self.clock = self.start = time.perf_counter()
        log.info("training from step %d to %d", trainer.global_step, trainer.max_steps)
        if self.interactive if self.interactive is not None else sys.stdout.isatty():
            self.redirect = safe_logging()
            self.redirect.__enter__()
            self.bar = bar(total=trainer.max_steps, initial=trainer.global_step, desc="train", unit="step")

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
        self.close_bar()
        steps = trainer.global_step - self.start_step
        log.info(
            "training done: %d steps in %s", steps, tqdm.format_interval(time.perf_counter() - self.start)
        )

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.close_bar()

    def close_bar(self) -> None:
        """Close the bar (its last state stays on screen once) and give the console handlers back."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.redirect is not None:
            self.redirect.__exit__(None, None, None)
            self.redirect = None

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
            timing = eta(
                trainer.global_step - self.start_step, trainer.max_steps - self.start_step, now - self.start
            )
            log.info(
                "step %d/%d | %s | %s", trainer.global_step, trainer.max_steps, timing, " | ".join(fields)
            )
