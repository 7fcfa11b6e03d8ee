"""Resume policy: a resumed run trains what the checkpoint was training, or says what changed and why it may.

Every checkpoint records (as this callback's state, ``checkpoint["callbacks"]["RunRecord"]``) the settings that
decide what is trained, flattened to ``{key: value}``:

    model.*, loss.*, module.* (optimiser and its hyperparameters, schedule), data.*, seed,
    trainer.max_steps (the schedule's length), trainer.accumulate_grad_batches, trainer.gradient_clip_val,
    trainer.precision

(not ``module.grad_cache_chunk_size``, ``data.num_workers`` and the stream retry settings: they do not change the
gradients), and the run's segments ``[{"start_step": 0, "changes": {}}, {"start_step": s, "changes": {KEY: [old,
new]}}, ...]``. A resume compares its settings with the checkpoint's before anything is built; every difference not
listed in ``resume.allow_changes`` is refused in one line that lists them all. An allowed change takes effect from
the resumed step (Lightning restores the optimiser's hyperparameters and the schedule's base learning rates from the
checkpoint; :meth:`RunRecord.on_train_start` puts the configured ones back) and is recorded as a new segment: in the
checkpoints, in ``metrics.json`` (``segments``) and in the logger's hyperparameters (``resume.segments``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.callbacks import Callback

from infembed.errors import ConfigError, UserError

log = logging.getLogger(__name__)
TRAINED_GROUPS = ("model", "loss", "module", "data")
TRAINED_KEYS = (
    "seed",
    "trainer.max_steps",
    "trainer.accumulate_grad_batches",
    "trainer.gradient_clip_val",
    "trainer.precision",
)
SAME_GRADIENTS = (
    "module.grad_cache_chunk_size",
    "data.num_workers",
    "data.stream_retries",
    "data.stream_backoff_s",
)
OPTIMIZER = "module.optimizer."


class ResumeError(UserError):
    """A resume with settings that would train something else than the checkpoint's run."""


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    if not isinstance(node, Mapping):
        return {prefix: node}
    flat = {}
    for key, value in node.items():
        flat |= flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping) else {f"{prefix}{key}": value}
    return flat


def training_settings(config: Mapping) -> dict[str, Any]:
    """The settings of a resolved plain ``config`` that decide what is trained (see the module docstring)."""
    flat = flatten(config)
    return {
        key: value
        for key, value in flat.items()
        if (key.split(".", 1)[0] in TRAINED_GROUPS or key in TRAINED_KEYS) and key not in SAME_GRADIENTS
    }


def compare(saved: Mapping, current: Mapping, allowed, source: str) -> dict[str, list]:
    """``{key: [saved, current]}`` of the allowed differences; any other difference raises :class:`ResumeError`."""
    unknown = [k for k in allowed if k not in saved and k not in current]
    if unknown:
        raise ConfigError(
            f"resume.allow_changes: {', '.join(unknown)} is not a training setting (e.g. "
            "module.optimizer.lr, loss.name, trainer.max_steps)"
        )
    changed = {k: [saved.get(k), current.get(k)] for k in sorted(saved.keys() | current.keys())}
    changed = {k: pair for k, pair in changed.items() if pair[0] != pair[1]}
    refused = [k for k in changed if k not in set(allowed)]
    if refused:
        listed = "; ".join(f"{k}: {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
        raise ResumeError(
            f"ckpt_path={source}: the resume would train something else than the checkpoint ({listed}); resume "
            f"with the checkpoint's settings, or allow them: resume.allow_changes=[{','.join(refused)}]"
        )
    return changed


def recorded_run(checkpoint: Mapping) -> dict | None:
    """The ``{"settings", "segments"}`` a checkpoint recorded (None: written before runs were recorded)."""
    return checkpoint.get("callbacks", {}).get(RunRecord.__qualname__)


def resume_segments(checkpoint: Mapping, settings: dict, allowed, source: str) -> list[dict]:
    """The segments of a run resumed from ``checkpoint`` with ``settings``: its own, then the new one."""
    record = recorded_run(checkpoint)
    if record is None:
        log.warning("%s records no run settings (an older checkpoint): the resume is not compared", source)
        history, changes = [], {}
    else:
        history, changes = record["segments"], compare(record["settings"], settings, allowed, source)
    for key, (old, new) in changes.items():
        log.warning("resume: %s changes from %r to %r at step %d", key, old, new, checkpoint["global_step"])
    return [*history, {"start_step": checkpoint["global_step"], "changes": changes}]


class RunRecord(Callback):
    """Writes the run's settings and segments into every checkpoint; applies allowed optimiser changes on resume.

    settings: :func:`training_settings` of this run; segments: ``[{"start_step": 0, "changes": {}}]`` for a fresh
    run, :func:`resume_segments` for a resumed one.
    """

    def __init__(self, settings: dict, segments: list[dict]):
        self.settings, self.segments = settings, segments

    def state_dict(self) -> dict:
        return {"settings": self.settings, "segments": self.segments}

    def load_state_dict(self, state_dict: dict) -> None:
        """Nothing to restore: the resume's segments were derived from the checkpoint before the run was built."""

    def on_train_start(self, trainer, pl_module) -> None:
        if any(key.startswith(OPTIMIZER) for key in self.segments[-1]["changes"]):
            apply_configured_optimizer(trainer, pl_module)


def apply_configured_optimizer(trainer, pl_module) -> None:
    """Replace the hyperparameters Lightning restored from the checkpoint (lr, weight decay, betas, ...) by the
    configured ones; the schedule's base rates follow: lr(step) = configured lr · factor(step)."""
    optimizer = trainer.optimizers[0]
    configured = pl_module.optimizer_factory(pl_module.parameter_groups())  # allocates no state
    for group, wanted in zip(optimizer.param_groups, configured.param_groups):
        group.update({k: v for k, v in wanted.items() if k != "params"}, initial_lr=wanted["lr"])
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            group["lr"] = base * factor(scheduler.last_epoch)


__all__ = ["ResumeError", "RunRecord", "compare", "resume_segments", "training_settings"]
