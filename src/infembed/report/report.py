"""``report.md`` = the configuration table with intervals, the paired tests, the failed runs and the plots."""

from __future__ import annotations

from pathlib import Path

from infembed.report.compare import (
    Pair,
    best_configuration,
    compare_pairs,
    comparison_table,
    default_pairs,
    primary_metric,
)
from infembed.report.configs import Configuration, find_configuration, group_configurations
from infembed.report.plots import write_plots
from infembed.report.runs import Run, load_runs
from infembed.report.table import failed_list, markdown_table, table_metrics

TABLE_NOTE = (
    "Cells: mean over seeds ×100 ± half-width of its 95 % confidence interval (Student t, n − 1 degrees of freedom; "
    "no interval for one seed) (mean change from the untrained model); best mean per column in bold."
)
TESTS_NOTE = (
    "Per-query values after training, averaged over each configuration's seeds, on the queries both have. "
    "Δ = A − B ×100; its 95 % interval: paired bootstrap over queries (percentile, {n} resamples); p: two-sided "
    "paired randomisation (sign-flip) test, {n} random sign patterns (all 2^q, exact, when 2^q ≤ {n}); seed {seed}; "
    "no correction for multiple comparisons."
)


def write_report(
    roots: list[str | Path],
    out_dir: str | Path | None = None,
    title: str | None = None,
    *,
    compare: list[tuple[str, str]] | None = None,
    baseline: str | None = None,
    metric: str | None = None,
    permutations: int = 10000,
    seed: int = 0,
) -> Path:
    """Read every job under ``roots``, write ``report.md`` and plots into ``out_dir`` (default: the first root).

    ``compare``: pairs of configurations to test, each given by some of its overrides (e.g.
    ``[("loss=uni_p", "loss=uni_i")]``); without it each configuration is tested against ``baseline`` or, without
    one, against the best on ``metric`` (``STAGE/BENCHMARK/METRIC``; default: the runs' ``optimized_metric``).
    ``permutations``: random sign flips and bootstrap resamples per test; ``seed`` makes them reproducible.
    """
    runs = load_runs(roots)
    configs = group_configurations(runs)
    metrics = table_metrics(runs)
    out = Path(out_dir if out_dir is not None else roots[0])
    out.mkdir(parents=True, exist_ok=True)
    finished = sum(run.ok for run in runs)
    sections = [
        f"# {title or 'Sweep report'}",
        "Sources: " + ", ".join(f"`{r}`" for r in roots),
        f"{finished} of {len(runs)} runs finished, {len(configs)} configurations (runs that differ only in `seed`). "
        + TABLE_NOTE,
        markdown_table(configs, metrics) if configs else "_No run finished._",
    ]
    if compare or len(configs) > 1:
        pairs, chosen = _pairs(runs, configs, compare, baseline, metric)
        comparisons = compare_pairs(pairs, metrics, permutations, seed)
        sections += [
            "## Paired tests over queries",
            f"Pairs: {chosen}. " + TESTS_NOTE.format(n=permutations, seed=seed),
            comparison_table(comparisons)
            if comparisons
            else "_No pair shares per-query values (per_query.json)._",
        ]
    failed = failed_list(runs)
    if failed:
        sections += ["## Failed or missing runs", failed]
    plots = write_plots(configs, metrics, out)
    if plots:
        sections += ["## Plots", "\n".join(f"![{p.stem}]({p.name})" for p in plots)]
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n")
    return path


def _pairs(
    runs: list[Run],
    configs: list[Configuration],
    compare: list[tuple[str, str]] | None,
    baseline: str | None,
    metric: str | None,
) -> tuple[list[Pair], str]:
    """The pairs to test and a sentence saying how they were chosen."""
    requested = [(find_configuration(configs, a), find_configuration(configs, b)) for a, b in compare or []]
    stage, key = primary_metric(runs, metric)  # checks --metric even when the pairs are given
    if requested:
        return requested, "the requested pairs"
    if baseline:
        reference = find_configuration(configs, baseline)
        return default_pairs(
            configs, reference
        ), f"each configuration against the baseline `{reference.label}`"
    reference = best_configuration(configs, stage, key)
    return default_pairs(
        configs, reference
    ), f"each configuration against the best on {stage}/{'/'.join(key)}, `{reference.label}`"
