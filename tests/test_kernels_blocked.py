"""Kernel lane: both backward designs (blocked, register) against the reference, forced the way a user forces them
(INFEMBED_TRITON_BWD), on shapes that catch slab, tile and mask faults.

Inputs where the masked entry dominates: k_{i + offset} = normalise(q_i + 0.05 · noise), so S_{i, i+offset} is the
row's largest score by far, and a kernel that kept it (or masked the wrong entry, or lost a slab's offset) moves
the lse by O(1). Under the interpreter (CPU) the blocked backward cuts x into slabs of
triton_ops.INTERPRETER_SLAB_ROWS = 40 rows (two 32-row tiles, the second partial), so 50 rows are 2 slabs, the
second partial, and the diagonal offset of the second slab is shifted by 40.
"""

import pytest
import torch

from infembed.kernels import similarity_lse, similarity_lse_rowcol, triton_ops
from infembed.kernels.reference import naive_similarity_lse, naive_similarity_lse_rowcol
from infembed.kernels.tuning import KernelConfigError

from helpers.kernels import dominant, forced_plans

pytestmark = [pytest.mark.kernel, pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: (1e-5, 1e-4), torch.bfloat16: (1e-4, 3e-2)}  # (lse atol, gradient relative L2)


def _dominant(m, n, d, offset, dtype, seed=0):
    return dominant(m, n, d, dtype, offset, seed, device=DEVICE)  # (M, D), (N, D)


def _check(got_fn, ref_fn, q, k, dtype):
    """Outputs and d(Σ w · outputs)/d(q, k) of ``got_fn`` vs ``ref_fn`` in float64 on the same rounded inputs."""
    gen = torch.Generator().manual_seed(1)

    def run(fn, a, b):
        a, b = a.detach().requires_grad_(), b.detach().requires_grad_()
        outs = fn(a, b)
        outs = [o.masked_fill(torch.isneginf(o), 0.0) for o in outs]
        weights = [torch.randn(o.shape, generator=gen).to(o.device, o.dtype) for o in outs]
        loss = sum((o * w).sum() for o, w in zip(outs, weights))
        return [o.detach().double() for o in outs], [g.double() for g in torch.autograd.grad(loss, (a, b))]

    outs, grads = run(got_fn, q, k)
    gen.manual_seed(1)
    ref_outs, ref_grads = run(ref_fn, q.double(), k.double())
    atol, rel = TOL[dtype]
    for o, r in zip(outs, ref_outs):
        assert (o - r).abs().max().item() <= atol
    for g, r in zip(grads, ref_grads):
        assert (g - r).norm().item() <= rel * r.norm().item() + 1e-12  # a fully masked row: both 0


@pytest.mark.parametrize("design", triton_ops.DESIGNS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("m,n,d,offset", [(1, 1, 1, 0), (50, 37, 200, 0), (50, 75, 33, 7), (50, 45, 24, -9)])
def test_lse_with_a_dominant_masked_entry_matches_reference(monkeypatch, design, dtype, m, n, d, offset):
    monkeypatch.setenv("INFEMBED_TRITON_BWD", design)
    q, k = _dominant(m, n, d, offset, dtype)
    _check(
        lambda a, b: (similarity_lse(a, b, 20.0, True, "triton", offset),),
        lambda a, b: (naive_similarity_lse(a, b, 20.0, True, offset),),
        q,
        k,
        dtype,
    )


@pytest.mark.parametrize("design", triton_ops.DESIGNS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n,d,exclude", [(50, 200, True), (29, 9, False)])
def test_rowcol_matches_reference(monkeypatch, design, dtype, n, d, exclude):
    monkeypatch.setenv("INFEMBED_TRITON_BWD", design)
    q, k = _dominant(n, n, d, 0, dtype, seed=2)
    _check(
        lambda a, b: similarity_lse_rowcol(a, b, 20.0, exclude, "triton"),
        lambda a, b: naive_similarity_lse_rowcol(a, b, 20.0, exclude),
        q,
        k,
        dtype,
    )


def test_forgetting_the_mask_is_caught_by_these_inputs():
    """The inputs above are a real test: the unmasked lse differs from the masked one by far more than TOL."""
    q, k = _dominant(50, 61, 200, 7, torch.float32)
    masked, unmasked = (naive_similarity_lse(q, k, 20.0, ex, 7) for ex in (True, False))
    assert (unmasked - masked)[:40].min().item() > 1.0


@pytest.mark.parametrize("dtype,fwd,design,bwd", forced_plans())
def test_every_gpu_tile_forced_by_name_matches_reference_shrunk_to_tiny_inputs(
    monkeypatch, dtype, fwd, design, bwd
):
    """The GPU lane's forcing, here: each tile's BLOCK_D / BLOCK_DV and design run (BLOCK_M/N shrunk to the inputs)."""
    for name, value in (("FWD_TILE", fwd), ("BWD", design), ("BWD_TILE", bwd)):
        monkeypatch.setenv(f"INFEMBED_TRITON_{name}", value)
    q, k = _dominant(50, 75, 200, 7, dtype, seed=4)
    _check(
        lambda a, b: (similarity_lse(a, b, 20.0, True, "triton", 7),),
        lambda a, b: (naive_similarity_lse(a, b, 20.0, True, 7),),
        q,
        k,
        dtype,
    )


@pytest.mark.parametrize("design", triton_ops.DESIGNS)
def test_both_designs_are_bitwise_deterministic(monkeypatch, design):
    monkeypatch.setenv("INFEMBED_TRITON_BWD", design)
    q, k = _dominant(50, 50, 40, 0, torch.bfloat16, seed=3)
    runs = []
    for _ in range(2):
        row, col = similarity_lse_rowcol(q, k, 20.0, True, "triton")
        runs.append(torch.autograd.grad(row.sum() + 2 * col.sum(), (q, k)))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_unknown_design_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("INFEMBED_TRITON_BWD", "fast")
    q, k = _dominant(4, 4, 8, 0, torch.float32)
    with pytest.raises(
        KernelConfigError, match=r"INFEMBED_TRITON_BWD='fast': expected one of blocked, register"
    ):
        similarity_lse(q, k, 20.0, True, "triton")


def test_blocked_passes_do_not_grow_with_d_and_register_passes_do():
    tile = triton_ops.tiles("bwd", torch.bfloat16)[1]  # BLOCK_DV = 256
    grad = triton_ops.tiles("grad", torch.bfloat16)[0]
    fwd = triton_ops.tiles("fwd", torch.bfloat16)[0]
    blocked, register = triton_ops.Plan(fwd, "blocked", grad), triton_ops.Plan(fwd, "register", tile)
    assert [blocked.passes(d) for d in (200, 768, 1024, 3584)] == [5, 5, 5, 5]
    assert [register.passes(d) for d in (200, 768, 1024, 3584)] == [5, 9, 11, 31]


def test_slab_rows_keep_the_g_buffer_within_its_budget():
    cuda = torch.device("cuda")  # only its type is read
    for n in (4096, 32768, 262144, 3_000_000):
        rows = triton_ops.slab_rows(n, n, 2, cuda)
        assert rows % 128 == 0
        assert rows * n * 2 <= triton_ops.SLAB_BYTES or rows == triton_ops.SLAB_MIN_ROWS
    assert triton_ops.slab_rows(32768, 32768, 2, cuda) == 2048
    assert triton_ops.slab_rows(262144, 262144, 2, cuda) == triton_ops.SLAB_MIN_ROWS
    assert triton_ops.slab_rows(100, 262144, 2, cuda) == 100
