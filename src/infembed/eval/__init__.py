"""Evaluation: trec_eval-exact metrics, p-MRR, robustness@10, benchmark readers and the evaluation loop."""
from infembed.eval.benchmarks import (
    BenchmarkDataError,
    BenchmarkWarning,
    FollowIRBenchmark,
    RetrievalBenchmark,
    load_benchmark,
)
from infembed.eval.metrics import evaluate_per_query, evaluate_run, p_mrr, robustness_at_10
from infembed.eval.runner import (
    evaluate_benchmark,
    evaluate_from_config,
    evaluate_synthetic,
    format_table,
    write_metrics,
)
from infembed.eval.sensitivity import instruction_sensitivity, read_heldout

__all__ = [
    "BenchmarkDataError",
    "BenchmarkWarning",
    "FollowIRBenchmark",
    "RetrievalBenchmark",
    "evaluate_benchmark",
    "evaluate_from_config",
    "evaluate_per_query",
    "evaluate_run",
    "evaluate_synthetic",
    "format_table",
    "instruction_sensitivity",
    "load_benchmark",
    "p_mrr",
    "read_heldout",
    "robustness_at_10",
    "write_metrics",
]
