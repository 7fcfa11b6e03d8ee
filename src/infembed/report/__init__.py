"""Aggregate Hydra multiruns into a markdown report (means with 95 % intervals over seeds and queries, paired tests
at the seed level, Holm-adjusted) and figures: ``python -m infembed.report <sweep dir(s)>``."""

from infembed.report.compare import Comparison, compare
from infembed.report.configs import Configuration, group_configurations
from infembed.report.report import write_report
from infembed.report.runs import ReportInputError, Run, load_runs
from infembed.report.stats import crossed_bootstrap, holm, label_permutation_test, mean_ci, sign_flip_test

__all__ = [
    "Comparison",
    "Configuration",
    "ReportInputError",
    "Run",
    "compare",
    "group_configurations",
    "load_runs",
    "crossed_bootstrap",
    "holm",
    "label_permutation_test",
    "mean_ci",
    "sign_flip_test",
    "write_report",
]
