"""Aggregate Hydra multiruns into a markdown report (means and 95 % intervals over seeds, paired tests over
queries) and PNG plots: ``python -m infembed.report <sweep dir(s)>``."""

from infembed.report.compare import Comparison, compare
from infembed.report.configs import Configuration, group_configurations
from infembed.report.report import write_report
from infembed.report.runs import ReportInputError, Run, load_runs
from infembed.report.stats import mean_ci, paired_bootstrap_ci, sign_flip_test

__all__ = [
    "Comparison",
    "Configuration",
    "ReportInputError",
    "Run",
    "compare",
    "group_configurations",
    "load_runs",
    "mean_ci",
    "paired_bootstrap_ci",
    "sign_flip_test",
    "write_report",
]
