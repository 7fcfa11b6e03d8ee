"""What ``run.py`` does with a composed config, read top to bottom.

Train::

    validate(cfg)                                   config mistakes fail here, before anything is loaded
    check_hub_access(cfg)                           an unreachable hub model or dataset fails here too
    resume  = resume_from(cfg)                      ckpt_path=last → newest readable checkpoint; changed settings
                                                    refused (callbacks/resume.py)
    encoder = instantiate(model)                    owns the text spec (templates, lengths, tokenizer)
    loss    = instantiate(loss)                     knows its kernel and whether it needs swap negatives
    data    = instantiate(data)(text=encoder.text, needs_swaps=loss.needs_swaps, fusion=encoder.fusion)
    module  = instantiate(module)(encoder, loss)    optimiser and schedule are partials from the config
    trainer = instantiate(trainer)(logger, callbacks)   before any data is generated or evaluated
    prepare data → evaluate "before" → fit → evaluate "after" → write_results → the optimised metric

Build data (``task=build_data``): the generator of ``generator``, the encoder of ``ckpt_path`` or the preset, then
``infembed.build.builder.build_data`` writes the rows and summary.json (no metrics).

Evaluate: the encoder of ``ckpt_path`` (text overrides from the command line applied) or of the model preset,
evaluated on ``benchmark`` and written by the same writer under ``after``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from infembed.callbacks.resume import RunRecord, resume_segments, training_settings
from infembed.checkpoint_files import newest_loadable, read_checkpoint
from infembed.errors import ConfigError, UserError
from infembed.preflight import check_hub_access, validate
from infembed.results import lookup, results_table, write_results
from infembed.text import TextSpec

log = logging.getLogger("infembed")

TEXT_FIELDS = tuple(f for f in TextSpec.__dataclass_fields__ if f != "tokenizer")


def instantiate(node: DictConfig, **kwargs):
    """``hydra.utils.instantiate`` that lets a user error raised by the target through unwrapped."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def run_task(cfg: DictConfig) -> float | None:
    validate(cfg)
    check_hub_access(cfg)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    tasks = {"train": train_task, "evaluate": evaluate_task, "build_data": build_task}
    payload = tasks[cfg.task](cfg, output_dir)
    return optimized_value(cfg, payload)


def train_task(cfg: DictConfig, output_dir: Path) -> dict | None:
    ckpt_path, record = resume_from(cfg)
    encoder = instantiate(cfg.model)
    loss = instantiate(cfg.loss)
    datamodule = instantiate(cfg.data, _partial_=True)(
        text=encoder.text, needs_swaps=loss.needs_swaps, fusion=encoder.fusion
    )
    module = instantiate(cfg.module, _partial_=True)(encoder=encoder, loss=loss)
    logger = build_logger(cfg, output_dir)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + [record]
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
    try:
        datamodule.prepare_data()  # generates the synthetic data (train and held-out evaluation sets)
        stages = {}
        if cfg.evaluation.before:
            stages["before"] = evaluate(cfg, encoder, datamodule.heldout_dir)
        if logger:
            logger.log_hyperparams(logged_config(cfg, record.segments))
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        stages["after"] = evaluate(cfg, encoder, datamodule.heldout_dir)
        payload = report(cfg, output_dir, stages, encoder, logger, record.segments)
        log_artifacts(logger, output_dir, trainer.checkpoint_callback)
        return payload
    finally:
        finish_wandb()


