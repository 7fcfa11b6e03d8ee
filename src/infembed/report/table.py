"""Turn runs into one markdown table: the overrides that vary, then each after-training metric with its change.

Cell format: ``after (±change)``, both ×100 (p-MRR is stored as a fraction in [-1, 1], printed ×100 as in
FollowIR); the best finished value of each metric is bold. Rows are sorted by the varying overrides, model first,
then global batch size, then loss, then the rest; values sort numerically when they are numbers, otherwise in the
order the sweep produced them (so losses keep the order of their sweep file).
"""
from __future__ import annotations

from infembed.report.runs import Run

# The pipeline's standard held-out metrics, in the order a reader expects them; other keys follow in file order.
PREFERRED_METRICS = ("ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity")
PREFERRED_KEYS = ("model", "data.global_batch_size", "loss")
# Overrides that select how a sweep runs, not what it measures.
IGNORED_KEYS = frozenset({"sweep", "launcher", "hydra.sweep.dir", "hydra.run.dir"})


def varying_keys(runs: list[Run]) -> list[str]:
    """Override keys whose value differs between runs (missing counts as a value), preferred keys first."""
    keys = list(dict.fromkeys(k for run in runs for k in run.overrides if k not in IGNORED_KEYS))
    varying = [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]
    return sorted(varying, key=lambda k: (PREFERRED_KEYS.index(k) if k in PREFERRED_KEYS else len(PREFERRED_KEYS)))


def metric_names(runs: list[Run]) -> list[str]:
    names = list(dict.fromkeys(k for run in runs if run.ok for k in run.metrics["after"]))
    preferred = [m for m in PREFERRED_METRICS if m in names]
    return preferred + [m for m in names if m not in preferred]


def sort_runs(runs: list[Run], keys: list[str]) -> list[Run]:
    """Sort by each varying key in turn: numbers numerically, other values by first appearance."""
    first_seen = {k: list(dict.fromkeys(run.overrides.get(k, "") for run in runs)) for k in keys}

    def value_key(run: Run, key: str) -> tuple:
        value = run.overrides.get(key, "")
        number = _as_number(value)
        return (0, number, 0) if number is not None else (1, 0.0, first_seen[key].index(value))

    return sorted(runs, key=lambda run: tuple(value_key(run, k) for k in keys))


def _as_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def markdown_table(runs: list[Run]) -> str:
    """One row per finished run (``job`` = its directory name); failed or never-started runs are listed apart."""
    keys = varying_keys(runs)
    finished = sort_runs([run for run in runs if run.ok], keys)
    metrics = metric_names(finished)
    best = {m: max((r.metrics["after"].get(m, float("-inf")) for r in finished), default=None) for m in metrics}
    lines = [
        "| " + " | ".join(["job", *keys, *(f"{m} (Δ)" for m in metrics)]) + " |",
        "|---|" + "---|" * len(keys) + "---:|" * len(metrics),
    ]
    for run in finished:
        cells = [run.path.name, *(run.overrides.get(k, "–") for k in keys), *(_cell(run, m, best[m]) for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(run: Run, metric: str, best: float | None) -> str:
    after = run.metrics["after"].get(metric)
    if after is None:
        return "–"
    before = run.metrics.get("before", {}).get(metric)
    text = f"{100 * after:.1f}"
    if after == best:
        text = f"**{text}**"
    return f"{text} ({100 * (after - before):+.1f})" if before is not None else text


def failed_list(runs: list[Run]) -> str:
    """A markdown list of the runs without metrics: their overrides, folder and reason ('' when none)."""
    lines = []
    for run in (r for r in runs if not r.ok):
        overrides = " ".join(f"{k}={v}" for k, v in run.overrides.items() if k not in IGNORED_KEYS)
        lines.append(f"- `{overrides or '(no overrides)'}` in `{run.path}`: {run.error}")
    return "\n".join(lines)
