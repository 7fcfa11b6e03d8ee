"""Progress that reads well in a terminal and in a file (a SLURM log): the one home of phase lines, bars and ETAs.

- :func:`phase`: a line when a phase starts and one when it ends, with its wall time::

      evaluation before: synthetic ...
      evaluation before: synthetic done in 00:41

- :func:`progress`: a tqdm bar in a terminal (log lines printed above it, never on its line); in a file, no bar
  (a bar's ``\\r`` redraws become one multi-kilobyte line) but a line every ``every_s`` seconds with the count, the
  elapsed time and the ETA: ``encode passages: 12/44 batch | elapsed 00:31 | ETA 01:22``;
- :func:`eta`: ``"elapsed 01:02 | ETA 01:33"`` from work done and wall time (a constant rate since the start);
- :func:`quiet_library_bars`: in a file, the bars of transformers, huggingface_hub and datasets are turned off.

Times are tqdm's ``format_interval`` (``MM:SS``, ``H:MM:SS``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger("infembed")


def terminal() -> bool:
    """True when both stdout and stderr are terminals (bars), False when either goes to a file or a pipe."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def eta(done: float, total: float, elapsed: float) -> str:
    """``"elapsed 01:02 | ETA 01:33"``: remaining = elapsed · (total − done) / done (unknown before any work)."""
    left = tqdm.format_interval(elapsed * (total - done) / done) if done > 0 else "?"
    return f"elapsed {tqdm.format_interval(elapsed)} | ETA {left}"


@contextlib.contextmanager
def phase(name: str, logger: logging.Logger = log) -> Iterator[None]:
    """Log ``"<name> ..."`` now and ``"<name> done in MM:SS"`` when the block finishes (not when it raises)."""
    logger.info("%s ...", name)
    start = time.perf_counter()
    yield
    logger.info("%s done in %s", name, tqdm.format_interval(time.perf_counter() - start))


def bar(**kwargs) -> tqdm:
    """A tqdm bar on stdout whose redraws adapt to the terminal's width (see :func:`safe_logging`)."""
    return tqdm(file=sys.stdout, dynamic_ncols=True, **kwargs)


def safe_logging() -> contextlib.AbstractContextManager:
    """While open, console log records go through ``tqdm.write``: printed above a bar, never on its line."""
    return logging_redirect_tqdm()


def progress(
    items: Iterable,
    total: int,
    desc: str,
    unit: str = "it",
    every_s: float = 30.0,
    interactive: bool | None = None,
) -> Iterator:
    """Yield ``items``, showing progress: a bar in a terminal, else a line each ``every_s`` seconds (see above)."""
    if interactive if interactive is not None else terminal():
        with safe_logging(), bar(total=total, desc=desc, unit=unit) as shown:
            for item in items:
                yield item
                shown.update()
        return
    start = last = time.perf_counter()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if now - last >= every_s and done < total:
            log.info("%s: %d/%d %s | %s", desc, done, total, unit, eta(done, total, now - start))
            last = now


def quiet_library_bars() -> None:
    """Outside a terminal, turn off the progress bars of the libraries that load models and data."""
    if terminal():
        return
    import datasets
    import huggingface_hub
    import transformers

    transformers.utils.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()
    datasets.utils.logging.disable_progress_bar()


__all__ = ["bar", "eta", "phase", "progress", "quiet_library_bars", "safe_logging", "terminal"]
