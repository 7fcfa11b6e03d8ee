"""GPU lane (-m gpu): the Triton kernels at real sizes in fp32 and bf16, and their memory.

Tolerance rule: the kernel's error against the truth (naive in float64 on the same rounded inputs) is at most
twice torch's own error computing the same thing naively in that precision, plus a small atol.
"""

import pytest
import torch

from infembed.kernels import similarity_lse, similarity_lse_rowcol
from infembed.kernels.reference import naive_similarity_lse_rowcol

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
ATOL = {torch.float32: 1e-5, torch.bfloat16: 1e-3}


def _value_and_grads(fn, q, k, weights):
    outs = fn(q, k)
    loss = sum((o * w).sum() for o, w in zip(outs, weights))
    return [o.detach().double() for o in outs] + [g.double() for g in torch.autograd.grad(loss, (q, k))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n,d,exclude", [(4096, 768, True), (3000, 384, False), (2047, 100, True)])
def test_rowcol_error_within_twice_torch(dtype, n, d, exclude):
    gen = torch.Generator(device="cuda").manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(n, d, device="cuda", generator=gen), dim=-1).to(dtype)
    k = torch.nn.functional.normalize(torch.randn(n, d, device="cuda", generator=gen), dim=-1).to(dtype)
    q.requires_grad_(), k.requires_grad_()
    w = [torch.randn(n, device="cuda", generator=gen) for _ in range(2)]
    truth = _value_and_grads(
        lambda a, b: naive_similarity_lse_rowcol(a.double(), b.double(), 20.0, exclude), q, k, w
    )
    torch_own = _value_and_grads(lambda a, b: naive_similarity_lse_rowcol(a, b, 20.0, exclude), q, k, w)
    kernel = _value_and_grads(lambda a, b: similarity_lse_rowcol(a, b, 20.0, exclude, "triton"), q, k, w)
    for name, t, own, got in zip(["row", "col", "dq", "dk"], truth, torch_own, kernel):
        err, own_err = (got - t).abs().max().item(), (own - t).abs().max().item()
        assert err <= 2 * own_err + ATOL[dtype], f"{name}: kernel error {err:.3g}, torch's {own_err:.3g}"


def test_memory_is_linear_in_n():
    """bf16, N = 32768, D = 768: forward + backward allocate far less than one N×N fp32 matrix (4 GiB)."""
    n, d = 32768, 768
    q = torch.randn(n, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(n, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    row = similarity_lse(q, k, 20.0, True, "triton")
    row.sum().backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    assert extra < 0.05 * n * n * 4, f"extra memory {extra / 2**20:.0f} MiB"
