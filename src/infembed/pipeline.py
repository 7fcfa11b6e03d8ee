"""What ``run.py`` does with a composed config: train with a before/after evaluation, or evaluate."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from infembed.utils import encoder_kwargs, to_plain, validate_choice, write_json

log = logging.getLogger("infembed")

# Errors caused by the user's input or config: run.py prints their message and exits 1 without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError)

TASKS = ("train", "evaluate")


def run_task(cfg: DictConfig) -> float | None:
    validate_choice(cfg.task, TASKS, "task")
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    if cfg.task == "evaluate":
        return evaluate_task(cfg, output_dir)
    return train_task(cfg, output_dir)


def build_module(cfg: DictConfig):
    from infembed.models.module import RetrievalModule

    return RetrievalModule(
        encoder=encoder_kwargs(cfg.model),
        loss={"name": cfg.loss.name, "temperature": cfg.loss.temperature},
        kernel=cfg.kernel.backend,
        **to_plain(cfg.optimizer),
    )


def train_task(cfg: DictConfig, output_dir: Path) -> float | None:
    module = build_module(cfg)
    # losses without ℓ_I get no swap pairs: no sampling, no tokenising, no extra encoder pass
    swaps = {} if module.needs_swaps else {"num_swap_negatives": 0}
    datamodule = hydra.utils.instantiate(cfg.data, **swaps)
    datamodule.prepare_data()  # generates the synthetic data (train and held-out evaluation sets)
    metrics = {}
    if cfg.evaluation.before:
        metrics["before"] = evaluate_model(cfg, module.encoder)
    logger = hydra.utils.instantiate(cfg.logger) if cfg.get("logger") else False
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    trainer = hydra.utils.instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
    try:
        if logger:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        metrics["after"] = evaluate_model(cfg, module.encoder)
        metrics["num_parameters"] = sum(p.numel() for p in module.encoder.parameters())
        report(metrics, output_dir, logger)
    finally:
        finish_wandb()
    return metrics["after"].get(cfg.optimized_metric.split("/", 1)[-1]) if metrics.get("after") else None


def evaluate_task(cfg: DictConfig, output_dir: Path) -> float | None:
    from infembed.eval import evaluate_from_config, format_table, write_metrics

    if not has_benchmark(cfg):
        raise ValueError("task=evaluate needs a benchmark: e.g. benchmark.path=DIR benchmark.split=test")
    encoder = load_encoder(cfg)
    results = evaluate_from_config(encoder, to_plain(cfg.benchmark), str(output_dir))
    if rank_zero_only.rank == 0:
        print(format_table(results))
        write_metrics(results, output_dir / "metrics.json")
    first = next(iter(results.values()), {})
    return first.get(cfg.optimized_metric.split("/", 1)[-1])


def has_benchmark(cfg: DictConfig) -> bool:
    return cfg.get("benchmark") is not None and cfg.benchmark.get("path") is not None


def load_encoder(cfg: DictConfig):
    """The encoder of a trained checkpoint (ckpt_path) or the configured backbone (hub name or local folder)."""
    from infembed.models.encoder import BiEncoder
    from infembed.models.module import RetrievalModule

    if cfg.ckpt_path:
        if not Path(cfg.ckpt_path).is_file():
            raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
        encoder = RetrievalModule.load_from_checkpoint(cfg.ckpt_path, map_location="cpu").encoder
    else:
        encoder = BiEncoder(**encoder_kwargs(cfg.model))
    return encoder.to("cuda" if torch.cuda.is_available() else "cpu")


def evaluate_model(cfg: DictConfig, encoder) -> dict[str, float]:
    """Held-out metrics of one encoder: the configured benchmark, else the synthetic held-out set (rank 0 only)."""
    if rank_zero_only.rank != 0:
        return {}
    from infembed.eval import evaluate_from_config, evaluate_synthetic

    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = encoder.to(device)
    if has_benchmark(cfg):
        results = evaluate_from_config(encoder, to_plain(cfg.benchmark), None)
        return {f"{name}/{k}": v for name, metrics in results.items() for k, v in metrics.items()}
    if cfg.data.get("synthetic"):
        from infembed.data.datamodule import synthetic_dir

        return evaluate_synthetic(encoder, str(synthetic_dir(cfg.data.train_source)))
    log.warning("no evaluation set configured (set benchmark=... to evaluate); skipping evaluation")
    return {}


def report(metrics: dict[str, dict[str, float]], output_dir: Path, logger) -> None:
    """Print the before/after table, write metrics.json, copy the numbers into the logger's summary."""
    if rank_zero_only.rank != 0:
        return
    print(before_after_table(metrics))
    write_json(output_dir / "metrics.json", metrics)
    log.info("metrics written to %s", output_dir / "metrics.json")
    if logger:
        stages = {stage: values for stage, values in metrics.items() if isinstance(values, dict)}
        flat = {f"eval/{stage}/{k}": v for stage, values in stages.items() for k, v in values.items()}
        logger.log_metrics(flat)
        if hasattr(logger, "experiment") and hasattr(logger.experiment, "summary"):
            logger.experiment.summary.update(flat)


def before_after_table(metrics: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per metric, columns before / after / change, values ×100."""
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    names = list(dict.fromkeys([*before, *after]))
    lines = ["| metric (×100) | before | after | change |", "|---|---:|---:|---:|"]
    for name in names:
        b, a = before.get(name), after.get(name)
        change = f"{100 * (a - b):+.1f}" if a is not None and b is not None else ""
        fmt = lambda v: f"{100 * v:.1f}" if v is not None else "–"  # noqa: E731
        lines.append(f"| {name} | {fmt(b)} | {fmt(a)} | {change} |")
    return "\n".join(lines)


def finish_wandb() -> None:
    """Close the W&B run whatever happened (sweeps run many jobs in one process)."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()
