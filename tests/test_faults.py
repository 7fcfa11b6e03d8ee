"""Faults injected into real ``run.py`` processes: kill -9 inside a checkpoint save with $TMPDIR on another
filesystem (/dev/shm), damaged checkpoint files on every read path, and a second run into a live run's directory.
Each of these failed before checkpoints were written atomically, reads named the file and run directories locked."""

import json
import shutil
import uuid
from pathlib import Path

import pytest
import torch

from helpers import offline_env, run_module, run_py
from helpers.faults import SMOKE, kill_inside_a_save, start_run, wait_until
from helpers.training import same

SHM = Path("/dev/shm")


def final_state(run_dir: Path, step: int) -> dict:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == step
    return checkpoint


def one_line_error(result, *words: str) -> str:
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "Error: " in line]
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert len(errors) == 1 and all(w in errors[0] for w in words), output[-3000:]
    return errors[0]


@pytest.fixture
def other_filesystem_tmpdir():
    if not SHM.is_dir():
        pytest.skip("needs /dev/shm (a filesystem other than the run directory's)")
    folder = SHM / f"infembed-test-{uuid.uuid4().hex}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.e2e
def test_kill_inside_a_save_with_tmpdir_on_another_filesystem_resumes_exactly(
    tmp_path, other_filesystem_tmpdir
):
    # a 4M-parameter BERT: 50 MB checkpoints, so that a save lasts long enough to be interrupted
    steps = ("trainer.max_steps=10", "trainer.val_check_interval=5", "model.config_overrides.hidden_size=128")
    env = offline_env(TMPDIR=str(other_filesystem_tmpdir))
    job = tmp_path / "job"
    process = start_run(*SMOKE, *steps, f"hydra.run.dir={job}", cwd=tmp_path, env=env)
    kill_inside_a_save(process, job / "checkpoints")

    left = [p for p in other_filesystem_tmpdir.rglob("*") if p.is_file() and p.stat().st_size > 2**20]
    assert not left, f"checkpoint-sized files left in $TMPDIR: {left}"
    killed_at = torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]  # whole file
    resumed = run_py(*SMOKE, *steps, "ckpt_path=last", f"hydra.run.dir={job}", cwd=tmp_path, env=env)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert "stale lock" in output and "process" in output  # the killed run's lock: its pid is gone
    assert "ckpt_path=last: resuming from" in output
    assert not list((job / "checkpoints").glob(".*")), "partial files of the interrupted save are left"

    uninterrupted = run_py(*SMOKE, *steps, f"hydra.run.dir={tmp_path / 'full'}", cwd=tmp_path, env=env)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    a, b = final_state(job, 10), final_state(tmp_path / "full", 10)
    assert 0 < killed_at < 10
    assert same(a["state_dict"], b["state_dict"]) and same(a["optimizer_states"], b["optimizer_states"])


@pytest.mark.e2e
def test_damaged_checkpoints_are_skipped_by_last_and_named_by_every_reader(tmp_path):
    job = tmp_path / "job"
    assert run_py(*SMOKE, "trainer.max_steps=4", f"hydra.run.dir={job}", cwd=tmp_path).returncode == 0
    ckpts = job / "checkpoints"
    reference = torch.load(ckpts / "step4.ckpt", weights_only=False)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((ckpts / "last.ckpt").read_bytes()[:100_000])
    shutil.copy(truncated, ckpts / "last.ckpt")  # a copy killed half-way
    (ckpts / "step4.ckpt").write_bytes(b"")  # a file created but never written
    for path in (ckpts / "last.ckpt", ckpts / "step4.ckpt"):
        path.touch()  # the damaged files are the newest

    resumed = run_py(*SMOKE, "trainer.max_steps=4", "ckpt_path=last", f"hydra.run.dir={job}", cwd=tmp_path)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert f"skipped {ckpts / 'last.ckpt'}: not a readable checkpoint" in output
    assert f"skipped {ckpts / 'step4.ckpt'}: not a readable checkpoint (empty file)" in output
    assert f"resuming from {ckpts / 'step3.ckpt'}" in output
    assert same(final_state(job, 4)["state_dict"], reference["state_dict"])

    train = run_py(*SMOKE, f"ckpt_path={truncated}", f"hydra.run.dir={tmp_path / 't'}", cwd=tmp_path)
    one_line_error(train, str(truncated), "not a readable checkpoint")
    evaluate = run_py(
        "debug=smoke", "task=evaluate", f"ckpt_path={truncated}", "benchmark.path=unused",
        f"hydra.run.dir={tmp_path / 'e'}", cwd=tmp_path,
    )  # fmt: skip
    one_line_error(evaluate, str(truncated), "not a readable checkpoint")
    export = run_module(
        "infembed.export", "--ckpt", str(truncated), "--out", str(tmp_path / "x"), cwd=tmp_path
    )
    one_line_error(export, f"CheckpointError: {truncated}: not a readable checkpoint")
    assert not (tmp_path / "x").exists()


@pytest.mark.e2e
def test_a_second_run_into_a_live_run_directory_stops_and_touches_nothing(tmp_path):
    job = tmp_path / "job"
    first = start_run(*SMOKE, "trainer.max_steps=40", "trainer.val_check_interval=20", f"hydra.run.dir={job}",
                      cwd=tmp_path)  # fmt: skip
    wait_until(first, lambda: (job / "checkpoints" / "step1.ckpt").exists())
    hydra_files = {p.name: p.read_bytes() for p in (job / ".hydra").iterdir()}
    log_before = (job / "run.log").read_text()

    second = run_py(*SMOKE, "seed=7", f"hydra.run.dir={job}", cwd=tmp_path)
    line = one_line_error(second, str(job), f"pid {first.pid}", "in use")
    assert "hydra.run.dir" in line
    assert {p.name: p.read_bytes() for p in (job / ".hydra").iterdir()} == hydra_files
    assert "seed=7" not in (job / "run.log").read_text() and (job / "run.log").read_text().startswith(
        log_before
    )

    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, output[-3000:]
    assert json.loads((job / "metrics.json").read_text())["config"]["seed"] == 42
    assert not (job / ".run.lock").exists()  # released at the end: the next run may use the directory
