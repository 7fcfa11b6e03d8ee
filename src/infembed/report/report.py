"""``report.md`` = what is random, the configuration table with intervals, the with/without-instruction table, the
family of paired tests with raw and Holm-adjusted p, the failed runs and the figures (optionally also to W&B)."""

from __future__ import annotations

from pathlib import Path

from infembed.report.compare import (
    Comparison,
    Pair,
    best_configuration,
    checked_metric,
    compare_pairs,
    comparison_table,
    default_pairs,
    primary_metric,
)
from infembed.report.configs import Configuration, find_configuration, group_configurations
from infembed.report.plots import write_plots
from infembed.report.runs import MetricKey, ReportInputError, Run, load_runs, query_units
from infembed.report.stats import smallest_p
from infembed.report.table import (
    failed_list,
    instruction_pairs,
    instruction_table,
    markdown_table,
    table_metrics,
)
from infembed.report.wandb_table import comparison_rows, configuration_rows, log_tables

TABLE_NOTE = (
    "Cells: mean over seeds ×100 [95 % interval, seeds and queries (clusters) random: crossed bootstrap, {n} "
    "resamples; queries only for one seed] (mean change from the untrained model); ± half-width: Student t over "
    "seeds, for runs without per-query values; best mean per column in bold."
)
TESTS_NOTE = (
    "Δ = A − B ×100 over the queries every run of both has; its 95 % interval: crossed bootstrap (seeds, then "
    "queries or clusters, resampled; {n} resamples). p: with ≥ 2 runs on both sides, an exact randomisation test "
    "over runs (configuration labels flipped within seed when the seeds match, else permuted across runs), so "
    "run-to-run variation is in its null, and few runs bound it from below (the last column); with one run on a side, "
    "sign flips over queries (clusters), which covers query-level variation only. {n} random patterns where there "
    "are more; seed {seed}. **Family**: the {m} tests of this table; p (Holm): Holm's step-down adjustment over "
    "them; bold: Holm p < α = {alpha}."
)


def write_report(
    roots: list[str | Path],
    out_dir: str | Path | None = None,
    title: str | None = None,
    *,
    compare: list[tuple[str, str]] | None = None,
    baseline: str | None = None,
    metric: str | None = None,
    test_metrics: list[str] | None = None,
    permutations: int = 10000,
    seed: int = 0,
    alpha: float = 0.05,
    pair_seeds: bool = True,
    wandb_project: str | None = None,
) -> Path:
    """Read every job under ``roots``, write ``report.md`` and the figures into ``out_dir`` (default: the first root).

    ``compare``: pairs of configurations to test, each given by some of its overrides (e.g.
    ``[("loss=uni_p", "loss=uni_i")]``); without it each configuration is tested against ``baseline`` or, without
    one, against the best on ``metric`` (``STAGE/BENCHMARK/METRIC``; default: the runs' ``optimized_metric``).
    ``test_metrics``: the ``after/BENCHMARK/METRIC`` paths to test (default: every metric with per-query values);
    the tests form one family for Holm's adjustment at level ``alpha``. ``permutations``: random patterns and
    bootstrap resamples per test; ``seed`` makes them reproducible. ``pair_seeds``: pair runs by seed where the seeds
    match (False: permute runs across seeds). ``wandb_project``: also log the tables there.
    """
    runs = load_runs(roots)
    configs = group_configurations(runs)
    metrics = table_metrics(runs)
    tested = _tested_metrics(runs, metrics, test_metrics)
    out = Path(out_dir if out_dir is not None else roots[0])
    out.mkdir(parents=True, exist_ok=True)
    finished = sum(run.ok for run in runs)
    sections = [
        f"# {title or 'Sweep report'}",
        "Sources: " + ", ".join(f"`{r}`" for r in roots),
        f"{finished} of {len(runs)} runs finished, {len(configs)} configurations (runs that differ only in `seed`).",
        "## What is random\n\n" + random_units(configs, metrics, pair_seeds),
        TABLE_NOTE.format(n=permutations),
        markdown_table(configs, metrics, permutations, seed) if configs else "_No run finished._",
    ]
    for name, tasks in instruction_pairs(metrics).items():
        sections += [
            f"## {name} with and without the instruction",
            "×100, means over seeds; the means over the tasks are taken per run, then over seeds; gap = with − "
            "without.",
            instruction_table(configs, name, tasks),
        ]
    comparisons: list[Comparison] = []
    if compare or len(configs) > 1:
        pairs, chosen = _pairs(runs, configs, compare, baseline, metric)
        comparisons = compare_pairs(pairs, tested, permutations, seed, pair_seeds)
        sections += [
            "## Paired tests",
            f"Pairs: {chosen}. "
            + TESTS_NOTE.format(n=permutations, seed=seed, m=len(comparisons), alpha=alpha),
            comparison_table(comparisons, alpha)
            if comparisons
            else "_No pair shares per-query values (per_query.json)._",
        ]
    failed = failed_list(runs)
    if failed:
        sections += ["## Failed or missing runs", failed]
    plots = write_plots(configs, metrics, out, permutations, seed)
    if plots:
        sections += [
            "## Figures",
            "Each also as PDF and SVG beside the PNG.\n\n"
            + "\n".join(f"![{p.stem}]({p.name})" for p in plots),
        ]
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n")
    if wandb_project:
        log_tables(
            wandb_project,
            title or "report",
            configuration_rows(configs, metrics, permutations, seed),
            comparison_rows(comparisons),
        )
    return path


