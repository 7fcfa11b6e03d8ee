"""SIGTERM / SIGUSR2: finish the current optimiser step, save ``last.ckpt`` there, exit so that submitit requeues.

SLURM sends USR2 ``signal_delay_s`` before the time limit (submitit's ``--signal``) and SIGTERM on preemption or
scancel. During training the handler only records the signal. At the next optimiser-step boundary every rank agrees
(any rank signalled → all stop at the same step), the checkpoint callback's ``last.ckpt`` is written at that step,
the handler installed before training is called (under launcher=slurm, submitit's: it requeues the job), and the
process exits with status 128 + signal number. The requeued job's ``ckpt_path=last`` resumes exactly from that step
(per-step seeding and the data stream position make the continuation identical to an uninterrupted run).
Requeue has one owner, submitit: Lightning's SLURM auto-requeue is off (conf/launcher/slurm.yaml) and Lightning's
own SIGTERM handler is replaced while training runs.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from infembed.errors import ConfigError

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class Preempted(SystemExit):
    """Raised at the step boundary after the checkpoint is written; the process exits with 128 + signal."""


class PreemptionCheckpoint(Callback):
    """Checkpoint-and-exit on SIGTERM / SIGUSR2 (see the module docstring)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.before: dict[int, object] = {}  # handlers installed before fit (submitit's under SLURM)
        self.step = 0

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.checkpoint_callback is None:
            raise ConfigError(
                "callbacks.preemption needs callbacks.checkpoint (it saves that callback's last.ckpt)"
            )
        self.before = {sig: signal.getsignal(sig) for sig in SIGNALS}  # before Lightning installs its own

    def on_train_start(self, trainer, pl_module) -> None:
        self.step, self.received = trainer.global_step, None
        for sig in SIGNALS:
            signal.signal(sig, self.record)

    def record(self, signum: int, frame) -> None:
        if self.received is None:
            log.warning(
                "%s received: saving a checkpoint at the end of this step", signal.Signals(signum).name
            )
        self.received = signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:  # inside gradient accumulation: no step boundary yet
            return
        self.step = trainer.global_step
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        signum = self.received or signal.SIGTERM  # a rank that got no signal stops with the others
        path = last_checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        name = signal.Signals(signum).name
        log.warning(
            "%s: saved %s at step %d; exiting (resume with ckpt_path=last)", name, path, trainer.global_step
        )
        self.restore()
        handler = self.before.get(signum)
        if callable(handler):
            handler(signum, None)  # submitit: requeue (rank 0) and exit
        raise Preempted(128 + signum)

    def restore(self) -> None:
        for sig, handler in self.before.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def on_train_end(self, trainer, pl_module) -> None:
        self.restore()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.restore()


def last_checkpoint_path(trainer) -> str:
    """``<checkpoint dir>/last.ckpt``: what ``ckpt_path=last`` finds."""
    checkpoint = trainer.checkpoint_callback
    directory = (
        Path(checkpoint.dirpath) if checkpoint.dirpath else Path(trainer.default_root_dir) / "checkpoints"
    )
    return str(directory / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}")
