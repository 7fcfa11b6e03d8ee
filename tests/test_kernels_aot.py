"""Ahead-of-time lane (slow, no GPU): every tile of the Triton kernels compiles for an H100 (sm_90a) without
register spills, fits, and runs its bf16 products on wgmma (``python -m infembed.kernels.aot`` prints the
table; ~1.5 min on 2 CPU cores)."""

import json
import os
import subprocess
import sys

import pytest

from infembed.kernels import aot


@pytest.mark.e2e
@pytest.mark.slow
def test_every_tile_compiles_for_sm90a_without_spills_and_bf16_uses_wgmma(tmp_path):
    """In a fresh process: this one runs the kernels under TRITON_INTERPRET=1, which cannot compile them."""
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_DEFAULT_FP_FUSION": "1"}
    out = tmp_path / "aot.json"
    cmd = [sys.executable, "-m", "infembed.kernels.aot", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = json.loads(out.read_text())
    expected = sum(len(aot.tiles(kernel, dtype)) for kernel in aot.KERNELS for dtype in aot.DTYPES.values())
    assert len(reports) == expected
    assert all(r["spill_bytes"] == 0 and r["resident_per_sm"] >= 1 for r in reports)
    assert {r["mma"] for r in reports if r["dtype"] == "bf16"} == {"wgmma"}


def test_check_flags_spills_misfits_and_missing_wgmma():
    tile = {"BLOCK_M": 64}
    bad = [
        aot.Report("fwd", "bf16", tile, 255, 120, 1024, 1, "wgmma"),
        aot.Report("bwd", "bf16", tile, 100, 0, 300 * 1024, 0, "mma.sync"),
    ]
    problems = aot.check(bad)
    assert any("120 bytes of register spills" in p for p in problems)
    assert any("does not fit" in p for p in problems) and any("expected wgmma" in p for p in problems)
    assert any("bwd bf16: no tile fits" in p for p in problems)


def test_resident_programs_is_the_tightest_of_threads_registers_and_shared_memory():
    h100 = aot.H100
    assert aot.resident_programs(119, 96 * 1024, 16, h100) == 1  # registers: 16 warps of 120 → 1 program
    assert aot.resident_programs(144, 32 * 1024, 4, h100) == 3  # registers: 4 warps of 144 (→ 160) → 3
    assert aot.resident_programs(32, 100 * 1024, 4, h100) == 2  # shared memory: 2 × (100 + 1) KiB ≤ 228 KiB
    assert aot.resident_programs(16, 0, 8, h100) == 8  # threads: 2048 / 256
    assert aot.resident_programs(255, 0, 32, h100) == 0  # 32 warps of 256 registers do not fit
