"""Fault injection against real ``run.py`` processes: start a run, wait for a moment of its life (a step saved, a
checkpoint being written), kill it there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.processes import ROOT, offline_env

# the smoke pipeline, saving every step (each step also rewrites last.ckpt), no evaluation before training
SMOKE = (
    "debug=smoke",
    "logger=csv",
    "evaluation.before=false",
    "~callbacks.progress",
    "callbacks.checkpoint.every_n_train_steps=1",
    "callbacks.checkpoint.save_top_k=-1",
)


def start_run(*overrides: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """``python run.py OVERRIDES`` started in the background (stdout and stderr together)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *overrides],
        cwd=cwd,
        env=env or offline_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(process: subprocess.Popen, condition, timeout: float = 300.0, poll_s: float = 0.02) -> None:
    """Poll ``condition()`` until true; fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(
                f"run ended (rc {process.returncode}) first:\n{process.stdout.read()[-3000:]}"
            )
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll_s)


def being_written(directory: Path, full_size: int) -> bool:
    """Some file of ``directory`` (hidden ones included) is non-empty but clearly smaller than a whole checkpoint
    (whole ones differ by a few bytes of callback state)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return False
    for entry in entries:
        try:
            size = entry.stat().st_size
        except FileNotFoundError:
            continue
        if 0 < size < 0.98 * full_size:
            return True
    return False


def kill_inside_a_save(process: subprocess.Popen, directory: Path, timeout: float = 300.0) -> None:
    """SIGKILL ``process`` while it writes a checkpoint into ``directory`` (once a whole last.ckpt exists)."""
    last = directory / "last.ckpt"
    wait_until(process, lambda: (directory / "step2.ckpt").exists() and last.exists(), timeout)
    full_size = min(p.stat().st_size for p in directory.glob("step*.ckpt"))
    deadline = time.monotonic() + timeout
    while not being_written(directory, full_size):
        assert process.poll() is None, "the run ended before a save could be interrupted"
        assert time.monotonic() < deadline, "timed out"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
