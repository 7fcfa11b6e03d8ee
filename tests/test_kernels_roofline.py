"""The roofline benchmark as check.sh runs it, in its CPU dry mode: the ceiling, per-backend TFLOP/s over 5·2N²D,
executed passes, the tile that ran, the JSON document, and the fits mode."""

import json

import pytest

from helpers import ROOT, offline_env, run_module

pytestmark = [pytest.mark.e2e, pytest.mark.kernel]


def _bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    proc = run_module(
        "infembed.kernels.benchmark", "--dry", "--json", str(out), *args, cwd=ROOT, env=offline_env()
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out.read_text())


def test_dry_run_reports_every_backend_against_the_measured_ceiling(tmp_path):
    stdout, doc = _bench(tmp_path)
    roof = doc["ceiling"]
    assert roof["bf16_gemm_tflops"] > 0 and roof["copy_gbps"] > 0 and roof["gemm_n"] == 256
    rows = {r["backend"]: r for r in doc["results"]}
    assert set(rows) == {"naive", "chunked", "triton"}
    n, dim = 96, 40
    for r in rows.values():
        assert r["n"] == n and r["time_s"] > 0
        assert r["tflops"] == pytest.approx(5 * 2 * n * n * dim / r["time_s"] / 1e12, rel=1e-9)
    assert (rows["naive"]["passes"], rows["chunked"]["passes"]) == (3, 4)
    assert rows["triton"]["passes"] == 5 and rows["triton"]["tile"].split()[1].startswith("blocked:")
    assert "| % measured | % datasheet | passes | tile |" in stdout
    assert "ceiling on cpu: bf16 GEMM" in stdout


def test_register_design_reports_its_growing_passes(tmp_path):
    env = offline_env(INFEMBED_TRITON_BWD="register")
    out = tmp_path / "bench.json"
    args = ("--dry", "--backends", "triton", "--json", str(out))
    proc = run_module("infembed.kernels.benchmark", *args, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out.read_text())["results"]
    assert row["passes"] == 1 + 2 * (2 + 1)  # D = 40 in BLOCK_DV = 32 slices: ⌈40/32⌉ + 1 per gradient


def test_fits_mode_runs_triton_alone_at_one_size(tmp_path):
    _, doc = _bench(tmp_path, "--fits")
    (row,) = doc["results"]
    assert row["backend"] == "triton" and row["n"] == 96 and "error" not in row
    assert doc["config"]["fits"] == 96
