"""experiments/gpu/check.sh and its Hydra-free training step, in the CPU dry mode, so the prepared GPU check cannot
rot: argument handling, every CPU step end to end, at most 8 files under $OUT, one results.json."""

import json
import math
import subprocess
import sys

import pytest

from helpers import ROOT, offline_env

CHECK = ROOT / "experiments" / "gpu" / "check.sh"
TRAIN_STEP = ROOT / "experiments" / "gpu" / "train_step.py"


def _bash(*args, timeout=600):
    env = offline_env(PYTHON=sys.executable, OMP_NUM_THREADS="1")
    return subprocess.run(
        ["bash", str(CHECK), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--bogus"], "check.sh: unknown argument '--bogus' (usage: check.sh [--dry] [--out DIR])"),
        (["--dry", "--out"], "check.sh: --out needs a folder"),
    ],
)
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    proc = _bash("--out", str(out), *args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and message in proc.stderr
    assert not out.exists()


@pytest.mark.e2e
def test_dry_run_end_to_end_on_cpu(tmp_path):
    out = tmp_path / "out"
    proc = _bash("--dry", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.is_file() for p in out.iterdir())
    assert {"summary.txt", "results.json", "benchmark.log", "fits.log", "train_step.log"} <= set(files)
    doc = json.loads((out / "results.json").read_text())
    status = {name: s["status"] for name, s in doc["steps"].items()}
    assert status == {
        "benchmark": "ok",
        "fits": "ok",
        "train_step": "ok",
        "gpu_lane": "skipped",
        "smoke": "skipped",
        "memcheck": "skipped",
    }
    assert {r["backend"] for r in doc["benchmark"]["results"]} == {"naive", "chunked", "triton", "auto"}
    assert doc["benchmark"]["ceiling"]["bf16_gemm_tflops"] > 0
    assert [r["backend"] for r in doc["fits"]["results"]] == ["triton"]
    runs = doc["train_step"]["runs"]
    assert [(r["loss_name"], r["triplets"]) for r in runs] == [("uni_p", 12), ("multi_p_i", 12)]
    for r in runs:
        assert math.isfinite(r["loss"]) and r["loss"] > 0 and r["step_s"] > 0 and r["max_weight_change"] > 0
    assert runs[1]["swap_texts"] > 0  # multi_p_i encodes instruction swaps
    assert "gpu_lane: skipped (dry run)" in (out / "summary.txt").read_text()


@pytest.mark.e2e
def test_train_step_rejects_a_malformed_run_in_one_line():
    cmd = [sys.executable, str(TRAIN_STEP), "--tiny", "--device", "cpu", "--runs", "uni_p:2"]
    proc = subprocess.run(cmd, env=offline_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "'uni_p:2': expected LOSS:TRIPLETS with LOSS one of" in proc.stderr.strip().splitlines()[-1]
