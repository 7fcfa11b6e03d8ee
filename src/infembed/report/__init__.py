"""Aggregate Hydra multiruns into a markdown table and PNG plots: ``python -m infembed.report <sweep dir(s)>``."""
from infembed.report.report import write_report
from infembed.report.runs import ReportInputError, Run, load_runs

__all__ = ["ReportInputError", "Run", "load_runs", "write_report"]
