"""Entry point: compose the config, then train (with a before/after evaluation) or evaluate.

python run.py                                   # train MiniLM with multi_p_i on the synthetic data
python run.py loss=uni_p model=e5_base trainer=gpu
python run.py task=evaluate benchmark=beir benchmark.path=DIR benchmark.split=test [ckpt_path=...]
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from omegaconf import DictConfig

from infembed.config import register_resolvers

register_resolvers()
log = logging.getLogger("infembed")
# an internal error (anything but a UserError) keeps its whole traceback, not Hydra's one-line summary
os.environ.setdefault("HYDRA_FULL_ERROR", "1")


def not_a_product_tip(record: logging.LogRecord) -> bool:
    """Logging filter: drops Lightning's "💡 Tip: ... try installing ..." lines about other products."""
    return not record.getMessage().startswith("💡 Tip")


def route_lightning_logs() -> None:
    """Each message once, through Hydra's handlers (console + the job's log file), and no product tips.

    Importing lightning gives its loggers handlers of their own (and stops ``lightning.pytorch`` from propagating
    when the root logger has none yet), so every Lightning message was printed twice next to Hydra's handler.
    """
    import lightning  # noqa: F401  (the import adds those handlers; remove them after it)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(not_a_product_tip)


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from infembed.errors import UserError
    from infembed.pipeline import run_task

    route_lightning_logs()
    try:
        return run_task(cfg)
    except UserError as err:  # a user mistake: one clear line; anything else keeps its traceback
        log.error("%s: %s", type(err).__name__, err)
        sys.exit(1)


if __name__ == "__main__":
    main()
