"""SIGTERM and SIGUSR2 sent to a real `python run.py` training subprocess: the process saves last.ckpt at the current
step and exits (128 + signal); rerun with ckpt_path=last (what a requeued job does) it continues exactly, ending
bit-identical to a run that was never interrupted."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.training import same

ROOT = Path(__file__).resolve().parents[1]
STEPS = 40
COMMON = (
    "debug=smoke",
    "logger=csv",
    "evaluation.before=false",
    "~callbacks.progress",
    f"trainer.max_steps={STEPS}",
    "trainer.val_check_interval=10",
    "callbacks.checkpoint.every_n_train_steps=1",
)
ENV = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def steps_saved(run_dir: Path) -> list[int]:
    return [
        int(m.group(1))
        for p in (run_dir / "checkpoints").glob("step*.ckpt")
        if (m := re.match(r"step(\d+)", p.stem))
    ]


def interrupt(run_dir: Path, cwd: Path, signum: int, after_step: int, *overrides) -> int:
    """Start run.py, send `signum` once a step after `after_step` is saved; the step last.ckpt holds."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *COMMON, *overrides, f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 600
    while not any(step > after_step for step in steps_saved(run_dir)):
        assert process.poll() is None and time.monotonic() < deadline, (
            "run ended before it could be signalled"
        )
        time.sleep(0.05)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 128 + signum, output[-3000:]
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert after_step < step < STEPS and f"{signal.Signals(signum).name}: saved" in output
    return step


@pytest.mark.e2e
def test_signals_checkpoint_the_step_and_the_requeued_run_continues_exactly(tmp_path):
    job = tmp_path / "job"  # a requeued job reruns in the same directory
    first = interrupt(job, tmp_path, signal.SIGTERM, 0)
    second = interrupt(job, tmp_path, signal.SIGUSR2, first, "ckpt_path=last")
    assert second > first
    for args, run_dir in ((("ckpt_path=last",), job), ((), tmp_path / "uninterrupted")):
        result = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), *COMMON, *args, f"hydra.run.dir={run_dir}"],
            cwd=tmp_path,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    final = [
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=False)
        for d in (job, tmp_path / "uninterrupted")
    ]
    assert final[0]["global_step"] == final[1]["global_step"] == STEPS
    assert same(final[0]["state_dict"], final[1]["state_dict"])
    assert same(final[0]["optimizer_states"], final[1]["optimizer_states"])
