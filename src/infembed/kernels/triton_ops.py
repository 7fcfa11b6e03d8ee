"""Triton backend: tile configurations, their selection, launchers and the autograd wiring.

Forward: triton_lse_fwd.lse_fwd_kernel on a persistent grid (row lse and max; column partials from the same
tiles). Backward: triton_lse_bwd.lse_bwd_kernel, once for dq and once for dk (on Sᵀ), each over (row blocks ×
D slices). autograd.SimilarityLSE saves only q, k and the (M,)/(N,) lse vectors.

Inputs (``TritonImpl.prepare``): contiguous, D padded with zeros to a multiple of 16 (the padding adds 0 to
every dot product) in a fresh, 16-byte-aligned buffer, so loads are vectorised and pipelined whatever D or the
storage offset; gradients are cut back to D by the autograd Function. Kernels are launched under a device
guard on q's device. Device properties are queried at call time, never at import.

Tiles. On CUDA each kernel tries every tile of TILES (per kernel and input dtype) at the first call with a given key
(kernel, device, dtype, D, masks), keeps the fastest (``triton.testing.do_bench``) and reuses it; a tile that
does not fit the device (shared memory, registers) is skipped. The persistent forward grid is the number of
programs the chosen compiled kernel keeps resident (``resident_programs``: registers, shared memory and threads
per SM, as ptxas reports them) × SMs. Under the interpreter (CPU tensors, TRITON_INTERPRET=1) one small tile,
shrunk to tiny inputs, and 2 programs (so the persistent loop and partial merge are exercised).
"""

import contextlib
import math
from dataclasses import dataclass

import torch
import triton
from triton.runtime.errors import OutOfResources, PTXASError
from triton.testing import do_bench

from infembed.kernels.autograd import SimilarityLSE
from infembed.kernels.triton_lse_bwd import lse_bwd_kernel
from infembed.kernels.triton_lse_fwd import lse_fwd_kernel

D_ALIGN = 16  # elements: D padded to this, so every row starts 16-byte aligned (32 B bf16, 64 B fp32)


@dataclass(frozen=True)
class Tile:
    """One launch configuration: BLOCK_M × BLOCK_N score tiles, BLOCK_D-wide D chunks, BLOCK_DV-wide dx slices
    (backward only)."""

    block_m: int
    block_n: int
    block_d: int
    num_warps: int
    num_stages: int
    block_dv: int = 0

    def meta(self) -> dict:
        blocks = {"BLOCK_M": self.block_m, "BLOCK_N": self.block_n, "BLOCK_D": self.block_d}
        return {**blocks, **({"BLOCK_DV": self.block_dv} if self.block_dv else {})}

    def launch_options(self) -> dict:
        return {"num_warps": self.num_warps, "num_stages": self.num_stages}


# Tensor-core sized tiles first, the former 64×64 shape last as the fallback; every tile compiles for sm_90a
# without register spills (python -m infembed.kernels.aot). The forward's 128×128 tile needs 16 warps (with 8
# the column partials push it past 255 registers); fp32 (tf32x3 keeps a high and a low part of each operand)
# needs narrower tiles, and its backward a 64-wide D slice.
TILES = {
    "half": {
        "fwd": (
            Tile(128, 128, 64, 16, 3),
            Tile(128, 64, 64, 8, 3),
            Tile(128, 64, 64, 8, 4),
            Tile(64, 64, 64, 4, 2),
        ),
        "bwd": (Tile(128, 128, 64, 8, 3, 128), Tile(64, 128, 64, 8, 3, 256), Tile(64, 64, 64, 4, 2, 64)),
    },
    "fp32": {
        "fwd": (Tile(128, 64, 64, 8, 3), Tile(128, 64, 64, 8, 4), Tile(64, 64, 64, 4, 2)),
        "bwd": (Tile(128, 64, 32, 8, 3, 64), Tile(64, 64, 32, 4, 2, 64)),
    },
}
INTERPRETER_TILE = Tile(32, 32, 32, 4, 1, 32)  # several row, column, D and D-slice blocks on tiny inputs
_INTERPRETER_PROGRAMS = 2
_CHOSEN: dict[tuple, tuple[Tile, int]] = {}  # key → (tile, resident programs per SM)


def tiles(kernel: str, dtype: torch.dtype) -> tuple[Tile, ...]:
    """The candidate tiles of ``kernel`` ("fwd" / "bwd") for inputs of ``dtype``."""
    return TILES["fp32" if dtype == torch.float32 else "half"][kernel]


