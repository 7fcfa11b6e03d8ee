"""Cross-device negatives: 2 CPU processes (gloo) under DDP give the single-process loss and gradients."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from infembed.losses import UnequalShardError, build_loss

WORLD, N_LOCAL, K, D_IN, D = 2, 4, 3, 6, 5
LOSSES = ("uni_p_iq", "multi_p_i", "uni_p_i_iq", "multi_i_iq")


def _global_batch():
    g = torch.Generator().manual_seed(0)
    n = WORLD * N_LOCAL
    x = torch.randn(n, D_IN, generator=g)  # (N, D_in) pair features
    y = torch.randn(n, D_IN, generator=g)  # (N, D_in) passage features
    xs = torch.randn(n, K, D_IN, generator=g)  # (N, K, D_in) swap-pair features
    mask = torch.rand(n, K, generator=g) > 0.25  # (N, K)
    return x, y, xs, mask


def _encoder():
    torch.manual_seed(1)
    return torch.nn.Linear(D_IN, D)


def _step(model, loss_fn, x, y, xs, mask):
    """Encode (L2-normalised) and return the loss output."""
    z = F.normalize(model(x), dim=-1)  # (n, D)
    p = F.normalize(model(y), dim=-1)  # (n, D)
    zs = F.normalize(model(xs), dim=-1)  # (n, K, D)
    return loss_fn(z, p, zs, mask)


def _single_process(name, batch):
    model = _encoder()
    out = _step(model, build_loss(name, gather=False), *batch)
    out.loss.backward()
    return out.loss.detach(), [prm.grad.clone() for prm in model.parameters()]


def _worker(rank, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        batch = _global_batch()
        rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
        local = [t[rows] for t in batch]
        for name in LOSSES:
            expected_loss, expected_grads = _single_process(name, batch)
            model = DistributedDataParallel(_encoder())
            out = _step(model, build_loss(name, gather=True), *local)
            out.loss.backward()  # DDP averages gradients over ranks
            mean_loss = out.loss.detach().clone()
            dist.all_reduce(mean_loss)
            torch.testing.assert_close(mean_loss / WORLD, expected_loss, rtol=1e-5, atol=1e-6)
            for got, want in zip(model.parameters(), expected_grads):
                torch.testing.assert_close(got.grad, want, rtol=1e-4, atol=1e-6)
        uneven = [t[rows][: N_LOCAL - rank] for t in batch]  # 4 rows on rank 0, 3 on rank 1
        with pytest.raises(UnequalShardError, match=r"\[4, 3\]"):
            _step(_encoder(), build_loss("uni_p"), *uneven)
        dist.barrier()  # no rank tears gloo down while the other is still inside a collective
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_two_process_gloo_matches_single_process():
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=True)


def test_gather_off_without_process_group_is_plain():
    batch = _global_batch()
    a, _ = _single_process("multi_p_i", batch)
    model = _encoder()
    b = _step(model, build_loss("multi_p_i", gather=True), *batch).loss
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
