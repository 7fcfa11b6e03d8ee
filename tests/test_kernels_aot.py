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
