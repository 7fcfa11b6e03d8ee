"""Triton backend: tile configurations, launch plans, launchers and the autograd wiring.

Forward: triton_lse_fwd.lse_fwd_kernel on a persistent grid (row lse and max; column partials from the same
tiles). Backward, two designs (``Plan.design``):
  * ``blocked`` (default): per slab of rows, triton_lse_grad.grad_scores_kernel writes G = ∂L/∂S once in the input
    dtype, then one cuBLAS GEMM gives the slab's dq = G · K; dk is the same on Sᵀ. 2 GEMM-sized passes per gradient
    at every D (5 with the forward).
  * ``register``: triton_lse_bwd.lse_bwd_kernel keeps a D slice of dq (dk) in registers over the column loop;
    ⌈D / BLOCK_DV⌉ + 1 passes per gradient. Kept selectable (INFEMBED_TRITON_BWD=register) until GPU numbers
    decide between them.
autograd.SimilarityLSE saves only q, k and the (M,)/(N,) lse vectors.

Inputs (``TritonImpl.prepare``): contiguous, D padded with zeros to a multiple of 16 (the padding adds 0 to
every dot product) in a fresh, 16-byte-aligned buffer, so loads are vectorised and pipelined whatever D or the
storage offset; gradients are cut back to D by the autograd Function. Kernels are launched under a device
guard on q's device. Device properties are queried at call time, never at import.

Plans. Which tiles run is a ``Plan`` (forward tile, backward design and tile), chosen once per shape class by
tuning.py (timed on a slice, cached on disk, so every process runs the same tiles) or forced by environment
variables there; ``default_plan`` is the first tile of each kind. The persistent forward grid is the number of
programs the compiled kernel keeps resident (``resident_programs``: registers, shared memory and threads per SM,
as ptxas reports them) × SMs. Under the interpreter (CPU tensors, TRITON_INTERPRET=1) one small tile, shrunk to
tiny inputs, 2 forward programs (so the persistent loop and partial merge are exercised) and slabs of
``INTERPRETER_SLAB_ROWS`` rows (so several slabs and partial tiles are).
"""

import contextlib
import math
from dataclasses import dataclass

import torch
import triton
from triton.runtime.errors import OutOfResources, PTXASError

from infembed.kernels.autograd import SimilarityLSE
from infembed.kernels.triton_lse_bwd import lse_bwd_kernel
from infembed.kernels.triton_lse_fwd import lse_fwd_kernel
from infembed.kernels.triton_lse_grad import grad_scores_kernel

D_ALIGN = 16  # elements: D padded to this, so every row starts 16-byte aligned (32 B bf16, 64 B fp32)
DESIGNS = ("blocked", "register")  # backward designs (module docstring)
SLAB_BYTES = (
    128 * 2**20
)  # blocked backward: one (R, N) G buffer this large, unless R would be < SLAB_MIN_ROWS
SLAB_MIN_ROWS = 1024  # enough (R, D) output tiles of the G · y GEMM for every SM
INTERPRETER_SLAB_ROWS = 40  # 32 + 8 rows: two row tiles per slab, the second partial


class TileDoesNotFit(RuntimeError):
    """A tile compiles but no program of it fits on one SM of the device."""


TILE_ERRORS = (OutOfResources, PTXASError, TileDoesNotFit)  # a candidate tile that cannot run on this device


@dataclass(frozen=True)
class Tile:
    """One launch configuration: BLOCK_M × BLOCK_N score tiles, BLOCK_D-wide D chunks, BLOCK_DV-wide dx slices
    (register backward only)."""

    block_m: int
    block_n: int
    block_d: int
    num_warps: int
    num_stages: int
    block_dv: int = 0

    @property
    def name(self) -> str:
        """e.g. ``128x64x64w8s3`` (``dv128`` before ``w`` for the register backward)."""
        dv = f"dv{self.block_dv}" if self.block_dv else ""
        return f"{self.block_m}x{self.block_n}x{self.block_d}{dv}w{self.num_warps}s{self.num_stages}"

    def meta(self) -> dict:
        blocks = {"BLOCK_M": self.block_m, "BLOCK_N": self.block_n, "BLOCK_D": self.block_d}
        return {**blocks, **({"BLOCK_DV": self.block_dv} if self.block_dv else {})}

    def launch_options(self) -> dict:
        return {"num_warps": self.num_warps, "num_stages": self.num_stages}


