"""``auto``'s safety net: a one-time check of the triton backend against the reference on each device.

At the first ``auto`` call on a device, the triton backend computes, in fp32 and bf16, the row+column lse of
one S with the diagonal masked and the row lse with a diagonal offset, forward and gradients, on k = q + 0.3 ·
noise (so the masked diagonal matters), with D not a multiple of 16 (the padding path). The truth is the naive
reference in float64 on the same rounded inputs. Any error above the tolerances, any non-finite value or any
exception fails the check; ``auto`` then uses ``chunked`` on that device and says so in one warning.
"""

import torch

from infembed.kernels.reference import naive_similarity_lse, naive_similarity_lse_rowcol

SHAPES = {"cuda": (1000, 200), "cpu": (20, 24)}  # (M = N, D) per device type; the interpreter is slow
LSE_ATOL = 1e-3  # the kernels reach ~1e-5; forgetting the masked diagonal moves a row by > 0.1 here
GRAD_REL_L2 = {torch.float32: 1e-3, torch.bfloat16: 2e-2}  # bf16: G is rounded to bf16 before G·k, as torch


def _inputs(n, d, dtype, device):
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(n, d, generator=gen), dim=-1)  # (N, D)
    k = torch.nn.functional.normalize(q + 0.3 * torch.randn(n, d, generator=gen), dim=-1)  # (N, D)
    return q.to(device, dtype), k.to(device, dtype)


def _value_and_grads(fn, q, k):
    """Outputs (−inf → 0) and gradients of Σ_o Σ_i w_i o_i with fixed weights w = 1, 2, ..."""
    q, k = q.detach().requires_grad_(), k.detach().requires_grad_()
    outs = fn(q, k)
    outs = [o.masked_fill(torch.isneginf(o), 0.0) for o in (outs if isinstance(outs, tuple) else (outs,))]
    loss = sum((o * (i + 1)).sum() for i, o in enumerate(outs))
    return [o.detach().double() for o in outs], [g.double() for g in torch.autograd.grad(loss, (q, k))]


def triton_self_check(device: torch.device, ops) -> str | None:
    """None when ``ops`` (the triton_ops module) matches the reference on ``device``, else the first failure."""
    n, d = SHAPES["cuda" if device.type == "cuda" else "cpu"]
    cases = {
        "rowcol, diagonal masked": (
            lambda a, b: ops.triton_similarity(a, b, 20.0, True, 0, True, False)[:2],
            lambda a, b: naive_similarity_lse_rowcol(a, b, 20.0, True),
        ),
        "row lse, diagonal offset 3": (
            lambda a, b: ops.triton_similarity(a, b, 20.0, True, 3, False, False)[0],
            lambda a, b: naive_similarity_lse(a, b, 20.0, True, 3),
        ),
    }
    try:
        with torch.autocast(device.type, enabled=False), torch.enable_grad():
            for dtype in (torch.float32, torch.bfloat16):
                q, k = _inputs(n, d, dtype, device)
                for name, (kernel, reference) in cases.items():
                    outs, grads = _value_and_grads(kernel, q, k)
                    ref_outs, ref_grads = _value_and_grads(reference, q.double(), k.double())
                    where = f"{name}, {dtype}"
                    for o, r in zip(outs, ref_outs):
                        err = (o - r).abs().max().item()
                        if not err <= LSE_ATOL:  # also catches nan
                            return f"{where}: lse error {err:.3g} > {LSE_ATOL}"
                    for g, r in zip(grads, ref_grads):
                        rel = ((g - r).norm() / r.norm()).item()
                        if not rel <= GRAD_REL_L2[dtype]:
                            return f"{where}: gradient relative L2 error {rel:.3g} > {GRAD_REL_L2[dtype]}"
    except Exception as err:  # noqa: BLE001 - any failure of the kernels means: do not use them here
        return f"{type(err).__name__}: {err}"
    return None
