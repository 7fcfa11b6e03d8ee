"""GPU lane (-m gpu): the Triton kernels at real sizes against the chunked backend, determinism, memory.

Inputs: k = normalise(q + 0.3 · noise), so each row's diagonal is its largest score and masking it matters
(forgetting it moves a row's lse by far more than the tolerance). The truth is the chunked backend on the same
(rounded) inputs in fp32 with TF32 off; the kernels reach lse error < 1e-4 and dq/dk relative L2 error < 5e-3.
M = N = 40,000 > 34k rows, so a persistent program handles several row blocks on an H100.
"""

import pytest
import torch

from infembed.kernels import similarity_lse, similarity_lse_rowcol
from infembed.kernels.chunked import chunked_similarity

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
SCALE = 20.0


@pytest.fixture(autouse=True)
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


def _inputs(m, n, d, dtype, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(max(m, n), d, device="cuda", generator=gen), dim=-1)
    k = torch.nn.functional.normalize(q + 0.3 * torch.randn(q.shape, device="cuda", generator=gen), dim=-1)
    return q[:m].to(dtype).requires_grad_(), k[:n].to(dtype).requires_grad_()  # (M, D), (N, D)


def _outputs_and_grads(fn, q, k, seed=1):
    """Outputs (−inf → 0), and d(Σ w · outputs)/d(q, k) in fp32 with fixed random weights."""
    outs = fn(q, k)
    gen = torch.Generator(device="cuda").manual_seed(seed)
    loss = sum(
        (o.masked_fill(torch.isneginf(o), 0) * torch.randn(o.shape, device="cuda", generator=gen)).sum()
        for o in outs
    )
    grads = torch.autograd.grad(loss, (q, k))
    return [o.detach() for o in outs], [g.float() for g in grads]


OPS = {
    "rowcol": lambda backend: lambda q, k: similarity_lse_rowcol(q, k, SCALE, True, backend),
    "lse+1000": lambda backend: lambda q, k: (similarity_lse(q, k, SCALE, True, backend, 1000),),
    "lse-1000": lambda backend: lambda q, k: (similarity_lse(q, k, SCALE, True, backend, -1000),),
}


def _chunked(op):
    """The chunked backend on the same inputs upcast to fp32 (exact products; TF32 is off)."""
    inner = OPS[op]("chunked")
    return lambda q, k: inner(q.float(), k.float())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("n,d", [(40_000, 768), (2047, 100)])
def test_matches_chunked_at_scale(dtype, op, n, d):
    q, k = _inputs(n, n, d, dtype)
    outs, grads = _outputs_and_grads(OPS[op]("triton"), q, k)
    ref_outs, ref_grads = _outputs_and_grads(_chunked(op), q, k)
    for o, r in zip(outs, ref_outs):
        assert torch.isfinite(o).all()
        err = (o - r).abs().max().item()
        assert err < 1e-4, f"{op} {dtype}: lse error {err:.3g}"
    for name, g, r in zip(("dq", "dk"), grads, ref_grads):
        rel = ((g - r).norm() / r.norm()).item()
        assert rel < 5e-3, f"{op} {dtype}: {name} relative L2 error {rel:.3g}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_bitwise_deterministic_over_three_runs(dtype):
    q, k = _inputs(40_000, 40_000, 768, dtype, seed=2)
    fn = lambda a, b: similarity_lse_rowcol(a, b, SCALE, True, "triton", with_max=True)
    runs = []
    for _ in range(3):
        outs, grads = _outputs_and_grads(lambda a, b: fn(a, b)[:2], q, k)
        runs.append([*outs, *fn(q, k)[2:], *grads])
    for later in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], later))


def test_maxima_match_chunked():
    q, k = _inputs(5000, 5000, 768, torch.bfloat16, seed=3)
    got = similarity_lse_rowcol(q, k, SCALE, True, "triton", with_max=True)[2:]
    ref = chunked_similarity(q.float(), k.float(), SCALE, True, 0, True, True)[2:]
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)


def test_memory_is_linear_in_n_with_margin_at_d_1024():
    """bf16, N = 32768, D = 1024, row+column lse + backward: the extra memory (dq, dk and the column partials
    included) stays under 5 % of one N×N fp32 matrix (4 GiB)."""
    n, d = 32768, 1024
    q, k = _inputs(n, n, d, torch.bfloat16, seed=4)
    similarity_lse_rowcol(q, k, SCALE, True, "triton")  # compile and choose the tiles first
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    row, col = similarity_lse_rowcol(q, k, SCALE, True, "triton")
    (row.sum() + col.sum()).backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    assert extra < 0.05 * n * n * 4, f"extra memory {extra / 2**20:.0f} MiB"


def test_rows_times_d_beyond_int32():
    """q has 2.1 M rows of D = 1024: row · D offsets pass 2³¹ (forward reads, dq writes) and must not wrap."""
    q, k = _inputs(2_100_000, 256, 1024, torch.bfloat16, seed=5)
    tail = slice(2_090_000, None)  # rows whose offsets are beyond 2³¹ elements
    got = similarity_lse(q, k, SCALE, False, "triton")  # (M,)
    dq, dk = torch.autograd.grad(got[tail].sum(), (q, k))
    q_tail = q[tail].detach().float().requires_grad_()  # (10000, D)
    ref = similarity_lse(q_tail, k.detach().float(), SCALE, False, "chunked")
    (ref_dq,) = torch.autograd.grad(ref.sum(), (q_tail,))
    assert (got[tail] - ref).abs().max().item() < 1e-4
    assert ((dq[tail].float() - ref_dq).norm() / ref_dq.norm()).item() < 5e-3
    assert not dq[: tail.start].any() and torch.isfinite(dk).all()


def test_autocast_runs_the_kernels_on_bf16_inputs():
    q, k = _inputs(3000, 3000, 384, torch.float32, seed=6)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        row, col = similarity_lse_rowcol(q, k, SCALE, True, "triton")
    expected = similarity_lse_rowcol(q.bfloat16(), k.bfloat16(), SCALE, True, "triton")
    assert torch.equal(row, expected[0]) and torch.equal(col, expected[1])
    (dq,) = torch.autograd.grad(row.sum(), (q,))
    assert dq.dtype == torch.float32


def test_self_check_passes_and_auto_selects_triton():
    from infembed.kernels import dispatch, triton_ops
    from infembed.kernels.selfcheck import triton_self_check

    assert triton_self_check(torch.device("cuda"), triton_ops) is None
    assert dispatch.resolve_backend("auto", "cuda", torch.bfloat16) == "triton"


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_launches_on_the_inputs_device_not_the_current_one():
    q, k = (t.detach().to("cuda:1").requires_grad_() for t in _inputs(1000, 1000, 128, torch.bfloat16))
    with torch.cuda.device(0):
        row, col = similarity_lse_rowcol(q, k, SCALE, True, "triton")
    ref = similarity_lse_rowcol(q.float(), k.float(), SCALE, True, "chunked")
    assert row.device == q.device
    torch.testing.assert_close((row, col), ref, atol=1e-4, rtol=0)
