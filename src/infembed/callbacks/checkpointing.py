"""Step checkpoints that also keep the final step.

Lightning's ``ModelCheckpoint(every_n_train_steps=N, save_last=True)`` writes ``last.ckpt`` every N steps only, so a
run of 110 steps with N = 50 would end with ``last.ckpt`` at step 100: an evaluation or export of "the trained model"
would silently miss the last 10 steps. This subclass writes ``last.ckpt`` once more when training ends at a step that
was not saved.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class StepCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` always holds the step training ended at."""

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):  # a step not saved yet
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        else:
            super().on_train_end(trainer, pl_module)


__all__ = ["StepCheckpoint"]