@dataclass(frozen=True)
class Plan:
    """What one call runs: the forward tile, the backward design ("blocked" / "register") and its tile."""

    fwd: Tile
    design: str
    bwd: Tile

    def passes(self, dim: int, gradients: int = 2) -> int:
        """GEMM-sized passes over N·M·D of one forward + backward with ``gradients`` (dq and/or dk)."""
        per_gradient = 2 if self.design == "blocked" else math.ceil(dim / self.bwd.block_dv) + 1
        return 1 + gradients * per_gradient


# Tensor-core sized tiles first, the 64×64 shape last as the fallback; every tile compiles for sm_90a without
# register spills (python -m infembed.kernels.aot). "fwd": forward; "grad": the blocked backward's G kernel;
# "bwd": the register backward. The forward's 128×128 tile needs 16 warps (with 8 the column partials push it
# past 255 registers); fp32 (tf32x3 keeps a high and a low part of each operand) needs narrower tiles, and its
# register backward a 64-wide D slice.
TILES = {
    "half": {
        "fwd": (
            Tile(128, 128, 64, 16, 3),
            Tile(128, 64, 64, 8, 3),
            Tile(128, 64, 64, 8, 4),
            Tile(64, 64, 64, 4, 2),
        ),
        "grad": (Tile(128, 128, 64, 8, 3), Tile(128, 64, 64, 4, 3), Tile(64, 64, 64, 4, 2)),
        "bwd": (Tile(128, 128, 64, 8, 3, 128), Tile(64, 128, 64, 8, 3, 256), Tile(64, 64, 64, 4, 2, 64)),
    },
    "fp32": {
        "fwd": (Tile(128, 64, 64, 8, 3), Tile(128, 64, 64, 8, 4), Tile(64, 64, 64, 4, 2)),
        "grad": (Tile(128, 64, 32, 8, 3), Tile(64, 64, 32, 4, 2)),
        "bwd": (Tile(128, 64, 32, 8, 3, 64), Tile(64, 64, 32, 4, 2, 64)),
    },
}
DESIGN_KERNEL = {"blocked": "grad", "register": "bwd"}
INTERPRETER_TILE = Tile(32, 32, 32, 4, 1, 32)  # several row, column, D and D-slice blocks on tiny inputs
_INTERPRETER_PROGRAMS = 2
_RESIDENT: dict[tuple, int] = {}  # (device, dtype, forward variant, tile) → resident programs per SM


def tiles(kernel: str, dtype: torch.dtype) -> tuple[Tile, ...]:
    """The candidate tiles of ``kernel`` ("fwd" / "grad" / "bwd") for inputs of ``dtype``."""
    return TILES["fp32" if dtype == torch.float32 else "half"][kernel]


def default_plan(dtype: torch.dtype, device: torch.device) -> Plan:
    """The first tile of each kind with the blocked backward (CUDA), or the interpreter tile (CPU)."""
    if device.type != "cuda":
        return Plan(INTERPRETER_TILE, "blocked", INTERPRETER_TILE)
    return Plan(tiles("fwd", dtype)[0], "blocked", tiles("grad", dtype)[0])


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


def _fit(tile: Tile, n_rows: int, n_cols: int, device: torch.device) -> Tile:
    """``tile`` as given on CUDA; under the interpreter shrunk to tiny inputs (≥ 16 for tl.dot)."""
    if device.type == "cuda":
        return tile
    fit = lambda n, top: min(top, max(16, triton.next_power_of_2(n)))
    return Tile(
        fit(n_rows, tile.block_m),
        fit(n_cols, tile.block_n),
        tile.block_d,
        tile.num_warps,
        tile.num_stages,
        tile.block_dv,
    )


