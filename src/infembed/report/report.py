"""``report.md`` = the configuration table with intervals, the paired tests, the failed runs and the plots."""
from __future__ import annotations

from pathlib import Path

from infembed.report.compare import (
    best_configuration,
    compare_pairs,
    comparison_table,
    default_pairs,
    primary_metric,
)
from infembed.report.configs import find_configuration, group_configurations
from infembed.report.plots import write_plots
from infembed.report.runs import load_runs
from infembed.report.table import failed_list, markdown_table, table_metrics


def write_report(roots: list[str | Path], out_dir: str | Path | None = None, title: str | None = None, *,
                 compare: list[tuple[str, str]] | None = None, baseline: str | None = None,
                 metric: str | None = None, permutations: int = 10000, seed: int = 0) -> Path:
    """Read every job under ``roots``, write ``report.md`` and plots into ``out_dir`` (default: the first root).

    ``compare``: pairs of configuration labels to test (e.g. ``[("loss=uni_p", "loss=uni_i")]``); without it each
    configuration is tested against ``baseline`` or, without one, against the best on ``metric``
    (``STAGE/BENCHMARK/METRIC``; default: the runs' ``optimized_metric``). ``permutations``: random sign flips
    and bootstrap resamples per test; ``seed`` makes them reproducible.
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
        "Cells: mean over seeds ×100 ± half-width of its 95 % confidence interval (Student t, n − 1 degrees of "
        "freedom; no interval for one seed) (mean change from the untrained model); best mean per column in bold.",
        markdown_table(configs, metrics) if configs else "_No run finished._",
    ]
    stage, key = primary_metric(runs, metric) if configs else ("after", None)
    if compare or len(configs) > 1:
        if compare:
            pairs = [(find_configuration(configs, a), find_configuration(configs, b)) for a, b in compare]
            chosen = "the requested pairs"
        else:
            reference = find_configuration(configs, baseline) if baseline else best_configuration(configs, stage, key)
            pairs = default_pairs(configs, reference)
            chosen = (f"each configuration against the baseline `{reference.label}`" if baseline else
                      f"each configuration against the best on {stage}/{'/'.join(key)}, `{reference.label}`")
        comparisons = compare_pairs(pairs, metrics, permutations, seed)
        sections += [
            "## Paired tests over queries",
            f"Pairs: {chosen}. Per-query values after training, averaged over each configuration's seeds, on the "
            f"queries both have. Δ = A − B ×100; its 95 % interval: paired bootstrap over queries (percentile, "
            f"{permutations} resamples); p: two-sided paired randomisation (sign-flip) test, {permutations} random "
            f"sign patterns (all 2^n when 2^n ≤ {permutations}: exact); seed {seed}; no correction for multiple "
            "comparisons.",
            comparison_table(comparisons) if comparisons else "_No pair shares per-query values (per_query.json)._",
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
