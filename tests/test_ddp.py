"""trainer=ddp through run.py on 2 gloo CPU ranks, as a user types it, for each loss family (the gradient cache and
gradient accumulation ride along on one of them), and the one-node multirun that would re-run the sweep per rank."""

import json
import re

import pytest

from helpers import run_py as run

DDP = (
    "debug=smoke",
    "trainer=ddp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.precision=32-true",
    "trainer.max_steps=2",
    "evaluation.before=false",
    "logger=csv",
)
FAMILIES = [
    ("uni_p", ()),
    ("multi_p_i", ()),
    ("multi_p_i_iq", ("grad_cache.chunk_size=2", "trainer.accumulate_grad_batches=2")),
]


@pytest.mark.e2e
@pytest.mark.parametrize("loss, extra", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_two_ranks_train_through_run_py(tmp_path, loss, extra):
    result = run(
        *DDP,
        f"loss={loss}",
        "data.global_batch_size=4",
        *extra,
        f"hydra.run.dir={tmp_path}/run",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "`max_steps=2` reached" in output
    accumulate = 2 if extra else 1
    per_rank = 3 * 4 // (2 * accumulate)  # triplets per device and micro-batch
    found = re.search(
        r"loss batch: (\d+) triplets gathered from (\d+) rank\(s\) \((\d+) on this one\)", output
    )
    assert found, output[-3000:]
    assert [int(g) for g in found.groups()] == [2 * per_rank, 2, per_rank]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["loss"]["name"] == loss and "synthetic" in metrics["after"]


@pytest.mark.e2e
def test_one_node_multirun_with_ddp_is_refused(tmp_path):
    result = run("-m", *DDP, f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "launcher=slurm" in output and "torchrun" in output and "Traceback" not in output
    assert not (tmp_path / "data").exists()  # refused before any data was generated
