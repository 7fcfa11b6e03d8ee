"""Hub access without network: an unreachable dataset or backbone fails up front with one line and the ways out;
transient errors while streaming are retried with backoff, then stop with the step and stream position."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import datasets
import huggingface_hub
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import RepositoryNotFoundError

from infembed.data import sources
from infembed.data.dataset import InfIRStream
from infembed.data.schema import COLUMNS, SkipStats
from infembed.data.sources import HubSource, StreamError
from infembed.preflight import HubAccessError, check_reachable

ROOT = Path(__file__).resolve().parents[1]
ROWS = [{c: f"{c} {i}" for c in COLUMNS} for i in range(12)]


@pytest.mark.e2e
def test_run_without_network_stops_before_loading_anything(tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "empty_cache"),
        "WANDB_MODE": "offline",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "data=inf_ir", "model=tiny", f"hydra.run.dir={tmp_path}/run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    line = next(line for line in output.splitlines() if "HubAccessError" in line)
    assert "data.train_source=InF-IR/InF-IR" in line and "HF_HUB_OFFLINE=1" in line and "data=local" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_backbone_folder_and_uncached_hub_id(tmp_path, monkeypatch):
    with pytest.raises(HubAccessError, match="model.backbone=/no/such/model: no such model folder"):
        check_reachable("model.backbone", "/no/such/model", "model")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        HubAccessError, match="nobody/nothing: the hub model is not in the local cache .*local model folder"
    ):
        check_reachable("model.backbone", "nobody/nothing", "model")
    check_reachable(
        "data.train_source", str(tmp_path / "later.jsonl"), "dataset"
    )  # local data: the DataModule checks


@pytest.mark.parametrize(
    "error, expected",
    [
        (ConnectionError("Name or service not known"), "the hub is unreachable \\(ConnectionError"),
        (
            RepositoryNotFoundError(
                "404", response=SimpleNamespace(headers={}, status_code=404, request=None)
            ),
            "no such dataset on the hub",
        ),
    ],
)
def test_hub_errors_online_name_the_repository(monkeypatch, error, expected):
    def repo_info(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    with pytest.raises(HubAccessError, match=f"data.train_source=InF-IR/InF-IR: {expected}.*data=local"):
        check_reachable("data.train_source", "InF-IR/InF-IR", "dataset")


def loader(dataset_id, split):
    return datasets.Dataset.from_list(ROWS).to_iterable_dataset(num_shards=2)


@pytest.fixture
def flaky(monkeypatch):
    """HubSource.open fails with a connection reset at row 3, `failures` times in a row; sleeps are recorded."""
    state = {"failures": 0, "sleeps": []}
    plain = HubSource.open

    def open_(self, shard, num_shards, start):
        for index, row in enumerate(plain(self, shard, num_shards, start), start=start):
            if index == 3 and state["failures"]:
                state["failures"] -= 1
                raise ConnectionResetError("connection reset by peer")
            yield row

    monkeypatch.setattr(HubSource, "open", open_)
    monkeypatch.setattr(sources.time, "sleep", state["sleeps"].append)
    return state


def query_ids(rows):
    return [row["query_positive"] for row in rows]


def test_transient_errors_are_retried_with_backoff_and_lose_no_row(flaky):
    source = HubSource("InF-IR/InF-IR", "msmarco", loader=loader, retries=3, backoff_s=0.5)
    expected = query_ids(HubSource("InF-IR/InF-IR", "msmarco", loader=loader).iter_shard(0, 1, SkipStats()))
    flaky["failures"] = 3
    assert query_ids(source.iter_shard(0, 1, SkipStats())) == expected
    assert flaky["sleeps"] == [0.5, 1.0, 2.0]


def test_persistent_errors_stop_with_the_step_and_stream_position(flaky):
    flaky["failures"] = 10
    stream = InfIRStream(
        HubSource("InF-IR/InF-IR", "msmarco", loader=loader, retries=2, backoff_s=1.0), repeat=True
    )
    stream.start_at(0, batch_rows=2)
    with pytest.raises(StreamError) as caught:
        list(zip(range(20), stream))
    message = str(caught.value)
    assert "InF-IR/InF-IR (split msmarco): row 3 (0-based, of shard 0/1)" in message
    assert "failed 3 times in a row (ConnectionResetError" in message and "step 2 (pass 0" in message
    assert "ckpt_path=last" in message and "\n" not in message and flaky["sleeps"] == [1.0, 2.0]


def test_worker_errors_reach_the_main_process_as_one_line():
    wrapped = (
        "Caught StreamError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1\ninfembed.data.sources.StreamError: hub failed; stopped at step 4\n'
    )
    assert str(StreamError(wrapped)) == "hub failed; stopped at step 4"
