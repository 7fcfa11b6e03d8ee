"""The learning-rate schedules against transformers.get_scheduler, the library they would otherwise come from:
equal after the warmup, shifted by one step during it (ours does not train the first step at learning rate 0)."""

import pytest
import torch
from transformers import get_scheduler

from infembed.models.schedules import lr_factor

LIBRARY_NAME = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def library_factors(name: str, warmup: int, total: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler(
        LIBRARY_NAME[name], optimizer, num_warmup_steps=warmup, num_training_steps=total
    )
    return [scheduler.lr_lambdas[0](step) for step in range(total)]


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
@pytest.mark.parametrize("warmup, total", [(0, 7), (3, 10), (10, 100)])
def test_after_warmup_the_schedule_is_the_library_one(name, warmup, total):
    ours = [lr_factor(name, warmup, total)(step) for step in range(total)]
    library = library_factors(name, warmup, total)
    assert ours[warmup:] == pytest.approx(library[warmup:], abs=1e-12)
    assert ours[:warmup] == pytest.approx(library[1 : warmup + 1], abs=1e-12)  # the library starts at lr 0
    if warmup:
        assert library[0] == 0.0 and ours[0] == 1 / warmup
