"""Hydra's BasicSweeper that composes and validates every job of a multirun before the first job starts.

Why a sweeper and not a ``Callback.on_multirun_start``: the sweeper is the one place that holds the exact job list
(its own expansion of ``hydra.sweeper.params`` and the command line into batches) and the config loader the
launchers compose each job with, so the configs checked here are the configs the jobs get, under every launcher
(basic, submitit local, submitit SLURM). A callback would have to re-implement that expansion. The launching
process then stops with one line naming the job's overrides and the key, before anything is queued.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

from infembed.config import composition_error_line
from infembed.errors import ConfigError, UserError


class ValidatingSweeper(BasicSweeper):
    """``hydra.sweeper._target_`` of conf/hydra/default.yaml; otherwise exactly :class:`BasicSweeper`."""

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        if self.batch_index == 0:  # the first batch: nothing launched yet
            for number, overrides in enumerate(job for batch in self.overrides for job in batch):
                self.validate_job(number, list(overrides))
            HydraConfig.instance().set_config(self.config)
        return super().get_job_batch()

    def validate_job(self, number: int, overrides: list[str]) -> None:
        """Compose job ``number`` as its launcher will and run :func:`infembed.preflight.validate` on it."""
        from infembed.preflight import validate

        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            HydraConfig.instance().set_config(cfg)
            validate(_job_view(cfg))
        except Exception as err:
            line = str(err) if isinstance(err, UserError) else composition_error_line(err)
            if line is None:
                raise
            raise ConfigError(
                f"sweep job {number} ({' '.join(overrides)}), nothing launched: {line}"
            ) from None


def _job_view(cfg: DictConfig) -> DictConfig:
    """The job's config as Hydra's ``run_job`` hands it to the task function: without the ``hydra`` node."""
    job = copy.deepcopy(cfg)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job
