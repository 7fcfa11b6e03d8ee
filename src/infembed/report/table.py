"""Turn configurations into markdown tables: the overrides that vary, the seeds, then each after-training metric;
and, for benchmarks evaluated with and without their instructions, one table with both side by side.

Cell format: ``mean [low, high] (Δ)``, all ×100 (p-MRR is stored as a fraction in [-1, 1], printed ×100 as in
FollowIR): the mean over seeds, its 95 % interval with seeds and queries (clusters) random (the crossed bootstrap of
``stats``; over queries alone for one seed) and the mean change from the untrained model (omitted when the runs have
no "before"). Runs without per-query values get ``mean ± half-width``, the Student t interval over seeds. The best
mean of each column is bold. Columns are ``BENCHMARK/METRIC``, the standard held-out metrics first.
"""

from __future__ import annotations

import numpy as np

from infembed.report.configs import IGNORED_KEYS, Configuration
from infembed.report.runs import MetricKey, Run, metric_keys
from infembed.results import NO_INSTRUCTION

# The pipeline's standard held-out metrics, in the order a reader expects them; other keys follow in file order.
PREFERRED_METRICS = ("ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity")


def table_metrics(runs: list[Run]) -> list[MetricKey]:
    """After-training (benchmark, metric) columns: per benchmark in file order, preferred metrics first."""
    keys = metric_keys(runs)
    rank = {m: i for i, m in enumerate(PREFERRED_METRICS)}
    benches = list(dict.fromkeys(b for b, _ in keys))
    return sorted(keys, key=lambda k: (benches.index(k[0]), rank.get(k[1], len(rank))))


def markdown_table(configs: list[Configuration], metrics: list[MetricKey], resamples: int, seed: int) -> str:
    """One row per configuration: its jobs, varying overrides, seeds (n), then one cell per metric."""
    keys = configs[0].keys if configs else []
    best = {m: max((s[0] for c in configs if (s := c.summary("after", m))), default=None) for m in metrics}
    lines = [
        "| " + " | ".join(["jobs", *keys, "seeds (n)", *(f"{'/'.join(m)} (Δ)" for m in metrics)]) + " |",
        "|---|" + "---|" * (len(keys) + 1) + "---:|" * len(metrics),
    ]
    for config in configs:
        jobs = ", ".join(run.path.name for run in config.runs)
        seeds = f"{', '.join(config.seeds)} ({len(config.runs)})"
        cells = [
            jobs,
            *(config.overrides.get(k, "–") for k in keys),
            seeds,
            *(_cell(config, m, best[m], resamples, seed) for m in metrics),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(config: Configuration, metric: MetricKey, best: float | None, resamples: int, seed: int) -> str:
    summary = config.summary("after", metric)
    if summary is None:
        return "–"
    mean, half, _ = summary
    text = f"**{100 * mean:.1f}**" if mean == best else f"{100 * mean:.1f}"
    interval = config.interval("after", metric, resamples, seed)
    if interval is not None:
        text += f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
    elif half is not None:
        text += f" ± {100 * half:.1f}"
    change = config.change(metric)
    return f"{text} ({100 * change:+.1f})" if change is not None else text


def instruction_pairs(metrics: list[MetricKey]) -> dict[str, list[str]]:
    """``{metric: [task, ...]}`` for the tasks evaluated both with and without the instruction (``X`` and
    ``X (no instruction)``, as ``benchmark.use_instruction=both`` names them)."""
    present = set(metrics)
    pairs: dict[str, list[str]] = {}
    for bench, metric in metrics:
        if not bench.endswith(NO_INSTRUCTION) and (bench + NO_INSTRUCTION, metric) in present:
            pairs.setdefault(metric, []).append(bench)
    return pairs


def instruction_table(configs: list[Configuration], metric: str, tasks: list[str]) -> str:
    """Markdown, ×100: per task "with" and "without" the instruction, then their means over the tasks and the gap
    (with − without); each value the mean over seeds, the means over tasks taken per run first."""
    head = [f"{t} {v}" for t in tasks for v in ("with", "without")]
    lines = [
        "| configuration | seeds | " + " | ".join(head) + " | mean with | mean without | gap |",
        "|---|---:|" + "---:|" * (len(head) + 3),
    ]
    for config in configs:
        with_, without = (
            _task_values(config, metric, tasks, ""),
            _task_values(config, metric, tasks, NO_INSTRUCTION),
        )
        cells = [_mean(v) for t in range(len(tasks)) for v in (with_[:, t], without[:, t])]
        means = with_.mean(axis=1), without.mean(axis=1)  # (S,) per run, over tasks
        cells += [_mean(means[0]), _mean(means[1]), _mean(means[0] - means[1], sign=True)]
        lines.append(f"| {config.label} | {len(config.runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _task_values(config: Configuration, metric: str, tasks: list[str], suffix: str) -> np.ndarray:
    """(S, tasks) after-training values, NaN where a run lacks one."""
    values = [[run.value("after", (t + suffix, metric)) for t in tasks] for run in config.runs]
    return np.array(values, dtype=np.float64)


def _mean(values: np.ndarray, sign: bool = False) -> str:
    """×100 mean over the runs that have a value ("–" when none has)."""
    return "–" if np.isnan(values).all() else f"{100 * np.nanmean(values):{'+' if sign else ''}.1f}"


def failed_list(runs: list[Run]) -> str:
    """A markdown list of the runs without metrics: their overrides, folder and reason ('' when none)."""
    lines = []
    for run in (r for r in runs if not r.ok):
        overrides = " ".join(f"{k}={v}" for k, v in run.overrides.items() if k not in IGNORED_KEYS)
        lines.append(f"- `{overrides or '(no overrides)'}` in `{run.path}`: {run.error}")
    return "\n".join(lines)