def _forward(q, k, scale, exclude_diagonal, offset, with_col, with_max, tile):
    """row lse (M,) fp32, col lse (N,) | None, row max (M,) | None, col max (N,) | None of S = scale · q kᵀ."""
    (m, dim), n, dev = q.shape, k.shape[0], q.device
    tile = _fit(tile, m, n, dev)
    f32 = {"dtype": torch.float32, "device": dev}
    row = torch.empty(m, **f32)  # (M,)
    row_max = torch.empty(m, **f32)  # (M,)
    consts = {
        "EXCLUDE_DIAG": exclude_diagonal,
        "WITH_COL": with_col,
        "PRECISION": dot_precision(q.dtype, dev),
    }

    def launch(programs):
        """Launch with ``programs`` persistent programs (None: compile only); returns the partials."""
        grid = (min(triton.cdiv(m, tile.block_m), programs or 1),)
        parts = [torch.full((grid[0], n) if with_col else (1,), float("-inf"), **f32) for _ in range(2)]
        args = (q, k, row, row_max, *parts, m, n, dim, q.stride(0), k.stride(0), scale, offset)
        run = lse_fwd_kernel.warmup if programs is None else lse_fwd_kernel[grid]
        extra = {"grid": grid} if programs is None else {}
        out = run(*args, **consts, **tile.meta(), **tile.launch_options(), **extra)
        return out if programs is None else parts

    if dev.type == "cuda":
        key = (dev, q.dtype, exclude_diagonal, with_col, tile)
        if key not in _RESIDENT:
            compiled = launch(None)
            compiled._init_handles()  # loads the binary: raises OutOfResources when the tile does not fit
            sm = _sm_limits(dev)
            _RESIDENT[key] = resident_programs(compiled.n_regs, compiled.metadata.shared, tile.num_warps, sm)
        if _RESIDENT[key] == 0:
            raise TileDoesNotFit(f"forward tile {tile.name} on {torch.cuda.get_device_name(dev)}")
        lse_part, max_part = launch(_RESIDENT[key] * _sm_limits(dev)["sms"])
    else:
        lse_part, max_part = launch(_INTERPRETER_PROGRAMS)
    col = torch.logsumexp(lse_part, dim=0) if with_col else None  # (N,)
    col_max = max_part.amax(dim=0) if with_col and with_max else None  # (N,), −inf where all masked
    return row, col, (row_max if with_max else None), col_max


def _term_args(x, x_lse, x_grad, y_lse, y_grad, exclude_diagonal):
    """(fp32 lse/grad vectors, constexprs) of the backward kernels; an absent term passes a dummy pointer."""
    as_f32 = lambda t: x if t is None else t.to(torch.float32).contiguous()
    consts = {
        "EXCLUDE_DIAG": exclude_diagonal,
        "X_TERM": x_grad is not None,
        "Y_TERM": y_grad is not None,
        "PRECISION": dot_precision(x.dtype, x.device),
    }
    return tuple(as_f32(t) for t in (x_lse, x_grad, y_lse, y_grad)), consts


def _grad_rows_register(x, y, x_lse, x_grad, y_lse, y_grad, scale, exclude_diagonal, offset, tile):
    """dx (x's dtype, (n_x, D)) of Σ_i x_grad_i x_lse_i + Σ_j y_grad_j y_lse_j for S = scale · x yᵀ (a term is
    None if absent), with the register-resident kernel."""
    (n_x, dim), n_y = x.shape, y.shape[0]
    tile = _fit(tile, n_x, n_y, x.device)
    dx = torch.empty_like(x)  # (n_x, D), every element written once
    terms, consts = _term_args(x, x_lse, x_grad, y_lse, y_grad, exclude_diagonal)
    args = (x, y, dx, *terms, n_x, n_y, dim, x.stride(0), y.stride(0), dx.stride(0), scale, offset)
    grid = (triton.cdiv(n_x, tile.block_m), triton.cdiv(dim, tile.block_dv))
    lse_bwd_kernel[grid](*args, **consts, **tile.meta(), **tile.launch_options())
    return dx


def slab_rows(n_x: int, n_y: int, element_bytes: int, device: torch.device) -> int:
    """Rows R of one blocked-backward slab: the (R, n_y) G buffer within SLAB_BYTES, in multiples of 128 rows, at
    least SLAB_MIN_ROWS (so G is O(N) memory at any N); INTERPRETER_SLAB_ROWS under the interpreter."""
    if device.type != "cuda":
        return min(n_x, INTERPRETER_SLAB_ROWS)
    rows = SLAB_BYTES // (max(n_y, 1) * element_bytes) // 128 * 128
    return min(n_x, max(SLAB_MIN_ROWS, rows))


