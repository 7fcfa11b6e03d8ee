"""Running the project's commands as a user does: ``run.py`` (or ``python -m ...``) in a subprocess, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def offline_env(**extra: str) -> dict[str, str]:
    """This process's environment with W&B and the hub offline (plus ``extra``)."""
    return {**os.environ, **OFFLINE, **extra}


def run_python(*argv: str, cwd, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python ARGV`` in ``cwd``; stdout and stderr captured as text; never raises on exit status."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env or offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_py(*overrides: str, cwd, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python run.py OVERRIDES`` in ``cwd`` (see :func:`run_python`)."""
    return run_python(str(ROOT / "run.py"), *overrides, cwd=cwd, timeout=timeout, env=env)


def run_module(module: str, *args: str, cwd, timeout: int = 600, env: dict | None = None):
    """``python -m MODULE ARGS`` in ``cwd`` (see :func:`run_python`)."""
    return run_python("-m", module, *args, cwd=cwd, timeout=timeout, env=env)
