"""GPU lane (-m gpu): the losses on CUDA, fused kernels vs the naive reference, bf16 embeddings; passages are
near copies of their pairs (cos ≈ 0.999 at any D, against ≈ ±0.05 for the others), so the masked positive dominates
its row by far and a kernel that kept it, or masked the wrong entry, would fail."""

import pytest
import torch
import torch.nn.functional as F

from infembed.losses import LOSS_NAMES, build_loss

pytestmark = pytest.mark.gpu


def _batch(n, k, d, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    z = F.normalize(torch.randn(n, d, device="cuda", generator=g), dim=-1).to(dtype)  # (N, D)
    noise = torch.randn(n, d, device="cuda", generator=g)  # (N, D)
    p = F.normalize(z.float() + 0.05 * noise / d**0.5, dim=-1).to(dtype)  # (N, D): cos(z_i, p_i) ≈ 0.999
    zs = F.normalize(torch.randn(n, k, d, device="cuda", generator=g), dim=-1).to(dtype)  # (N, K, D)
    mask = torch.rand(n, k, device="cuda", generator=g) > 0.2  # (N, K)
    return z, p, zs, mask


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_auto_kernel_matches_naive_on_cuda(name, dtype):
    batch = _batch(1000, 7, 384, dtype)
    results = []
    for kernel in ("naive", "auto"):
        leaves = [t.clone().requires_grad_() for t in batch[:3]]
        out = build_loss(name, kernel=kernel)(*leaves, batch[3])
        out.loss.backward()
        results.append((out.loss.detach(), [t.grad.float() for t in leaves[:2]]))
    (ref, ref_grads), (got, got_grads) = results
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got, ref, rtol=tol, atol=tol)
    for g, r in zip(got_grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=tol, atol=tol * r.abs().max().item())
