"""Learning-rate schedules as LambdaLR factors, chosen by name from the config (``scheduler=...``).

Every schedule warms up linearly over ``warmup = int(warmup_ratio · total)`` optimiser steps:
    factor(step) = (step + 1) / warmup                                       for step < warmup
then
    linear:   (total − step) / (total − warmup), down to 0
    cosine:   ½ (1 + cos(π · (step − warmup) / (total − warmup))), down to 0
    constant: 1

Why not ``transformers.get_scheduler``: after the warmup its ``linear``, ``cosine`` and ``constant_with_warmup``
factors are exactly these (tests/test_schedules_library.py compares them step by step), but its warmup is
``step / warmup``, which trains the first optimiser step at learning rate 0; ours, ``(step + 1) / warmup``, makes
every step count, and every result measured in experiments/ was trained with it. The cosine factor is also held at
0 past ``total`` (the library's rises again), which matters for a resumed run with a larger ``trainer.max_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from infembed.errors import check_choice, check_number

SCHEDULES = ("linear", "cosine", "constant")


def lr_factor(name: str, warmup: int, total: int) -> Callable[[int], float]:
    """The multiplicative lr factor of schedule ``name`` at each optimiser step (see the module docstring)."""
    check_choice(name, SCHEDULES, "scheduler.name")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if name == "linear":
            return max(0.0, (total - step) / max(1, total - warmup))
        if name == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


def warmup_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, name: str = "linear", warmup_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR: linear warmup over ``warmup_ratio · total_steps`` steps, then ``name``."""
    check_number(warmup_ratio, "scheduler.warmup_ratio", 0, 1, bounds="[)")
    warmup = int(warmup_ratio * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(name, warmup, total_steps))


__all__ = ["SCHEDULES", "lr_factor", "warmup_schedule"]
