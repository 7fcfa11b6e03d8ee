"""CLI: ``python -m infembed.report DIR [DIR ...] [--out DIR] [--title TEXT] [--compare A B]... [--baseline A]
[--metric after/synthetic/p-mrr] [--test-metric after/synthetic/p-mrr]... [--alpha 0.05] [--permutations 10000]
[--seed 0] [--unpaired-seeds] [--wandb PROJECT]``.

A and B are configurations given by some of their overrides, e.g. ``loss=uni_p`` or ``"loss=uni_p model=minilm"``.
"""

from __future__ import annotations

import argparse
import sys

from infembed.report.report import write_report
from infembed.report.runs import ReportInputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infembed.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dirs", nargs="+", help="Hydra multirun (or single job) directories")
    parser.add_argument(
        "--out", default=None, help="where report.md and the plots go (default: the first dir)"
    )
    parser.add_argument("--title", default=None, help="heading of report.md")
    parser.add_argument(
        "--compare",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help="test configuration A against B (repeatable); default: each against the baseline/best",
    )
    parser.add_argument("--baseline", default=None, help="configuration every other one is tested against")
    parser.add_argument(
        "--metric",
        default=None,
        help="STAGE/BENCHMARK/METRIC that picks the best configuration (default: optimized_metric)",
    )
    parser.add_argument(
        "--test-metric",
        action="append",
        metavar="PATH",
        help="after/BENCHMARK/METRIC to test (repeatable; default: every metric with per-query values)",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="family-wise level of the Holm adjustment (default 0.05)"
    )
    parser.add_argument(
        "--unpaired-seeds",
        action="store_true",
        help="never pair runs by seed: permute runs across seeds (decide before looking at the results)",
    )
    parser.add_argument(
        "--wandb",
        default=None,
        metavar="PROJECT",
        help="also log the tables to W&B as wandb.Table (a run of job type 'report'; offline with WANDB_MODE)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=10000,
        help="random sign flips and bootstrap resamples per test (default 10000)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the sign flips and resamples (default 0)"
    )
    args = parser.parse_args(argv)
    if args.permutations < 1:
        parser.error("--permutations must be at least 1")
    if not 0 < args.alpha < 1:
        parser.error("--alpha must be between 0 and 1")
    try:
        path = write_report(
            args.dirs,
            args.out,
            args.title,
            compare=args.compare,
            baseline=args.baseline,
            metric=args.metric,
            test_metrics=args.test_metric,
            alpha=args.alpha,
            pair_seeds=not args.unpaired_seeds,
            wandb_project=args.wandb,
            permutations=args.permutations,
            seed=args.seed,
        )
    except ReportInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path.read_text())
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
