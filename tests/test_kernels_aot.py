"""Ahead-of-time lane (slow, no GPU): every tile of the Triton kernels compiles for an H100 (sm_90a) without
register spills, fits, and runs its bf16 products on wgmma (``python -m infembed.kernels.aot`` prints the
table; ~1.5 min on 2 CPU cores)."""

import pytest

from infembed.kernels import aot


@pytest.mark.slow
def test_every_tile_compiles_for_sm90a_without_spills_and_bf16_uses_wgmma():
    reports = [
        aot.compile_tile(kernel, dtype, tile)
        for dtype in aot.DTYPES
        for kernel in ("fwd", "bwd")
        for tile in aot.tiles(kernel, aot.DTYPES[dtype])
    ]
    assert aot.check(reports) == []
    assert all(r.fits and r.spill_bytes == 0 for r in reports)
    assert {r.mma for r in reports if r.dtype == "bf16"} == {"wgmma"}


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
