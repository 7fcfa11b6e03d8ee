"""Progress in a file and in a terminal: phase lines with wall times, ETAs, no \\r bars in a file, and in a
pseudo-terminal a bar whose line no log record lands on, drawn to completion once."""

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from infembed.logs import eta, progress

from helpers import ROOT, offline_env, run_py
from helpers.benchmarks import make_beir

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOG_RECORD = re.compile(r"\]\[[\w.]+\]\[(INFO|WARNING|ERROR)\] - ")


def test_eta_assumes_the_rate_so_far():
    assert eta(1, 4, 10.0) == "elapsed 00:10 | ETA 00:30"
    assert eta(0, 4, 3.0) == "elapsed 00:03 | ETA ?"


def test_progress_in_a_file_is_lines_with_the_eta(caplog):
    def slow(n):
        for i in range(n):
            time.sleep(0.01)
            yield i

    with caplog.at_level("INFO", logger="infembed"):
        assert list(progress(slow(3), 3, "encode passages", unit="batch", every_s=0, interactive=False)) == [
            0,
            1,
            2,
        ]
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" | ")[0] for line in lines] == [
        "encode passages: 1/3 batch",
        "encode passages: 2/3 batch",
    ]
    assert all(re.search(r"\| elapsed 00:00 \| ETA 00:00$", line) for line in lines)


@pytest.mark.e2e
def test_piped_run_has_phase_lines_etas_and_no_carriage_returns(tmp_path):
    beir = make_beir(tmp_path / "toy")
    result = run_py(
        "debug=smoke", "logger=csv", f"benchmark.path={beir}", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "\r" not in output  # no bar of ours, Lightning's, transformers' or the hub's
    phases = {
        "preparing data": 1,
        "evaluation before training": 1,
        "evaluation after training": 1,
        "synthetic held-out set": 2,  # in each evaluation
        "evaluating toy": 2,
        "toy: corpus embeddings of 4 documents": 2,
    }
    for phase, times in phases.items():
        assert output.count(f" - {phase} ...\n") == times, phase
        assert len(re.findall(rf" - {re.escape(phase)} done in \d\d:\d\d\n", output)) == times, phase
    assert " - training from step 0 to 6\n" in output
    assert re.search(r" - training done: 6 steps in \d\d:\d\d\n", output)
    step_lines = re.findall(r" - step \d/6 \| elapsed \d\d:\d\d \| ETA \d\d:\d\d \| train/loss", output)
    assert len(step_lines) == 6


def screen(raw: bytes) -> list[str]:
    """What a terminal shows: ``\\r`` returns to column 0 and overwrites, ``\\n`` starts a new line."""
    lines, line, col = [], [], 0
    for char in ANSI.sub("", raw.decode("utf-8", errors="replace")):
        if char == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif char == "\r":
            col = 0
        else:
            line[col : col + 1] = [char]
            col += 1
    return [*lines, "".join(line).rstrip()]


def run_in_a_terminal(*overrides: str, cwd) -> tuple[int, bytes]:
    """``run.py`` with stdout and stderr on a 40x160 pseudo-terminal; its exit status and everything it wrote."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *overrides],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env=offline_env(),
    )
    os.close(follower)
    raw = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 1)
        try:
            chunk = os.read(leader, 65536) if ready else b""
        except OSError:  # the follower side closed: the process is done
            break
        if ready and not chunk:
            break
        raw += chunk
        if not ready and process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=60), raw


@pytest.mark.e2e
def test_terminal_run_has_a_bar_and_log_lines_of_their_own(tmp_path):
    status, raw = run_in_a_terminal(
        "debug=smoke", "logger=csv", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path
    )
    assert status == 0, raw[-3000:]
    shown = screen(raw)
    assert any(re.match(r"train: +50%\|", line) for line in raw.decode(errors="replace").split("\r"))
    assert (
        len([line for line in shown if re.match(r"train: 100%\|.* 6/6 ", line)]) == 1
    )  # the final bar, once
    on_bar_line = [line for line in shown if "train:" in line and LOG_RECORD.search(line)]
    assert not on_bar_line, on_bar_line
    records = [line for line in shown if LOG_RECORD.search(line)]
    assert all(line.startswith("[20") for line in records), [r for r in records if not r.startswith("[20")]
    assert any(" - training done: 6 steps in " in line for line in records)
