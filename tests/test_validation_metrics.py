"""Validation metrics (torchmetrics) against a direct computation, in one process and synced over 2 gloo ranks."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from infembed.models.validation_metrics import ValidationMetrics


def batches(seed: int = 0, sizes=(30, 45, 15)):
    g = torch.Generator().manual_seed(seed)
    return [
        (
            F.normalize(torch.randn(n, 8, generator=g), dim=-1),
            F.normalize(torch.randn(n, 8, generator=g), dim=-1),
        )
        for n in sizes
    ]


def direct(batch_list):
    """Loops: reciprocal rank of p_i among the batch's passages, hit@1, and the per-row sensitivity check."""
    ranks, hits = [], []
    for z, p in batch_list:
        scores = z @ p.T
        for i in range(len(z)):
            ranks.append(1 + sum(int(scores[i, j] > scores[i, i]) for j in range(len(z)) if j != i))
        for r in range(0, len(z), 3):
            hits.append(float(scores[r, r] > scores[r + 1, r] and scores[r, r] > scores[r + 2, r]))
    rr = [1.0 / float(rank) for rank in ranks]
    return sum(rr) / len(rr), sum(float(rank == 1) for rank in ranks) / len(ranks), sum(hits) / len(hits)


def computed(metrics: ValidationMetrics):
    return [metrics.metrics()[k].compute().item() for k in ("mrr", "recall@1", "instruction_sensitivity")]


def test_metrics_match_a_direct_computation():
    data = batches()
    metrics = ValidationMetrics()
    for z, p in data:
        metrics.update(z, p)
    expected = direct(data)
    assert all(0 < value < 1 for value in expected)  # the data exercises every metric
    for got, want in zip(computed(metrics), expected):
        assert abs(got - want) < 1e-6


def _rank(rank, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    metrics = ValidationMetrics()
    for z, p in batches(seed=rank):
        metrics.update(z, p, rank=rank, world_size=2)
    queue.put((rank, computed(metrics)))  # compute() all-gathers the states of both ranks
    dist.barrier()
    dist.destroy_process_group()


def test_state_syncs_across_two_gloo_ranks():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    expected = direct(batches(seed=0) + batches(seed=1))  # one process over both ranks' batches
    for rank in (0, 1):
        for got, want in zip(results[rank], expected):
            assert abs(got - want) < 1e-6
