"""Composing the real conf/ with overrides, as Hydra does for run.py (with or without the hydra node)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from infembed.config import register_resolvers

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
register_resolvers()


def compose_train(*overrides: str, hydra_node: bool = False):
    """``conf/train.yaml`` composed with ``overrides`` (``hydra_node``: keep the launcher/sweeper settings)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_node)


def compose_in(tmp_path: Path, *overrides: str):
    """:func:`compose_train` with the run and log directories under ``tmp_path``."""
    return compose_train(f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}", *overrides)


def expand(cfg, overrides: list[str]) -> list[list[list[str]]]:
    """The job batches Hydra's BasicSweeper makes from the sweep params plus the command-line overrides."""
    sweeper = cfg.hydra.sweeper
    arguments = [f"{k}={v}" for k, v in sweeper.params.items()] + overrides
    return BasicSweeper.split_arguments(
        OverridesParser.create().parse_overrides(arguments), sweeper.max_batch_size
    )


def benchmark_spec(group: str = "beir", **values):
    """The :class:`~infembed.eval.runner.BenchmarkSpec` that ``benchmark=GROUP`` builds, with ``values`` set
    (lists and nulls as Python values; no embedding cache unless ``cache_dir`` is given)."""
    cfg = compose_train(f"benchmark={group}", *(["benchmark.root=/unused"] if group == "birco" else []))
    from infembed.pipeline import instantiate  # user errors of the target come out unwrapped, as in run.py

    return instantiate(OmegaConf.merge(cfg.benchmark, {"cache_dir": None, **values}))
