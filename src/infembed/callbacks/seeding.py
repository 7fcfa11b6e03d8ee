"""Per-step seeding: the random state of a training step is a function of (seed, step, batch, rank).

Before every training batch, python's ``random``, numpy's global generator and torch (CPU and every CUDA device)
are seeded with
    derive_seed(seed, global_step, batch_idx, global_rank)
so dropout at a step depends only on the step: a run resumed from the checkpoint of step s (which records s) draws
exactly what the uninterrupted run draws. Saving the generator states in the checkpoint instead would not be exact:
between the save (end of step s) and step s + 1 the uninterrupted run may validate and the resumed run creates its
DataLoader iterator, and both draw from torch's global generator. The data side needs no generator state either:
the stream's shuffle and the collator's swap sampling are seeded from stream positions (infembed.data).
"""

from __future__ import annotations

import random

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from infembed.data.dataset import derive_seed


class StepSeed(Callback):
    """Seeds every generator before each training batch (see the module docstring)."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        seed = derive_seed(self.seed, trainer.global_step, batch_idx, trainer.global_rank)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)  # also every CUDA device
