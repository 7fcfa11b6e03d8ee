"""W&B runs that continue across resumes, and artifacts that do not copy checkpoints under $HOME.

:class:`WandbLogger` is Lightning's, with two changes:

- **the step axis continues**: every row is logged at W&B step = the trainer's global step (Lightning's logger leaves
  the step to W&B, which counts from 0 in every new process), so the segment of a resumed job starts where the
  checkpoint stopped (``_step`` 6, 7, ... after a checkpoint at step 6) and ``wandb sync`` of all its offline
  folders in one command (they go up in order of start time) gives one continuous history;
- **checkpoint artifacts by reference**: ``checkpoint_artifact="reference"`` (the default) records the checkpoint's
  path and checksum (``file://...``) instead of copying it into W&B's staging folder
  (``$WANDB_DATA_DIR/artifacts/staging``, default under ``~/.local/share/wandb``: 272 MB per MiniLM run);
  ``"copy"`` uploads the file itself (the artifact then works on any machine), ``"none"`` logs no model artifact.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only

from infembed.errors import check_choice

CHECKPOINT_ARTIFACTS = ("reference", "copy", "none")


class WandbLogger(LightningWandbLogger):
    """Lightning's ``WandbLogger`` (every argument passes through) plus ``checkpoint_artifact`` (see above)."""

    def __init__(self, *args, checkpoint_artifact: str = "reference", **kwargs) -> None:
        check_choice(checkpoint_artifact, CHECKPOINT_ARTIFACTS, "logger.checkpoint_artifact")
        super().__init__(*args, **kwargs)
        self.checkpoint_artifact = checkpoint_artifact

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """One row at W&B step ``step`` (the global step) with ``trainer/global_step``; without a step, W&B's."""
        if step is None:
            return super().log_metrics(metrics)
        self.experiment.log({**metrics, "trainer/global_step": step}, step=step)

    @rank_zero_only
    def log_results(self, output_dir: Path, checkpoint_path: str | os.PathLike | None) -> None:
        """``results-<run id>`` (metrics.json, per_query.json, clusters.json if any) and ``model-<run id>`` (the checkpoint as
        ``model.ckpt``, W&B's naming for Lightning checkpoints); a resumed run adds a new version of each."""
        import wandb

        run = self.experiment
        results = wandb.Artifact(f"results-{run.id}", type="results")
        for name in ("metrics.json", "per_query.json", "clusters.json"):
            if (output_dir / name).is_file():
                results.add_file(str(output_dir / name))
        run.log_artifact(results)
        if not checkpoint_path or self.checkpoint_artifact == "none":
            return
        model = wandb.Artifact(f"model-{run.id}", type="model")
        if self.checkpoint_artifact == "reference":
            model.add_reference(Path(checkpoint_path).resolve().as_uri(), name="model.ckpt")
        else:
            model.add_file(str(checkpoint_path), name="model.ckpt")
        run.log_artifact(model)


__all__ = ["CHECKPOINT_ARTIFACTS", "WandbLogger"]
