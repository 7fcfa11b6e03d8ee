"""Entry point: compose the config, then train (with a before/after evaluation) or evaluate.

    python run.py                                   # train MiniLM with multi_p_i on the synthetic data
    python run.py loss=uni_p model=e5_base trainer=gpu
    python run.py task=evaluate benchmark=beir benchmark.path=DIR benchmark.split=test [ckpt_path=...]
"""
from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from infembed.utils import register_resolvers

register_resolvers()
log = logging.getLogger("infembed")


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from infembed.errors import UserError
    from infembed.pipeline import run_task

    try:
        return run_task(cfg)
    except UserError as err:  # a user mistake: one clear line; anything else keeps its traceback
        log.error("%s: %s", type(err).__name__, err)
        sys.exit(1)


if __name__ == "__main__":
    main()
