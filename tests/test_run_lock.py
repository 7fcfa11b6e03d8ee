"""The run-directory lock's stale rules on real lock files: a dead pid on this host, an earlier attempt of this SLURM
job and an old heartbeat are taken over; a live run on another host with a fresh heartbeat is not."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from infembed.run_lock import LOCK_NAME, STALE_S, RunDirectoryInUseError, RunLock


def write_lock(directory, age_s: float = 0.0, **owner) -> None:
    path = directory / LOCK_NAME
    path.write_text(json.dumps({"pid": 1, "host": "elsewhere", "slurm_job": None, "started": "then"} | owner))
    os.utime(path, (time.time() - age_s, time.time() - age_s))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_live_run_elsewhere_keeps_the_directory(tmp_path):
    write_lock(tmp_path, age_s=5)
    with pytest.raises(RunDirectoryInUseError, match="in use by the run of pid 1 on elsewhere"):
        RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "elsewhere"  # untouched


@pytest.mark.parametrize(
    "owner, age_s",
    [
        ({"host": socket.gethostname(), "pid": dead_pid()}, 0.0),  # its process is gone
        ({"slurm_job": "4242"}, 0.0),  # a requeued job: the earlier attempt ended
        ({}, STALE_S + 60),  # no heartbeat for longer than STALE_S
    ],
)
def test_stale_locks_are_taken_over_and_released(tmp_path, monkeypatch, owner, age_s):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    write_lock(tmp_path, age_s=age_s, **owner)
    lock = RunLock(tmp_path)
    lock.acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
