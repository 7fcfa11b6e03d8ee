"""Ahead-of-time compile check of the Triton kernels for an H100 (sm_90a), no GPU needed.

    python -m infembed.kernels.aot [--dtypes bf16 fp32] [--json OUT.json]     # TRITON_INTERPRET unset or 0

Compiles every tile of triton_ops.TILES, in the heaviest variant each kernel has (forward with
the column partials and the masked diagonal; both backward kernels, the blocked design's G kernel ("grad") and the
register-resident one ("bwd"), with both terms), with ``triton.compile`` for
``GPUTarget("cuda", 90, 32)``, then runs Triton's bundled ``ptxas -v`` on the PTX for sm_90a. Per
configuration it reports registers, spill bytes, shared memory, programs resident per SM (the rule
triton_ops.resident_programs applies on the device, with an H100's limits) and which MMA instructions the
PTX uses. It fails (exit 1) when a configuration spills, does not fit, or a bf16 tile does not use wgmma.
fp32 tiles use tf32x3 (wgmma on tf32 operands); a fp32 tile that needs more shared memory than an H100 has is
reported as skipped: the runtime selection skips it too, and every kernel keeps at least one tile per dtype.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas
from triton.compiler import ASTSource

from infembed.kernels.triton_lse_bwd import lse_bwd_kernel
from infembed.kernels.triton_lse_fwd import lse_fwd_kernel
from infembed.kernels.triton_lse_grad import grad_scores_kernel
from infembed.kernels.triton_ops import dot_precision, resident_programs, tiles

H100 = {"threads": 2048, "regs": 65536, "smem": 228 * 1024, "sms": 132}  # per SM; 227 KiB per block max
MAX_SHARED_PER_PROGRAM = 227 * 1024
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
_PTR = {"bf16": "*bf16", "fp32": "*fp32"}
KERNELS = {"fwd": lse_fwd_kernel, "grad": grad_scores_kernel, "bwd": lse_bwd_kernel}  # grad: blocked backward


@dataclass
class Report:
    kernel: str
    dtype: str
    tile: dict
    registers: int
    spill_bytes: int
    shared_bytes: int
    resident_per_sm: int
    mma: str  # "wgmma", "mma.sync" or "none"

    @property
    def fits(self) -> bool:
        return self.shared_bytes <= MAX_SHARED_PER_PROGRAM and self.resident_per_sm >= 1


def _signature(kernel: str, dtype: str) -> tuple[dict, dict]:
    """(signature, constexprs) of the heaviest variant of ``kernel`` for ``dtype`` inputs."""
    ptr, precision = _PTR[dtype], dot_precision(DTYPES[dtype], torch.device("cuda"))
    if kernel == "fwd":
        pointers = {"q_ptr": ptr, "k_ptr": ptr, **dict.fromkeys(("row_lse_ptr", "row_max_ptr"), "*fp32")}
        pointers.update(dict.fromkeys(("col_lse_part_ptr", "col_max_part_ptr"), "*fp32"))
        ints = ("M", "N", "D", "stride_q", "stride_k")
        consts = {"EXCLUDE_DIAG": True, "WITH_COL": True, "PRECISION": precision}
    else:
        out = "dx" if kernel == "bwd" else "g"
        pointers = {"x_ptr": ptr, "y_ptr": ptr, f"{out}_ptr": ptr}
        pointers.update(dict.fromkeys(("x_lse_ptr", "x_grad_ptr", "y_lse_ptr", "y_grad_ptr"), "*fp32"))
        ints = ("n_x", "n_y", "D", "stride_x", "stride_y", f"stride_{out}")
        consts = {"EXCLUDE_DIAG": True, "X_TERM": True, "Y_TERM": True, "PRECISION": precision}
    sig = {**pointers, **dict.fromkeys(ints, "i32"), "scale": "fp32", "offset": "i32"}
    return sig, consts


def _ptxas_verbose(ptx: str) -> tuple[int, int]:
    """(registers, spill store + load bytes) from the bundled ptxas Triton uses for sm_90a, with its flags."""
    ptxas = get_ptxas(90).path  # ptxas-blackwell (CUDA 13) for arch ≥ 90: the PTX is version 9.x
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        out = os.path.join(tmp, "kernel.cubin")
        cmd = [ptxas, "-v", "--regAllocOptLevel=2", "--gpu-name=sm_90a", src, "-o", out]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    regs = int(re.search(r"Used (\d+) registers", out).group(1))
    spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", out))
    return regs, spills


def compile_tile(kernel: str, dtype: str, tile) -> Report:
    """Compile one (kernel, dtype, tile) for sm_90a and read its resources."""
    sig, consts = _signature(kernel, dtype)
    fn = KERNELS[kernel]
    # As the launcher guarantees and the runtime specialises: 16-byte-aligned pointers, D and strides % 16 == 0
    aligned = [name for name, kind in sig.items() if kind.startswith("*") or name == "D" or "stride" in name]
    attrs = {(fn.arg_names.index(name),): [["tt.divisibility", 16]] for name in aligned}
    signature = {**sig, **dict.fromkeys([*consts, *tile.meta()], "constexpr")}
    src = ASTSource(fn=fn, signature=signature, constexprs={**consts, **tile.meta()}, attrs=attrs)
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=tile.launch_options())
    ptx = compiled.asm["ptx"]
    regs, spills = _ptxas_verbose(ptx)
    shared = compiled.metadata.shared
    mma = "wgmma" if "wgmma.mma_async" in ptx else ("mma.sync" if "mma.sync" in ptx else "none")
    per_sm = resident_programs(regs, shared, tile.num_warps, H100) if shared <= MAX_SHARED_PER_PROGRAM else 0
    return Report(kernel, dtype, tile.meta() | tile.launch_options(), regs, spills, shared, per_sm, mma)


def check(reports: list[Report]) -> list[str]:
    """Failures: spills or misfits of any tile that fits; bf16 without wgmma; a (kernel, dtype) left with no
    tile that fits."""
    problems = []
    for r in reports:
        name = f"{r.kernel} {r.dtype} {r.tile}"
        if r.fits and r.spill_bytes:
            problems.append(f"{name}: {r.spill_bytes} bytes of register spills")
        if r.dtype == "bf16" and not r.fits:
            problems.append(
                f"{name}: does not fit an H100 ({r.shared_bytes} B shared, {r.registers} registers)"
            )
        if r.dtype == "bf16" and r.mma != "wgmma":
            problems.append(f"{name}: bf16 tile compiled to {r.mma}, expected wgmma")
    for kernel in {r.kernel for r in reports}:
        for dtype in {r.dtype for r in reports}:
            if not any(r.fits for r in reports if (r.kernel, r.dtype) == (kernel, dtype)):
                problems.append(f"{kernel} {dtype}: no tile fits an H100")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=list(DTYPES))
    parser.add_argument("--json", help="also write the reports here")
    args = parser.parse_args(argv)
    reports = [
        compile_tile(kernel, dtype, tile)
        for dtype in args.dtypes
        for kernel in KERNELS
        for tile in tiles(kernel, DTYPES[dtype])
    ]
    print("| kernel | dtype | tile | registers | spill bytes | shared (KiB) | resident / SM | MMA |")
    print("|---|---|---|---|---|---|---|---|")
    for r in reports:
        tile = "{BLOCK_M}x{BLOCK_N}x{BLOCK_D}".format(**r.tile) + (
            f" dv{r.tile['BLOCK_DV']}" if "BLOCK_DV" in r.tile else ""
        )
        tile += f" w{r.tile['num_warps']} s{r.tile['num_stages']}"
        print(
            f"| {r.kernel} | {r.dtype} | {tile} | {r.registers} | {r.spill_bytes} | {r.shared_bytes / 1024:.0f} | "
            f"{r.resident_per_sm if r.fits else 'does not fit'} | {r.mma} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in reports], f, indent=1)
    problems = check(reports)
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
