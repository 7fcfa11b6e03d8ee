"""Logs that read well in a file: step-based progress (lines when piped, a bar in a terminal, the real step after a
resume), each message once, no product tips."""

import collections
import dataclasses
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from infembed.callbacks.progress import StepProgress
from infembed.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LOG_PREFIX = re.compile(r"^(\[[^\]]+\]\[[^\]]+\]\[\w+\] - |[A-Z]+: )")  # Hydra's format, Lightning's format


@dataclasses.dataclass
class Batch:
    x: torch.Tensor  # (N, 4)

    @property
    def num_triplets(self) -> int:
        return self.x.shape[0]


class Toy(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: Batch, batch_idx: int):
        loss = self.layer(batch.x).pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader([Batch(torch.randn(3, 4)) for _ in range(64)], batch_size=None)


def fit(tmp_path: Path, progress: StepProgress, max_steps: int, ckpt_path=None, **trainer) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=max_steps,
        callbacks=[progress],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
        **trainer,
    )
    trainer.fit(Toy(), ckpt_path=ckpt_path)
    return trainer


def test_lines_every_n_steps_and_at_the_end(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="infembed.callbacks.progress"):
        fit(
            tmp_path, StepProgress(every_n_steps=2, interactive=False), max_steps=5, accumulate_grad_batches=2
        )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split(" |")[0] for line in lines] == ["step 2/5", "step 4/5", "step 5/5"]
    for line in lines:
        assert re.search(
            r"\| train/loss [\d.e+-]+ \| lr 1\.00e-01 \| [\d.]+ triplets/s \| peak mem [\d.]+ GiB", line
        )
    assert float(lines[0].split(" triplets/s")[0].rsplit("| ", 1)[1]) > 0


def test_terminal_bar_counts_steps_and_resumes_at_the_real_step(tmp_path, capsys):
    trainer = fit(tmp_path, StepProgress(every_n_steps=1, interactive=True), max_steps=4)
    trainer.save_checkpoint(tmp_path / "four.ckpt")
    first = capsys.readouterr().out
    assert "4/4" in first and "train/loss" in first and "Epoch" not in first
    fit(
        tmp_path,
        StepProgress(every_n_steps=1, interactive=True),
        max_steps=6,
        ckpt_path=tmp_path / "four.ckpt",
    )
    resumed = capsys.readouterr().out
    bars = re.findall(r"train:[^\r\n]*", resumed)
    assert bars and " 4/6 " in bars[0] and " 6/6 " in bars[-1]
    assert not re.search(r"\b[0-3]/6\b", resumed)  # never counts from 0 after a resume


def test_every_n_steps_must_be_positive():
    with pytest.raises(ConfigError, match=r"callbacks.progress.every_n_steps=0: expected an integer >= 1"):
        StepProgress(every_n_steps=0)


@pytest.mark.e2e
def test_piped_run_prints_plain_lines_once_and_no_tips(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "debug=smoke",
            "logger=csv",
            "evaluation.before=false",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    steps = re.findall(
        r" - step (\d+)/6 \| elapsed \d\d:\d\d \| ETA \d\d:\d\d \| train/loss .* triplets/s \| peak mem ",
        result.stdout,
    )
    assert steps == [str(s) for s in range(1, 7)]  # debug=smoke: log_every_n_steps=1, max_steps=6
    assert (
        "validation at step 3: val/loss" in result.stdout
        and "validation at step 6: val/loss" in result.stdout
    )
    assert (
        "val/mrr" in result.stdout and "val/instruction_sensitivity" in result.stdout
    )  # the torchmetrics ones
    assert "Tip" not in output and "Epoch" not in output and "it/s" not in output  # no tips, no Lightning bar
    messages = [LOG_PREFIX.sub("", line) for line in output.splitlines() if line.strip()]
    repeated = [m for m, n in collections.Counter(messages).items() if n > 1]
    assert not repeated, repeated  # Lightning's own handler used to print every info line a second time
    assert sum("Seed set to 42" in m for m in messages) == 1
    assert (tmp_path / "run" / "run.log").read_text().count(
        " - step "
    ) == 6  # Hydra's job log file has them too
