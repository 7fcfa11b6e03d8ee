"""Turn configurations into one markdown table: the overrides that vary, the seeds, then each after-training metric.

Cell format: ``mean ± half-width (Δ)``, all ×100 (p-MRR is stored as a fraction in [-1, 1], printed ×100 as in
FollowIR): the mean over seeds, the half-width of its 95 % Student t interval (omitted for one seed) and the mean
change from the untrained model (omitted when the runs have no "before"). The best mean of each column is bold.
Columns are ``BENCHMARK/METRIC``, the standard held-out metrics first.
"""

from __future__ import annotations

from infembed.report.configs import IGNORED_KEYS, Configuration
from infembed.report.runs import MetricKey, Run, metric_keys

# The pipeline's standard held-out metrics, in the order a reader expects them; other keys follow in file order.
PREFERRED_METRICS = ("ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity")


def table_metrics(runs: list[Run]) -> list[MetricKey]:
    """After-training (benchmark, metric) columns: per benchmark in file order, preferred metrics first."""
    keys = metric_keys(runs)
    rank = {m: i for i, m in enumerate(PREFERRED_METRICS)}
    benches = list(dict.fromkeys(b for b, _ in keys))
    return sorted(keys, key=lambda k: (benches.index(k[0]), rank.get(k[1], len(rank))))


def markdown_table(configs: list[Configuration], metrics: list[MetricKey]) -> str:
    """One row per configuration: its jobs, varying overrides, seeds (n), then one cell per metric."""
    keys = configs[0].keys if configs else []
    best = {
        m: max((s[0] for c in configs if (s := c.summary("after", m)) is not None), default=None)
        for m in metrics
    }
    lines = [
        "| " + " | ".join(["jobs", *keys, "seeds (n)", *(f"{'/'.join(m)} (Δ)" for m in metrics)]) + " |",
        "|---|" + "---|" * (len(keys) + 1) + "---:|" * len(metrics),
    ]
    for config in configs:
        jobs = ", ".join(run.path.name for run in config.runs)
        seeds = f"{', '.join(run.seed for run in config.runs)} ({len(config.runs)})"
        cells = [
            jobs,
            *(config.overrides.get(k, "–") for k in keys),
            seeds,
            *(_cell(config, m, best[m]) for m in metrics),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(config: Configuration, metric: MetricKey, best: float | None) -> str:
    summary = config.summary("after", metric)
    if summary is None:
        return "–"
    mean, half, _ = summary
    text = f"**{100 * mean:.1f}**" if mean == best else f"{100 * mean:.1f}"
    if half is not None:
        text += f" ± {100 * half:.1f}"
    change = config.change(metric)
    return f"{text} ({100 * change:+.1f})" if change is not None else text


def failed_list(runs: list[Run]) -> str:
    """A markdown list of the runs without metrics: their overrides, folder and reason ('' when none)."""
    lines = []
    for run in (r for r in runs if not r.ok):
        overrides = " ".join(f"{k}={v}" for k, v in run.overrides.items() if k not in IGNORED_KEYS)
        lines.append(f"- `{overrides or '(no overrides)'}` in `{run.path}`: {run.error}")
    return "\n".join(lines)
