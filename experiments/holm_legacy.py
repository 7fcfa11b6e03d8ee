"""Holm-adjust the paired tests of a report rendered before the report printed adjusted p-values.

The reports of experiments/loss_ablation_hard, loss_seeds_hard and birco_transfer (v1 section) list raw p-values
of query-level tests; their run logs are gone, so they cannot be re-rendered. This reads the report's test table
("| A | B | metric | queries | Δ = A − B | 95 % CI of Δ | p |"), takes all its rows as one family and prints raw
and Holm-adjusted p side by side, smallest first::

    python experiments/holm_legacy.py experiments/loss_seeds_hard/report.md [--metric synthetic/p-mrr]

``--metric`` keeps only the rows of one metric (a smaller family). The adjustment does not change what these tests
treat as random (queries only, the seeds averaged); it only handles multiplicity.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infembed.report.stats import holm

HEADER = "| A | B | metric | queries | Δ = A − B | 95 % CI of Δ | p |"


def paired_tests(report: Path) -> list[list[str]]:
    """The cells of every row of the report's test table, ``[A, B, metric, queries, Δ, CI, p]``."""
    lines = report.read_text(encoding="utf-8").splitlines()
    if HEADER not in lines:
        sys.exit(f"{report}: no paired-test table (expected the header line {HEADER!r})")
    first = lines.index(HEADER) + 2  # past the header and its |---| line
    rows = []
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 7:
            sys.exit(
                f"{report}:{number}: expected 7 cells (A, B, metric, queries, Δ, CI, p), got {len(cells)}"
            )
        rows.append(cells)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--metric", help="keep only the tests of this metric")
    args = parser.parse_args(argv)
    rows = [r for r in paired_tests(args.report) if args.metric in (None, r[2])]
    if not rows:
        sys.exit(f"{args.report}: no test of metric {args.metric!r}")
    raw = [float(r[6].lstrip("<")) for r in rows]  # "< 0.0001" is bounded: taken at the bound
    adjusted = holm(raw)
    print(f"{len(rows)} tests in the family ({args.report})")
    print("| A | B | metric | Δ | raw p | Holm p |\n|---|---|---|---:|---:|---:|")
    for i in sorted(range(len(rows)), key=raw.__getitem__):
        a, b, metric, _, delta, _, p = rows[i]
        print(f"| {a} | {b} | {metric} | {delta} | {p} | {adjusted[i]:.4f} |")


if __name__ == "__main__":
    main()
