import functools
import math

import pytest
import torch

from infembed.data.collator import TripletCollator
from infembed.errors import ConfigError
from infembed.losses import build_loss
from infembed.models.module import RetrievalModule
from infembed.models.schedules import lr_factor, warmup_schedule

from helpers import tiny_bert_encoder
from helpers.training import row


def tiny_module(loss: str, **kwargs) -> RetrievalModule:
    torch.manual_seed(0)
    return RetrievalModule(tiny_bert_encoder(), build_loss(loss, temperature=0.05, kernel="naive"), **kwargs)


@pytest.fixture(scope="module")
def module():
    return tiny_module("multi_p_i").eval()


def test_swapped_embeddings_are_the_swapped_texts(module):
    rows = [row(n) for n in range(3)]
    collator = TripletCollator(module.encoder.text, num_swap_negatives=2, seed=1)
    batch = collator(rows)
    with torch.no_grad():
        swapped = module.embed_batch(batch)["iq_swapped"]  # (N, K, D)
    triplets = [
        t
        for r in rows
        for t in [
            (r["instruction_positive"], r["query_positive"]),
            (r["instruction_negative"], r["query_positive"]),
            (r["instruction_positive"], r["query_negative"]),
        ]
    ]
    instructions = list(dict.fromkeys(i for i, _ in triplets))
    mask = batch.swap_mask
    for i, (own_instruction, query) in enumerate(triplets):
        # every valid slot must be query i with some other instruction of the batch, encoded as one string
        candidates = [
            module.encoder.text.format_pair(query, other)
            for other in instructions
            if other != own_instruction
        ]
        with torch.no_grad():
            expected = module.encoder.encode_texts(candidates, "pair")  # (C, D)
        for k in range(mask.shape[1]):
            if mask[i, k]:
                assert torch.cdist(swapped[i, k][None], expected).min() < 1e-4


def test_designed_negative_reuses_the_sibling_pair(module):
    batch = TripletCollator(module.encoder.text, num_swap_negatives=1, seed=0)([row(0), row(1)])
    # triplet 0 is (I+, Q+): its designed negative Q+ ⊕ I- is exactly triplet 1's pair, index 1 into the pairs
    assert batch.swap_index[0, 0].item() == 1
    assert batch.swap_index[3, 0].item() == 4


def test_losses_without_swaps_ignore_swap_inputs():
    module = tiny_module("uni_p")
    assert not module.loss_fn.needs_swaps
    batch = TripletCollator(module.encoder.text, num_swap_negatives=0)([row(0), row(1)])
    assert batch.swap_index is None
    assert module.embed_batch(batch)["iq_swapped"] is None


def test_swap_loss_without_swaps_is_a_clear_error(module):
    batch = TripletCollator(module.encoder.text, num_swap_negatives=0)([row(0)])
    with pytest.raises(ConfigError, match="num_swap_negatives"):
        module.embed_batch(batch)


def test_warmup_then_linear_decay_to_zero():
    factor = lr_factor("linear", warmup=4, total=10)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0 and factor(7) == pytest.approx(0.5) and factor(10) == 0.0


def test_cosine_and_constant_schedules():
    cosine, constant = lr_factor("cosine", 2, 12), lr_factor("constant", 2, 12)
    assert [cosine(s) for s in (0, 1)] == [0.5, 1.0] == [constant(s) for s in (0, 1)]
    assert cosine(7) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5))) and cosine(12) == pytest.approx(
        0.0
    )
    assert constant(11) == 1.0
    with pytest.raises(ConfigError, match="scheduler.name"):
        lr_factor("step", 2, 12)


def test_optimizer_and_scheduler_come_from_partials():
    sgd = functools.partial(torch.optim.SGD, lr=0.5, weight_decay=0.1)
    module = tiny_module("uni_p", optimizer=sgd, scheduler=functools.partial(warmup_schedule, name="cosine"))
    module.trainer = type("T", (), {"estimated_stepping_batches": 10})()
    config = module.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.SGD) and config["lr_scheduler"]["interval"] == "step"
    assert config["optimizer"].param_groups[1]["weight_decay"] == 0.0


def test_an_endless_stream_needs_max_steps():
    module = tiny_module("uni_p")
    module.trainer = type("T", (), {"estimated_stepping_batches": float("inf")})()
    with pytest.raises(ConfigError, match="trainer.max_steps"):
        module.configure_optimizers()


def test_no_weight_decay_on_biases_and_norms():
    module = tiny_module("uni_p")
    module.trainer = type("T", (), {"estimated_stepping_batches": 10})()
    optimizer = module.configure_optimizers()["optimizer"]
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])


def test_auto_swap_negatives_are_capped_and_explicit_k_is_not():
    from infembed.data.collator import resolve_num_swap_negatives

    # per-device triplets (3 per row): 1, 4, 8, 14, 128, 4096 rows
    assert [resolve_num_swap_negatives("auto", 3 * rows) for rows in (1, 4, 8, 14, 128, 4096)] == [
        1,
        5,
        5,
        5,
        5,
        5,
    ]
    assert resolve_num_swap_negatives(None, 384) == 5
    assert resolve_num_swap_negatives(63, 384) == 63