def random_units(configs: list[Configuration], metrics: list[MetricKey], pair_seeds: bool = True) -> str:
    """Which units the intervals and tests treat as random, and how many of each: seeds per configuration, queries
    and clusters per benchmark."""
    counts = sorted({len(c.runs) for c in configs})
    lines = [f"- **Seeds (runs)**: {', '.join(map(str, counts))} per configuration."]
    single = [c.label for c in configs if len(c.runs) == 1]
    if single and len(single) == len(configs):
        lines.append(
            "- Every configuration has **one run**: its intervals and tests cover only query-level variation; "
            "run-to-run variation is not measured (run more seeds: `python run.py -m seed=1,2,3 ...`)."
        )
    elif single:
        lines.append(
            f"- One run only: {'; '.join(f'`{s}`' for s in single)}. Its intervals and its tests cover only "
            "query-level variation."
        )
    several = [len(c.runs) for c in configs if len(c.runs) >= 2]
    if len(several) >= 2:
        fewest = min(several)
        lines.append(
            f"- With {fewest} runs a side, seed-level tests cannot go below p = "
            f"{smallest_p(fewest, fewest, paired=True):.3g} paired by seed, "
            f"{smallest_p(fewest, fewest, paired=False):.3g} unpaired"
            + ("" if pair_seeds else " (`--unpaired-seeds`: runs are never paired)")
            + "."
        )
    runs = [run for c in configs for run in c.runs]
    for bench in dict.fromkeys(b for b, _ in metrics):
        units: dict[tuple[int, int | None], list[str]] = {}
        for key in (k for k in metrics if k[0] == bench):
            units.setdefault(query_units(runs, key), []).append(key[1])
        if len(units) == 1:
            lines.append(f"- `{bench}`: {_units_text(*next(iter(units)))}.")
        else:
            described = [f"{', '.join(names)}: {_units_text(*u)}" for u, names in units.items()]
            lines.append(f"- `{bench}`: " + "; ".join(described) + ".")
    return "\n".join(lines)


def _units_text(queries: int, clusters: int | None) -> str:
    if not queries:
        return "no per-query values (no bootstrap or query-level test)"
    if clusters:
        return f"{queries} queries in {clusters} clusters (resampled and tested as units)"
    return f"{queries} queries (no clusters named: queries are the unit)"


def _tested_metrics(
    runs: list[Run], metrics: list[MetricKey], requested: list[str] | None
) -> list[MetricKey]:
    if not requested:
        return metrics
    finished = [run for run in runs if run.ok]
    checked = [(path, *checked_metric(finished, path, "--test-metric")) for path in requested]
    before = next((path for path, stage, _ in checked if stage != "after"), None)
    if before is not None:
        raise ReportInputError(f"--test-metric {before}: only after-training metrics are tested (after/...)")
    return [key for _, _, key in checked]


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
