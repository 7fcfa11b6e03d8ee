"""The report's tables as ``wandb.Table``s in a run of their own (``--wandb PROJECT``; offline under
``WANDB_MODE=offline``, then ``wandb sync``; under ``logs/wandb/`` like the training runs, or ``$WANDB_DIR``): ``report/configurations`` (one row per configuration and metric:
mean and 95 % interval, ×100) and ``report/comparisons`` (one row per test: Δ, interval, raw and Holm p, random unit).
"""

from __future__ import annotations

import os
from pathlib import Path

from infembed.report.compare import Comparison
from infembed.report.configs import Configuration
from infembed.report.runs import MetricKey

CONFIGURATION_COLUMNS = ["configuration", "seeds", "benchmark", "metric", "mean", "ci_low", "ci_high"]
COMPARISON_COLUMNS = [
    "a", "b", "benchmark", "metric", "runs_a", "runs_b", "queries", "clusters",
    "difference", "ci_low", "ci_high", "p", "p_holm", "random_unit",
]  # fmt: skip


def configuration_rows(
    configs: list[Configuration], metrics: list[MetricKey], resamples: int, seed: int
) -> list[list]:
    rows = []
    for config in configs:
        for key in metrics:
            summary = config.summary("after", key)
            if summary is None:
                continue
            mean, half, _ = summary
            bounds = config.interval("after", key, resamples, seed)
            if bounds is None:
                bounds = (mean - half, mean + half) if half is not None else (None, None)
            low, high = (None if b is None else 100 * b for b in bounds)
            rows.append([config.label, len(config.runs), key[0], key[1], 100 * mean, low, high])
    return rows


def comparison_rows(comparisons: list[Comparison]) -> list[list]:
    return [
        [c.a, c.b, c.key[0], c.key[1], c.runs[0], c.runs[1], c.queries, c.clusters, 100 * c.difference,
         100 * c.ci[0], 100 * c.ci[1], c.p_value, c.p_holm, c.test]
        for c in comparisons
    ]  # fmt: skip


def log_tables(project: str, title: str, configurations: list[list], comparisons: list[list]) -> Path:
    """Log both tables to a new W&B run of ``project`` (job type ``report``); returns the run's directory."""
    import wandb  # only when asked: importing wandb costs seconds

    root = None if os.environ.get("WANDB_DIR") else Path("logs")
    if root is not None:
        root.mkdir(exist_ok=True)
    run = wandb.init(project=project, name=title, job_type="report", dir=root)
    try:
        run.log(
            {
                "report/configurations": wandb.Table(columns=CONFIGURATION_COLUMNS, data=configurations),
                "report/comparisons": wandb.Table(columns=COMPARISON_COLUMNS, data=comparisons),
            }
        )
        return Path(run.dir).parent
    finally:
        run.finish()
