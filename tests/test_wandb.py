"""One Hydra job = one W&B run: a resumed job (same directory, ckpt_path=last) continues the run id, both runs log
metrics.json, per_query.json and the checkpoint as artifacts offline, and the config is logged once, nested.

The offline run is read from its ``run-<id>.wandb`` file: a LevelDB-style log (7-byte header, 32 KiB blocks, each
chunk = crc32 (4) + length (2) + type (1: full, 2: first, 3: middle, 4: last)) of ``wandb_internal_pb2.Record``s."""

import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from wandb.proto import wandb_internal_pb2

ROOT = Path(__file__).resolve().parents[1]


def records(path: Path):
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunks = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def read_run(folder: Path) -> dict:
    (path,) = folder.glob("run-*.wandb")
    run = {"artifacts": {}, "config_keys": []}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["id"], run["name"], run["resume"] = (
                record.run.run_id,
                record.run.display_name,
                record.run.resume,
            )
            run["config_keys"] += [u.key for u in record.run.config.update if u.key != "_wandb"]
        elif kind == "config":
            run["config_keys"] += [u.key for u in record.config.update if u.key != "_wandb"]
        elif kind == "artifact":
            run["artifacts"][record.artifact.name] = (
                record.artifact.type,
                sorted(c.path for c in record.artifact.manifest.contents),
            )
    return run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A smoke run, then the same job resumed from its last checkpoint with more steps (what a requeue does)."""
    cwd = tmp_path_factory.mktemp("wandb")
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_DATA_DIR": str(cwd / "wandb_data"),
    }  # offline artifact copies stay in the test folder
    outputs = []
    resume = ["ckpt_path=last", "trainer.max_steps=9", "resume.allow_changes=[trainer.max_steps]"]
    for extra in ([], [*resume, "evaluation.before=false"]):
        result = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), "debug=smoke", f"hydra.run.dir={cwd}/job", *extra],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout)
    folders = sorted((cwd / "logs" / "wandb").glob("offline-run-*"))
    return cwd, [read_run(f) for f in folders], folders, outputs


@pytest.mark.e2e
def test_resumed_job_continues_the_same_run(two_runs):
    cwd, runs, folders, _ = two_runs
    assert len(folders) == 2
    expected = hashlib.blake2b(str((cwd / "job").resolve()).encode(), digest_size=6).hexdigest()
    assert [r["id"] for r in runs] == [expected, expected]
    assert all(f.name.endswith("-" + expected) for f in folders)
    assert all(r["resume"] for r in runs)  # resume="allow": wandb sync appends both parts to one run
    assert runs[0]["name"] == "train/job debug=smoke"
    assert (
        runs[1]["name"] == "train/job debug=smoke evaluation.before=false trainer.max_steps=9"
    )  # no ckpt_path


@pytest.mark.e2e
def test_results_and_checkpoint_are_artifacts_offline(two_runs):
    _, runs, _, _ = two_runs
    for run in runs:
        assert run["artifacts"] == {
            f"results-{run['id']}": ("results", ["metrics.json", "per_query.json"]),
            f"model-{run['id']}": ("model", ["model.ckpt"]),
        }


@pytest.mark.e2e
def test_config_logged_once_and_nested(two_runs):
    cwd, runs, _, _ = two_runs
    top_level = sorted(yaml.safe_load((cwd / "job" / ".hydra" / "config.yaml").read_text()))
    for run in runs:
        assert sorted(run["config_keys"]) == top_level  # each key once; no flattened "module/..." copies


@pytest.mark.e2e
def test_resumed_progress_starts_at_the_checkpoint_step(two_runs):
    _, _, _, (first, resumed) = two_runs
    assert "training from step 0 to 6" in first
    assert (
        "training from step 6 to 9" in resumed
        and " - step 7/9 | " in resumed
        and " - step 1/9 " not in resumed
    )