def logged_config(cfg: DictConfig, segments: list[dict]) -> dict:
    """The resolved config with the run's segments under ``resume.segments`` (what each segment trained with)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config["resume"] = {**(config.get("resume") or {}), "segments": segments}
    return config


def resume_from(cfg: DictConfig) -> tuple[str | None, RunRecord]:
    """The checkpoint ``trainer.fit`` resumes from and the run's record (settings and segments).

    ``ckpt_path=last`` is the newest checkpoint of the run's checkpoint directory that reads (a damaged newer one is
    skipped with a warning saying why; none: a fresh start, what a first SLURM attempt sees). The checkpoint's
    settings are compared with this run's (:func:`infembed.callbacks.resume.resume_segments`).
    """
    settings = training_settings(OmegaConf.to_container(cfg, resolve=True))
    path = cfg.ckpt_path
    if path == "last" and cfg.get("callbacks") and cfg.callbacks.get("checkpoint"):
        found, skipped = newest_loadable(cfg.callbacks.checkpoint.dirpath)
        for reason in skipped:
            log.warning("ckpt_path=last: skipped %s", reason)
        if found is None:
            log.info(
                "ckpt_path=last: no readable checkpoint in %s, starting from step 0",
                cfg.callbacks.checkpoint.dirpath,
            )
            return None, RunRecord(settings, [{"start_step": 0, "changes": {}}])
        path = str(found)
        log.info("ckpt_path=last: resuming from %s", path)
    if path is None or path in ("last", "hpc"):
        return path, RunRecord(settings, [{"start_step": 0, "changes": {}}])
    checkpoint = read_checkpoint(path, mmap=True)
    segments = resume_segments(
        checkpoint, settings, list(OmegaConf.select(cfg, "resume.allow_changes", default=None) or []), path
    )
    return path, RunRecord(settings, segments)


def build_logger(cfg: DictConfig, output_dir: Path):
    """The configured Lightning logger (False without one); an ``id`` or ``name`` key left null (W&B) is filled from
    the Hydra job: the id hashes the job's output directory, which a requeued or resumed job shares, so W&B
    continues the same run (``resume: allow``)."""
    if not cfg.get("logger"):
        return False
    job = {"id": job_run_id(output_dir), "name": job_run_name(cfg, output_dir)}
    return instantiate(
        cfg.logger, **{k: v for k, v in job.items() if k in cfg.logger and cfg.logger[k] is None}
    )


def job_run_id(output_dir: Path) -> str:
    """12 hex digits of blake2b(absolute output directory): stable across requeues, distinct between jobs."""
    return hashlib.blake2b(str(output_dir.resolve()).encode(), digest_size=6).hexdigest()


def job_run_name(cfg: DictConfig, output_dir: Path) -> str:
    """``"<experiment_name or task>/<job dir name> <overrides>"``, e.g. ``"loss_ablation/3 loss=uni_p"`` or
    ``"train/2026-01-31_12-00-00 model=e5_base"`` (overrides as in ``hydra.job.override_dirname``)."""
    overrides = HydraConfig.get().job.override_dirname if HydraConfig.initialized() else ""
    return f"{cfg.experiment_name or cfg.task}/{output_dir.name} {overrides}".strip()


def log_artifacts(logger, output_dir: Path, checkpoint) -> None:
    """W&B only, rank 0: ``results-<run id>`` (metrics.json, per_query.json, clusters.json if any) and
    ``model-<run id>`` (the last checkpoint as ``model.ckpt``, W&B's naming for Lightning checkpoints). Offline runs
    keep them for ``wandb sync``; a resumed run adds a new version of each."""
    if rank_zero_only.rank != 0 or not isinstance(logger, WandbLogger):
        return
    import wandb

    run = logger.experiment
    results = wandb.Artifact(f"results-{run.id}", type="results")
    for name in ("metrics.json", "per_query.json", "clusters.json"):
        if (output_dir / name).is_file():
            results.add_file(str(output_dir / name))
    run.log_artifact(results)
    if checkpoint is not None and checkpoint.last_model_path:
        model = wandb.Artifact(f"model-{run.id}", type="model")
        model.add_file(checkpoint.last_model_path, name="model.ckpt")
        run.log_artifact(model)


def evaluate_task(cfg: DictConfig, output_dir: Path) -> dict | None:
    if not has_benchmark(cfg):
        raise ConfigError("task=evaluate needs a benchmark: e.g. benchmark.path=DIR benchmark.split=test")
    encoder = load_encoder(cfg)
    return report(cfg, output_dir, {"after": evaluate(cfg, encoder, None, output_dir)}, encoder, None)


def build_task(cfg: DictConfig, output_dir: Path) -> None:
    """Rows from a BEIR-style folder (or re-mined rows): mining encoder = ``ckpt_path`` or the model preset."""
    from infembed.build.builder import build_data

    generator = instantiate(cfg.generator)
    encoder = load_encoder(cfg).to("cuda" if torch.cuda.is_available() else "cpu")
    prompts, build = (OmegaConf.to_container(node, resolve=True) for node in (cfg.prompts, cfg.build))
    build_data(encoder, generator, prompts, output_dir, **build)
    return None


def has_benchmark(cfg: DictConfig) -> bool:
    return cfg.get("benchmark") is not None and cfg.benchmark.get("path") is not None


def load_encoder(cfg: DictConfig):
    """The encoder of ``ckpt_path`` (text settings given on the command line applied) or of the model preset.

    With ``evaluation.wise_ft=α`` the checkpoint's weights are interpolated with the preset's untrained ones.
    """
    if not cfg.ckpt_path:
        return instantiate(cfg.model)
    from infembed.models.checkpoint import load_encoder as load_checkpoint

    encoder = load_checkpoint(cfg.ckpt_path, **checkpoint_text_changes(cfg))
    if cfg.evaluation.get("wise_ft") is None:
        return encoder
    from infembed.models.weight_ensemble import interpolate

    return interpolate(encoder, instantiate(cfg.model), cfg.evaluation.wise_ft)


def checkpoint_text_changes(cfg: DictConfig) -> dict:
    """``model.<text field>=...`` overrides apply to a loaded checkpoint; any other ``model.*`` key is refused."""
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides if o.lstrip("+~").startswith("model.")]
    refused = [k for k in keys if k.split(".", 1)[1] not in TEXT_FIELDS]
    if refused:
        raise ConfigError(
            f"{', '.join(refused)}: a checkpoint's model is fixed (ckpt_path={cfg.ckpt_path}); only its text "
            f"settings can change at evaluation: {', '.join('model.' + f for f in TEXT_FIELDS)}"
        )
    return {k.split(".", 1)[1]: cfg.model[k.split(".", 1)[1]] for k in keys}


def evaluate(cfg: DictConfig, encoder, heldout_dir: Path | None, runs_dir: Path | None = None) -> dict:
    """``{benchmark: EvalResult}``: the synthetic held-out topics (when training on them) and ``benchmark``.

    Rank 0 only: under DDP the other ranks return {} and write nothing.
    """
    if rank_zero_only.rank != 0:
        return {}
    from infembed.eval.runner import SYNTHETIC, evaluate_from_config, evaluate_synthetic

    encoder = encoder.to("cuda" if torch.cuda.is_available() else "cpu")
    rows = {}
    if heldout_dir is not None:
        rows[SYNTHETIC] = evaluate_synthetic(encoder, heldout_dir, cfg.evaluation.batch_size)
    if has_benchmark(cfg):
        rows |= evaluate_from_config(encoder, instantiate(cfg.benchmark), runs_dir)
    if not rows:
        log.warning("no evaluation set configured (set benchmark.path=... to evaluate); skipping evaluation")
    return rows


def report(
    cfg: DictConfig, output_dir: Path, stages: dict, encoder, logger, segments: list | None = None
) -> dict | None:
    """Print the table, write metrics.json + per_query.json, copy the numbers into the logger (rank 0)."""
    if rank_zero_only.rank != 0:
        return None
    num_parameters = sum(p.numel() for p in encoder.parameters())
    config = OmegaConf.to_container(cfg, resolve=True)
    payload = write_results(output_dir, cfg.task, stages, num_parameters, config, segments)
    print(results_table(payload))
    log.info("results written to %s", output_dir / "metrics.json")
    if logger:
        flat = {f"eval/{s}/{b}/{m}": v for s in stages for b, ms in payload[s].items() for m, v in ms.items()}
        logger.log_metrics(flat)
        if hasattr(logger, "experiment") and hasattr(logger.experiment, "summary"):
            logger.experiment.summary.update(flat)
    return payload


def optimized_value(cfg: DictConfig, payload: dict | None) -> float | None:
    """The value at ``optimized_metric`` for Hydra sweepers; a path missing from the results is an error in a
    multirun (a sweeper would optimise nothing) and a warning in a single run."""
    if payload is None or not cfg.get("optimized_metric"):
        return None
    try:
        return lookup(payload, cfg.optimized_metric)
    except ConfigError as err:
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        log.warning("%s", err)
        return None


def finish_wandb() -> None:
    """Close the W&B run whatever happened (sweeps run many jobs in one process)."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()
