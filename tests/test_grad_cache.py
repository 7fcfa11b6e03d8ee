"""Gradient cache = the plain step: weights after 3 optimiser steps for all eleven losses, with dropout on (the random
state replayed per chunk), under bf16 autocast, through a Lightning Trainer (accumulation, clipping, schedule) and
on 2 gloo ranks."""

import functools
import os

import lightning as L
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from infembed.losses import build_loss
from infembed.losses.registry import LOSS_NAMES
from infembed.models.grad_cache import all_reduce_gradients, chunks
from infembed.models.module import RetrievalModule

from helpers import TINY_BERT, tiny_bert_encoder
from helpers.training import batches, max_diff, train

NO_DROPOUT = {**TINY_BERT, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def make(loss: str, chunk_size: int | None, overrides: dict = TINY_BERT) -> RetrievalModule:
    torch.manual_seed(0)
    encoder = tiny_bert_encoder(config_overrides=overrides)
    return RetrievalModule(
        encoder, build_loss(loss, kernel="naive"), grad_cache_chunk_size=chunk_size
    ).train()


def chunked_with_graph(module: RetrievalModule, size: int):
    """The reference for dropout on: the same chunks as the cache, encoded with their graphs kept."""

    def encode(tokens, tower):
        return torch.cat([module.encoder(piece, tower) for piece in chunks(tokens, size)])

    return encode


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_cache_equals_plain_step_without_dropout(loss):
    plain = make(loss, None, NO_DROPOUT)
    cached = make(loss, 2, NO_DROPOUT)
    data = batches(plain)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    expected = train(plain, data)
    assert max_diff(expected, before) > 1e-3  # the steps moved the weights
    assert max_diff(train(cached, data), expected) <= 1e-5


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_cache_replays_dropout_per_chunk(loss):
    reference = make(loss, None)
    reference.encode = chunked_with_graph(reference, 2)
    cached = make(loss, 2)
    data = batches(cached)
    assert max_diff(train(cached, data), train(reference, data)) <= 1e-5


def test_one_chunk_with_dropout_is_the_plain_step():
    plain, cached = make("multi_p_i", None), make("multi_p_i", 10_000)
    data = batches(plain)
    assert max_diff(train(cached, data), train(plain, data)) <= 1e-5


def test_without_replay_dropout_would_differ():
    """The replay is what makes the dropout test pass: another random state gives other weights."""
    reference = make("multi_p_i", None)
    reference.encode = chunked_with_graph(reference, 2)
    data = batches(reference)
    expected = train(reference, data)
    other = make("multi_p_i", None)
    other.encode = chunked_with_graph(other, 2)
    torch.manual_seed(2)
    other.encode(
        batches(other, steps=1)[0].pairs, "pair"
    )  # shifts the dropout stream of the steps that follow
    optimizer = torch.optim.SGD(other.parameters(), lr=0.5)
    for batch in data:
        optimizer.zero_grad()
        other.loss_fn(**other.embed_batch(batch)).loss.backward()
        optimizer.step()
    assert max_diff(other.state_dict(), expected) > 1e-4


def test_bf16_autocast_matches_within_tolerance():
    plain, cached = make("multi_p_i_iq", None, NO_DROPOUT), make("multi_p_i_iq", 2, NO_DROPOUT)
    data = batches(plain)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, found = train(plain, data), train(cached, data)
    assert max_diff(found, expected) <= 2e-2


def test_chunks_are_cut_to_their_own_longest_text():
    tokens = {
        "input_ids": torch.arange(12).view(3, 4),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]]),
    }
    pieces = list(chunks(tokens, 1))
    assert [p["input_ids"].shape for p in pieces] == [(1, 4), (1, 2), (1, 2)]
    assert pieces[2]["input_ids"].tolist() == [[10, 11]]  # left padding: the leading columns go


def trainer_weights(chunk_size: int | None) -> dict:
    module = make("multi_p_i", chunk_size, NO_DROPOUT)
    data = batches(module, steps=4, rows=1)
    module.optimizer_factory = functools.partial(torch.optim.AdamW, lr=1e-2)
    trainer = L.Trainer(
        max_steps=2,
        accumulate_grad_batches=2,
        gradient_clip_val=0.05,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, DataLoader(data, batch_size=None))
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_trainer_with_accumulation_clipping_and_schedule():
    assert max_diff(trainer_weights(2), trainer_weights(None)) <= 1e-5


def _ranks(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        worst = 0.0
        for loss in LOSS_NAMES:
            reference, cached = make(loss, None), make(loss, 2)
            reference.encode = chunked_with_graph(reference, 2)
            reference.forward = reference.embed_batch
            ddp = torch.nn.parallel.DistributedDataParallel(reference)  # DDP's own gradient averaging
            data = batches(
                cached, rows=1, offset=100 * rank
            )  # each rank its own shard; the loss gathers both
            expected = train(reference, data, call=ddp)
            found = train(cached, data, sync=lambda m: all_reduce_gradients(list(m.parameters())))
            worst = max(
                worst,
                max_diff(found, expected),
                0.0 if max_diff(expected, make(loss, None).state_dict()) > 1e-3 else float("inf"),
            )
        results[rank] = worst
    finally:
        dist.destroy_process_group()


@pytest.mark.e2e
def test_two_gloo_ranks_all_losses():
    results = mp.Manager().dict()
    mp.spawn(_ranks, args=(29517, results), nprocs=2, join=True)
    assert dict(results) and all(v <= 1e-5 for v in results.values()), dict(results)
