"""Step checkpoints that keep the final step, written atomically on any filesystem layout.

Lightning's ``ModelCheckpoint(every_n_train_steps=N, save_last=True)`` writes ``last.ckpt`` every N steps only, so a
run of 110 steps with N = 50 would end with ``last.ckpt`` at step 100: an evaluation or export of "the trained model"
would silently miss the last 10 steps. :class:`StepCheckpoint` writes ``last.ckpt`` once more when training ends at a
step that was not saved.

Lightning's own writer stages a checkpoint in ``$TMPDIR`` and moves it into place; with ``$TMPDIR`` on another
filesystem than the run directory (node-local /tmp, shared run directory: the usual cluster layout) that move is a
copy over the old file, and a kill during the copy leaves ``last.ckpt`` empty or partial and the staged file behind.
:class:`StepCheckpoint` therefore gives the strategy :class:`AtomicCheckpointIO` (every ``trainer.save_checkpoint``,
the preemption checkpoint's included, goes through it; see :mod:`infembed.checkpoint_files`) and removes the partial
files of interrupted saves when a run sets up.
"""

from __future__ import annotations

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from infembed.checkpoint_files import atomic_save, read_checkpoint, remove_partial_saves


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic local writes and one-line errors on damaged reads."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return read_checkpoint(path, map_location=map_location or "cpu")


class StepCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` always holds the step training ended at, written atomically."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if (
            type(trainer.strategy.checkpoint_io) is TorchCheckpointIO
        ):  # Lightning's default, not a user's plugin
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        if trainer.is_global_zero and self.dirpath:
            remove_partial_saves(self.dirpath)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):  # a step not saved yet
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        else:
            super().on_train_end(trainer, pl_module)


__all__ = ["AtomicCheckpointIO", "StepCheckpoint"]
