"""Inputs and plans the kernel tests share (CPU kernel lane and GPU lane)."""

from __future__ import annotations

import torch

from infembed.kernels import triton_ops


def dominant(m: int, n: int, d: int, dtype, offset: int = 0, seed: int = 0, device: str = "cpu"):
    """q (M, D), k (N, D) unit vectors (leaves with grad) where k_{i+offset} = normalise(q_i + 0.05 · noise / √D):
    cos ≈ 0.999 at any D against ≈ ±1/√D for the others, so the masked entry dominates its row and a kernel that
    kept it, or masked the wrong one, moves the lse by O(scale)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(m, d, device=device, generator=gen), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(n, d, device=device, generator=gen), dim=-1)
    rows = torch.arange(m, device=device)
    rows = rows[(rows + offset >= 0) & (rows + offset < n)]
    near = q[rows] + 0.05 * torch.randn(len(rows), d, device=device, generator=gen) / d**0.5
    k[rows + offset] = torch.nn.functional.normalize(near, dim=-1)
    return q.to(dtype).requires_grad_(), k.to(dtype).requires_grad_()


def forced_plans() -> list[tuple[torch.dtype, str, str, str]]:
    """(dtype, forward tile, backward design, backward tile) by name: every tile of triton_ops.TILES at least once."""
    cases = []
    for dtype in (torch.bfloat16, torch.float32):
        fwd = triton_ops.tiles("fwd", dtype)
        kernel = triton_ops.DESIGN_KERNEL
        bwd = [(d, t) for d in triton_ops.DESIGNS for t in triton_ops.tiles(kernel[d], dtype)]
        for i in range(max(len(fwd), len(bwd))):
            design, tile = bwd[i % len(bwd)]
            cases.append((dtype, fwd[i % len(fwd)].name, design, tile.name))
    return cases