def dot_precision(dtype: torch.dtype, device: torch.device) -> str:
    """tl.dot products (triton_tiles docstring): native tensor cores for bf16/fp16, tf32x3 for fp32 on CUDA,
    ieee under the interpreter."""
    if device.type != "cuda":
        return "ieee"
    return "tf32x3" if dtype == torch.float32 else "native"


def resident_programs(n_regs: int, shared_bytes: int, num_warps: int, sm: dict) -> int:
    """Programs of one kernel resident on one SM, limited by threads, registers and shared memory.

    ``sm``: ``threads``, ``regs`` (32-bit registers), ``smem`` (bytes) per SM. Registers are allocated per warp
    in units of 256; each program also reserves 1 KiB of shared memory.
    """
    by_threads = sm["threads"] // (32 * num_warps)
    warp_regs = math.ceil(max(n_regs, 1) * 32 / 256) * 256
    by_regs = (sm["regs"] // warp_regs) // num_warps
    by_smem = sm["smem"] // (shared_bytes + 1024)
    return max(0, min(by_threads, by_regs, by_smem, 32))


def _sm_limits(device: torch.device) -> dict:
    props = torch.cuda.get_device_properties(device)
    return {
        "threads": props.max_threads_per_multi_processor,
        "regs": props.regs_per_multiprocessor,
        "smem": props.shared_memory_per_block_optin + 1024,
        "sms": props.multi_processor_count,
    }


def _interpreter_tile(n_rows: int, n_cols: int) -> Tile:
    """INTERPRETER_TILE shrunk to tiny inputs (≥ 16 for tl.dot)."""
    fit = lambda n, top: min(top, max(16, triton.next_power_of_2(n)))
    t = INTERPRETER_TILE
    return Tile(
        fit(n_rows, t.block_m), fit(n_cols, t.block_n), t.block_d, t.num_warps, t.num_stages, t.block_dv
    )


def _select(tiles, key, device, run):
    """(tile, resident programs per SM) for ``key``: on first use, time ``run(tile, programs)`` for every tile
    that compiles and fits, keep the fastest. ``run(tile, None)`` only compiles (returns the kernel)."""
    if key in _CHOSEN:
        return _CHOSEN[key]
    sm, best = _sm_limits(device), None
    for tile in tiles:
        try:
            compiled = run(tile, None)
            compiled._init_handles()  # loads the binary: raises OutOfResources when the tile does not fit
            per_sm = resident_programs(compiled.n_regs, compiled.metadata.shared, tile.num_warps, sm)
            if per_sm == 0:
                continue
            ms = do_bench(lambda t=tile, p=per_sm * sm["sms"]: run(t, p), warmup=5, rep=20)
        except (OutOfResources, PTXASError):
            continue
        if best is None or ms < best[0]:
            best = (ms, tile, per_sm)
    if best is None:
        name = torch.cuda.get_device_name(device)
        raise RuntimeError(f"triton: no tile of {[t.meta() for t in tiles]} fits {name} for {key}")
    _CHOSEN[key] = best[1:]
    return _CHOSEN[key]


def _forward(q, k, scale, exclude_diagonal, offset, with_col, with_max):
    """row lse (M,) fp32, col lse (N,) | None, row max (M,) | None, col max (N,) | None of S = scale · q kᵀ."""
    (m, dim), n, dev = q.shape, k.shape[0], q.device
    f32 = {"dtype": torch.float32, "device": dev}
    row = torch.empty(m, **f32)  # (M,)
    row_max = torch.empty(m, **f32)  # (M,)
    consts = {
        "EXCLUDE_DIAG": exclude_diagonal,
        "WITH_COL": with_col,
        "PRECISION": dot_precision(q.dtype, dev),
    }

    def run(tile, programs):
        """Launch with ``programs`` persistent programs (None: compile only); returns the partials."""
        grid = (min(triton.cdiv(m, tile.block_m), programs or 1),)
        parts = [torch.full((grid[0], n) if with_col else (1,), float("-inf"), **f32) for _ in range(2)]
        args = (q, k, row, row_max, *parts, m, n, dim, q.stride(0), k.stride(0), scale, offset)
        launch = lse_fwd_kernel.warmup if programs is None else lse_fwd_kernel[grid]
        extra = {"grid": grid} if programs is None else {}
        out = launch(*args, **consts, **tile.meta(), **tile.launch_options(), **extra)
        return out if programs is None else parts

    if dev.type == "cuda":
        key = ("fwd", dev, q.dtype, dim, exclude_diagonal, with_col)
        tile, per_sm = _select(tiles("fwd", q.dtype), key, dev, run)
        lse_part, max_part = run(tile, per_sm * _sm_limits(dev)["sms"])
    else:
        lse_part, max_part = run(_interpreter_tile(m, n), _INTERPRETER_PROGRAMS)
    col = torch.logsumexp(lse_part, dim=0) if with_col else None  # (N,)
    col_max = max_part.amax(dim=0) if with_col and with_max else None  # (N,), −inf where all masked
    return row, col, (row_max if with_max else None), col_max


def _grad_rows(x, y, x_lse, x_grad, y_lse, y_grad, scale, exclude_diagonal, offset):
    """dx (x's dtype, (n_x, D)) of Σ_i x_grad_i x_lse_i + Σ_j y_grad_j y_lse_j for S = scale · x yᵀ (a term is
    None if absent)."""
    (n_x, dim), n_y, dev = x.shape, y.shape[0], x.device
    dx = torch.empty_like(x)  # (n_x, D), every element written once
    as_f32 = lambda t: dx if t is None else t.to(torch.float32).contiguous()
    consts = {
        "EXCLUDE_DIAG": exclude_diagonal,
        "X_TERM": x_grad is not None,
        "Y_TERM": y_grad is not None,
        "PRECISION": dot_precision(x.dtype, dev),
    }
    args = (x, y, dx, as_f32(x_lse), as_f32(x_grad), as_f32(y_lse), as_f32(y_grad), n_x, n_y, dim)
    args = (*args, x.stride(0), y.stride(0), dx.stride(0), scale, offset)

    def run(tile, programs):
        grid = (triton.cdiv(n_x, tile.block_m), triton.cdiv(dim, tile.block_dv))
        if programs is None:
            return lse_bwd_kernel.warmup(*args, **consts, **tile.meta(), **tile.launch_options(), grid=grid)
        lse_bwd_kernel[grid](*args, **consts, **tile.meta(), **tile.launch_options())

    if dev.type == "cuda":
        key = ("bwd", dev, x.dtype, dim, exclude_diagonal, consts["X_TERM"], consts["Y_TERM"])
        tile, _ = _select(tiles("bwd", x.dtype), key, dev, run)
        run(tile, 1)  # the backward grid is not persistent: every (row block, D slice) is one program
    else:
        run(_interpreter_tile(n_x, n_y), 1)
    return dx


class TritonImpl:
    """The triton backend for autograd.SimilarityLSE."""

    @staticmethod
    def prepare(q, k):
        """q, k contiguous with D padded to a multiple of D_ALIGN in fresh aligned buffers (no copy when already
        so)."""
        dim = q.shape[1]
        padded = dim + (-dim % D_ALIGN)
        if padded == dim and all(t.is_contiguous() and t.data_ptr() % 16 == 0 for t in (q, k)):
            return q, k
        out = tuple(t.new_zeros(t.shape[0], padded) for t in (q, k))  # (rows, D_pad), zero tail
        for o, t in zip(out, (q, k)):
            o[:, :dim] = t
        return out

    @staticmethod
    def forward(q, k, scale, exclude_diagonal, offset, with_col, with_max):
        with _device_guard(q.device):
            return _forward(q, k, scale, exclude_diagonal, offset, with_col, with_max)

    @staticmethod
    def backward(q, k, row, col, g_row, g_col, scale, exclude_diagonal, offset, needs):
        """dq, dk from the saved q, k, row/col lse and the incoming grads (None when absent)."""
        with _device_guard(q.device):
            dq = (
                _grad_rows(q, k, row, g_row, col, g_col, scale, exclude_diagonal, offset)
                if needs[0]
                else None
            )
            dk = (
                _grad_rows(k, q, col, g_col, row, g_row, scale, exclude_diagonal, -offset)
                if needs[1]
                else None
            )
        return dq, dk


def _device_guard(device: torch.device):
    """Launch on ``device`` (not the current CUDA device); nothing to guard off CUDA."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def triton_similarity(q, k, scale, exclude_diagonal, offset, with_col, with_max):
    """(row lse (M,), col lse (N,) | None, row max | None, col max | None), float32, with the fused kernels
    (inputs fp32 / bf16 / fp16)."""
    return SimilarityLSE.apply(
        q, k, TritonImpl, float(scale), bool(exclude_diagonal), int(offset), bool(with_col), bool(with_max)
    )
