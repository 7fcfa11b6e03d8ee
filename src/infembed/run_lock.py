"""One run per run directory: a lock file taken before Hydra writes anything into the directory.

``<run dir>/.run.lock`` holds ``{"pid", "host", "slurm_job", "started"}`` of the run that owns the directory; a
thread refreshes its modification time (the heartbeat) every ``HEARTBEAT_S`` seconds. A second run into the
directory stops with one line (exit 1) before Hydra writes its config or log there, so nothing of the first run is
touched. A lock is stale, and taken over with a warning, when its pid is dead on this host, when it names this
process's SLURM job (a requeued job: the earlier attempt has ended), or when its heartbeat is older than ``STALE_S``
(a run on another host that was killed). The lock is removed when the run ends, also after an error.

The lock is a Hydra callback (conf/hydra/default.yaml): a single run locks ``hydra.run.dir`` at ``on_run_start``;
each job of a multirun locks its own directory at ``on_job_start``. Only the launching process locks: DDP ranks that
Lightning starts by re-running the command line, and SLURM tasks other than the first, share their rank 0's lock.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from infembed.errors import UserError

log = logging.getLogger(__name__)
LOCK_NAME = ".run.lock"
HEARTBEAT_S = 30.0
STALE_S = 300.0
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class RunDirectoryInUseError(UserError):
    """Another live run owns the run directory."""


def is_rank_zero() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def stale_reason(owner: dict, heartbeat_age: float) -> str | None:
    """Why the lock of ``owner`` no longer protects a live run, or None when it does."""
    if owner.get("host") == socket.gethostname() and not pid_alive(int(owner.get("pid", -1))):
        return f"process {owner.get('pid')} on this host is gone"
    job = os.environ.get("SLURM_JOB_ID")
    if job and owner.get("slurm_job") == job and owner.get("pid") != os.getpid():
        return f"it is an earlier attempt of this SLURM job {job}"
    if heartbeat_age > STALE_S:
        return f"its heartbeat is {heartbeat_age:.0f} s old (> {STALE_S:.0f} s)"
    return None


class RunLock:
    """The lock of one run directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / LOCK_NAME
        self.stop = threading.Event()
        self.owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "slurm_job": os.environ.get("SLURM_JOB_ID"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._create():
            owner, age = self._read()
            reason = stale_reason(owner, age)
            if reason is None:
                raise RunDirectoryInUseError(
                    f"{self.path.parent}: in use by the run of pid {owner.get('pid')} on {owner.get('host')} "
                    f"(started {owner.get('started')}, heartbeat {age:.0f} s ago); give this run another "
                    f"hydra.run.dir, or wait for that one to end"
                )
            log.warning("%s: taking over a stale lock (%s)", self.path, reason)
            self.path.unlink(missing_ok=True)
            if not self._create():
                raise RunDirectoryInUseError(f"{self.path.parent}: another run took the directory just now")
        atexit.register(self.release)
        threading.Thread(target=self._beat, daemon=True, name="run-lock-heartbeat").start()

    def _create(self) -> bool:
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.owner, handle)
        return True

    def _read(self) -> tuple[dict, float]:
        """The owner recorded in the lock and the age of its heartbeat (a half-written lock: unknown, fresh)."""
        try:
            age = time.time() - self.path.stat().st_mtime
            return json.loads(self.path.read_text()), age
        except FileNotFoundError:
            return {}, float("inf")
        except json.JSONDecodeError:
            return {}, 0.0

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def release(self) -> None:
        """Remove the lock if this process still owns it."""
        self.stop.set()
        owner, _ = self._read()
        if owner.get("pid") == os.getpid() and owner.get("host") == self.owner["host"]:
            self.path.unlink(missing_ok=True)


class RunDirectoryLock(Callback):
    """Hydra callback: lock each run directory before Hydra writes into it (see the module docstring)."""

    def __init__(self) -> None:
        self.locks: list[RunLock] = []

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._lock(config.hydra.run.dir)

    def on_run_end(self, config: DictConfig, **kwargs) -> None:
        self._release()

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if config.hydra.mode.name == "MULTIRUN":
            self._lock(config.hydra.runtime.output_dir)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if config.hydra.mode.name == "MULTIRUN":
            self._release()

    def _lock(self, directory: str) -> None:
        if not is_rank_zero():
            return
        lock = RunLock(directory)
        try:
            lock.acquire()
        except (
            RunDirectoryInUseError
        ) as err:  # before Hydra's logging exists: the same one line run.py prints
            print(f"{type(err).__name__}: {err}", file=sys.stderr)
            sys.exit(1)
        self.locks.append(lock)

    def _release(self) -> None:
        while self.locks:
            self.locks.pop().release()