def _grad_rows_blocked(x, y, x_lse, x_grad, y_lse, y_grad, scale, exclude_diagonal, offset, tile):
    """dx as ``_grad_rows_register``, with the blocked design: per slab of R rows, G (R, n_y) by
    grad_scores_kernel, then dx[slab] = G · y by one GEMM."""
    (n_x, dim), n_y = x.shape, y.shape[0]
    rows = slab_rows(n_x, n_y, x.element_size(), x.device)
    tile = _fit(tile, rows, n_y, x.device)
    dx = torch.empty_like(x)  # (n_x, D), each slab written once by its GEMM
    n_pad = n_y + (-n_y % D_ALIGN)  # G's row stride: rows stay 16-byte aligned (vectorised stores)
    # (R, n_pad), reused by every slab; the tail columns stay 0: CPU bf16 GEMMs were seen to read them (NaN garbage)
    g = torch.zeros(rows, n_pad, dtype=x.dtype, device=x.device)
    (x_lse, x_grad, y_lse, y_grad), consts = _term_args(x, x_lse, x_grad, y_lse, y_grad, exclude_diagonal)
    for start in range(0, n_x, rows):
        stop = min(start + rows, n_x)
        x_slab = x[start:stop]  # (r, D): row stride and 16-byte alignment as x
        x_terms = (x_lse[start:stop], x_grad[start:stop]) if consts["X_TERM"] else (x_lse, x_grad)
        args = (x_slab, y, g, *x_terms, y_lse, y_grad, stop - start, n_y, dim)
        args = (
            *args,
            x.stride(0),
            y.stride(0),
            g.stride(0),
            scale,
            offset + start,
        )  # diagonal j == i + offset
        grid = (triton.cdiv(stop - start, tile.block_m) * triton.cdiv(n_y, tile.block_n),)
        grad_scores_kernel[grid](*args, **consts, **tile.meta(), **tile.launch_options())
        torch.mm(g[: stop - start, :n_y], y, out=dx[start:stop])  # (r, n_y) · (n_y, D), fp32 accumulation
    return dx


_GRAD_ROWS = {"blocked": _grad_rows_blocked, "register": _grad_rows_register}


@dataclass(frozen=True)
class TritonImpl:
    """The triton backend for autograd.SimilarityLSE, running ``plan``."""

    plan: Plan

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

    def forward(self, q, k, scale, exclude_diagonal, offset, with_col, with_max):
        with _device_guard(q.device):
            return _forward(q, k, scale, exclude_diagonal, offset, with_col, with_max, self.plan.fwd)

    def backward(self, q, k, row, col, g_row, g_col, scale, exclude_diagonal, offset, needs):
        """dq, dk from the saved q, k, row/col lse and the incoming grads (None when absent)."""
        grad_rows, tile = _GRAD_ROWS[self.plan.design], self.plan.bwd
        with _device_guard(q.device):
            dq = (
                grad_rows(q, k, row, g_row, col, g_col, scale, exclude_diagonal, offset, tile)
                if needs[0]
                else None
            )
            dk = (
                grad_rows(k, q, col, g_col, row, g_row, scale, exclude_diagonal, -offset, tile)
                if needs[1]
                else None
            )
        return dq, dk


def _device_guard(device: torch.device):
    """Launch on ``device`` (not the current CUDA device); nothing to guard off CUDA."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def triton_similarity(q, k, scale, exclude_diagonal, offset, with_col, with_max, plan: Plan | None = None):
    """(row lse (M,), col lse (N,) | None, row max | None, col max | None), float32, with the fused kernels
    (inputs fp32 / bf16 / fp16); ``plan`` None: ``default_plan``."""
    impl = TritonImpl(plan or default_plan(q.dtype, q.device))
    return SimilarityLSE.apply(
        q, k, impl, float(scale), bool(exclude_diagonal), int(offset), bool(with_col), bool(with_max)
    )
