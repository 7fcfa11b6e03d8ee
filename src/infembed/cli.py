"""The command line: ``infembed`` (``infembed-train``, ``python run.py``) is one Hydra app over the package's
``conf/``, for training and evaluation.

A user mistake prints one line and exits 1: a :class:`~infembed.errors.UserError`, an unknown config choice or a
misspelled key (with the valid options), an override Hydra cannot parse. ``INFEMBED_TRACEBACK=1`` (or
``HYDRA_FULL_ERROR=1`` set by the user) prints the full traceback instead. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from infembed.config import composition_error_line, register_resolvers

# the repository's conf/ in a source checkout (src/infembed/conf links to it), its installed copy in a wheel
CONF_DIR = Path(__file__).resolve().parent / "conf"
TRACEBACK = "INFEMBED_TRACEBACK"

register_resolvers()
log = logging.getLogger("infembed")


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


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def app(cfg: DictConfig) -> float | None:
    """One job: validate, build, train and/or evaluate (:func:`infembed.pipeline.run_task`)."""
    from infembed.errors import UserError
    from infembed.pipeline import run_task

    route_lightning_logs()
    try:
        return run_task(cfg)
    except UserError as err:  # one line, also in the job's log file; anything else keeps its traceback
        log.error("%s: %s", type(err).__name__, err)
        sys.exit(1)


def full_traceback_requested() -> bool:
    """``INFEMBED_TRACEBACK=1``, or ``HYDRA_FULL_ERROR=1`` from the user.

    Hydra's own error printing is switched off (``HYDRA_FULL_ERROR=1``, so that errors reach :func:`main`); the
    user's choice is kept in ``INFEMBED_TRACEBACK``, which child processes (DDP ranks, submitit jobs) inherit.
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1" and TRACEBACK not in os.environ:
        os.environ[TRACEBACK] = "1"
    os.environ.setdefault(TRACEBACK, "0")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    return os.environ[TRACEBACK] == "1"


def user_error_line(err: BaseException) -> str | None:
    """The one line for a user mistake, None for anything else (a bug)."""
    from infembed.errors import UserError

    if isinstance(err, UserError):
        return f"{type(err).__name__}: {err}"
    return composition_error_line(err)


def main() -> None:
    """Console entry point of ``infembed`` / ``infembed-train`` and of ``python run.py``."""
    full_traceback = full_traceback_requested()
    try:
        app()
    except Exception as err:
        line = None if full_traceback else user_error_line(err)
        if line is None:
            raise
        print(line, file=sys.stderr)
        sys.exit(1)


def export() -> None:
    """``infembed-export`` = ``python -m infembed.export``."""
    from infembed.errors import run_command
    from infembed.export import main as export_main

    run_command(export_main)


def report() -> None:
    """``infembed-report`` = ``python -m infembed.report``."""
    from infembed.report.__main__ import main as report_main

    sys.exit(report_main())


def mteb() -> None:
    """``infembed-mteb`` = ``python -m infembed.eval.mteb_adapter`` (needs the ``mteb`` extra)."""
    from infembed.errors import run_command
    from infembed.eval.mteb_adapter import main as mteb_main

    run_command(mteb_main)
