"""PNG plots of a sweep (matplotlib, Agg backend): the metrics per loss, vs global batch size, vs model size.

Each plot is drawn only when its x axis varies across the finished runs. Every other varying override becomes a
separate series, so a full grid gives one line per (loss, model) in the batch plot, and so on. Values ×100.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from infembed.report.runs import Run  # noqa: E402
from infembed.report.table import sort_runs, varying_keys  # noqa: E402

PLOT_METRICS = ("p-mrr", "ndcg@10")
LABELS = {"p-mrr": "p-MRR (×100)", "ndcg@10": "nDCG@10 (×100)"}


def loss_of(run: Run) -> str:
    return run.choices.get("loss") or run.overrides.get("loss") or str(run.config.get("loss", {}).get("name"))


def batch_of(run: Run) -> float | None:
    value = run.overrides.get("data.global_batch_size", run.config.get("data", {}).get("global_batch_size"))
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def model_of(run: Run) -> str:
    return run.choices.get("model") or run.overrides.get("model") or "?"


def write_plots(runs: list[Run], out_dir: Path) -> list[Path]:
    """Draw every plot whose axis varies; returns the written PNG paths."""
    finished = [run for run in runs if run.ok]
    keys = varying_keys(finished)
    finished = sort_runs(finished, keys)
    metrics = [m for m in PLOT_METRICS if any(m in run.metrics["after"] for run in finished)]
    written = []
    if metrics and len({loss_of(r) for r in finished}) > 1:
        written.append(_bar_plot(finished, keys, metrics, out_dir / "metrics_by_loss.png"))
    if metrics and len({batch_of(r) for r in finished}) > 1:
        written.append(_line_plot(finished, keys, metrics, "data.global_batch_size", out_dir / "metrics_vs_batch.png"))
    if metrics and len({model_of(r) for r in finished}) > 1:
        written.append(_line_plot(finished, keys, metrics, "model", out_dir / "metrics_vs_model.png"))
    return written


def _series(runs: list[Run], keys: list[str], x_key: str) -> dict[str, list[Run]]:
    """Group runs by the values of the varying keys other than ``x_key`` (one series per group)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        label = ", ".join(f"{k}={run.overrides.get(k, '–')}" for k in keys if k != x_key) or "all runs"
        groups.setdefault(label, []).append(run)
    return groups


def _bar_plot(runs: list[Run], keys: list[str], metrics: list[str], path: Path) -> Path:
    """Grouped bars: x = loss, one bar per series; a dashed line marks the untrained model's mean value."""
    losses = list(dict.fromkeys(loss_of(r) for r in runs))
    groups = _series(runs, keys, "loss")
    width = 0.8 / len(groups)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(6.0, 0.7 * len(losses) + 2), 3.2 * len(metrics)),
                             squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        for g, (label, members) in enumerate(groups.items()):
            by_loss = {loss_of(r): r.metrics["after"].get(metric) for r in members}
            xs = [i + g * width for i, loss in enumerate(losses) if by_loss.get(loss) is not None]
            ys = [100 * by_loss[loss] for loss in losses if by_loss.get(loss) is not None]
            ax.bar(xs, ys, width=width, label=label if len(groups) > 1 else None)
        before = [r.metrics.get("before", {}).get(metric) for r in runs]
        before = [b for b in before if b is not None]
        if before:
            ax.axhline(100 * sum(before) / len(before), color="black", linestyle="--", linewidth=1, label="untrained")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(losses))], losses, rotation=30, ha="right")
        ax.set_ylabel(LABELS[metric])
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def _line_plot(runs: list[Run], keys: list[str], metrics: list[str], x_key: str, path: Path) -> Path:
    """Lines: x = global batch (log2) or model (by parameter count when metrics.json has it, else in sweep order)."""
    x_of = _x_axis(runs, x_key)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, members in _series(runs, keys, x_key).items():
            points = sorted((x_of(r), 100 * r.metrics["after"][metric]) for r in members if metric in r.metrics["after"])
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        _format_x(ax, runs, x_key)
        ax.set_ylabel(LABELS[metric])
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def _x_axis(runs: list[Run], x_key: str):
    if x_key == "data.global_batch_size":
        return batch_of
    if all("num_parameters" in r.metrics for r in runs):
        return lambda r: float(r.metrics["num_parameters"])
    order = list(dict.fromkeys(model_of(r) for r in runs))
    return lambda r: float(order.index(model_of(r)))


def _format_x(ax, runs: list[Run], x_key: str) -> None:
    if x_key == "data.global_batch_size":
        ax.set_xscale("log", base=2)
        ax.set_xlabel("global batch size (rows)")
    elif all("num_parameters" in r.metrics for r in runs):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
    else:
        order = list(dict.fromkeys(model_of(r) for r in runs))
        ax.set_xticks(range(len(order)), order)
        ax.set_xlabel("model (no parameter count in metrics.json: sweep order)")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
