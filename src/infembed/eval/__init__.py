"""Evaluation: trec_eval-exact metrics, p-MRR, robustness@10, benchmark readers, the evaluation loop."""

from infembed.eval.benchmarks import (
    BenchmarkDataError,
    BenchmarkWarning,
    FollowIRBenchmark,
    RetrievalBenchmark,
    load_benchmark,
)
from infembed.eval.metrics import evaluate_per_query, evaluate_run, p_mrr, p_mrr_per_query, robustness_at_10
from infembed.eval.runner import EvalResult, evaluate_benchmark, evaluate_from_config, evaluate_synthetic
from infembed.eval.sensitivity import instruction_hits, instruction_sensitivity, read_heldout

__all__ = [
    "BenchmarkDataError",
    "BenchmarkWarning",
    "EvalResult",
    "FollowIRBenchmark",
    "RetrievalBenchmark",
    "evaluate_benchmark",
    "evaluate_from_config",
    "evaluate_per_query",
    "evaluate_run",
    "evaluate_synthetic",
    "instruction_hits",
    "instruction_sensitivity",
    "load_benchmark",
    "p_mrr",
    "p_mrr_per_query",
    "read_heldout",
    "robustness_at_10",
]
