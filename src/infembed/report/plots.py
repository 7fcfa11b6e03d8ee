"""PNG plots of a sweep (matplotlib, Agg backend): the metrics per loss, vs global batch size, vs model size.

One point per configuration: the mean over its seeds, with the 95 % Student t interval as an error bar (none for a
single seed). A series keeps its colour in every panel. Each plot is drawn only when its x axis varies across the configurations; every other varying
override becomes a separate series, so a full grid gives one line per (loss, model) in the batch plot, and so on.
One panel per benchmark and metric (p-MRR and nDCG@10). Values ×100.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from infembed.report.configs import Configuration
from infembed.report.runs import MetricKey

PLOT_METRICS = ("p-mrr", "ndcg@10")
LABELS = {"p-mrr": "p-MRR (×100)", "ndcg@10": "nDCG@10 (×100)"}


def loss_of(config: Configuration) -> str:
    run = config.runs[0]
    return run.overrides.get("loss") or run.choices.get("loss") or str(run.config.get("loss", {}).get("name"))


def batch_of(config: Configuration) -> float | None:
    run = config.runs[0]
    value = run.overrides.get("data.global_batch_size", run.config.get("data", {}).get("global_batch_size"))
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def model_of(config: Configuration) -> str:
    run = config.runs[0]
    return run.choices.get("model") or run.overrides.get("model") or "?"


def write_plots(configs: list[Configuration], metrics: list[MetricKey], out_dir: Path) -> list[Path]:
    """Draw every plot whose axis varies; returns the written PNG paths."""
    panels = [m for m in metrics if m[1] in PLOT_METRICS]
    if not panels:
        return []
    written = []
    if len({loss_of(c) for c in configs}) > 1:
        written.append(_bar_plot(configs, panels, out_dir / "metrics_by_loss.png"))
    if len({batch_of(c) for c in configs}) > 1:
        written.append(
            _line_plot(configs, panels, "data.global_batch_size", out_dir / "metrics_vs_batch.png")
        )
    if len({model_of(c) for c in configs}) > 1:
        written.append(_line_plot(configs, panels, "model", out_dir / "metrics_vs_model.png"))
    return written


def _series(configs: list[Configuration], x_key: str) -> dict[str, list[Configuration]]:
    """Group configurations by the values of the varying keys other than ``x_key`` (one series per group)."""
    groups: dict[str, list[Configuration]] = {}
    for config in configs:
        label = (
            ", ".join(f"{k}={config.overrides.get(k, '–')}" for k in config.keys if k != x_key) or "all runs"
        )
        groups.setdefault(label, []).append(config)
    return groups


def _point(config: Configuration, key: MetricKey) -> tuple[float, float] | None:
    """(mean ×100, CI half-width ×100; NaN, so no bar, for one seed) or None when the configuration lacks it."""
    summary = config.summary("after", key)
    if summary is None:
        return None
    return 100 * summary[0], math.nan if summary[1] is None else 100 * summary[1]


def _title(key: MetricKey) -> str:
    return f"{key[0]}: {LABELS[key[1]]}"


def _bar_plot(configs: list[Configuration], panels: list[MetricKey], path: Path) -> Path:
    """Grouped bars with error bars: x = loss, one bar per series; a dashed line marks the untrained model's mean."""
    losses = list(dict.fromkeys(loss_of(c) for c in configs))
    groups = _series(configs, "loss")
    width = 0.8 / len(groups)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(max(6.0, 0.7 * len(losses) + 2), 3.2 * len(panels)), squeeze=False
    )
    for ax, key in zip(axes[:, 0], panels):
        for g, (label, members) in enumerate(groups.items()):
            bars = [
                (losses.index(loss_of(c)) + g * width, p)
                for c in members
                if (p := _point(c, key)) is not None
            ]
            if bars:
                ax.bar(
                    [x for x, _ in bars],
                    [p[0] for _, p in bars],
                    width=width,
                    yerr=[p[1] for _, p in bars],
                    capsize=3,
                    color=f"C{g}",
                    label=label if len(groups) > 1 else None,
                )
        before = [v for c in configs for run in c.runs if (v := run.value("before", key)) is not None]
        if before:
            ax.axhline(
                100 * sum(before) / len(before), color="black", linestyle="--", linewidth=1, label="untrained"
            )
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(losses))], losses, rotation=30, ha="right")
        ax.set_ylabel(_title(key))
        if ax.get_legend_handles_labels()[1]:  # one group and no untrained line: nothing to explain
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def _line_plot(configs: list[Configuration], panels: list[MetricKey], x_key: str, path: Path) -> Path:
    """Lines with error bars: x = global batch (log2) or model (by parameter count when metrics.json has it)."""
    x_of = _x_axis(configs, x_key)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, key in zip(axes[0], panels):
        for g, (label, members) in enumerate(_series(configs, x_key).items()):
            points = sorted((x_of(c), *p) for c in members if (p := _point(c, key)) is not None)
            if points:
                ax.errorbar(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    yerr=[p[2] for p in points],
                    marker="o",
                    capsize=3,
                    color=f"C{g}",
                    label=label,
                )
        _format_x(ax, configs, x_key)
        ax.set_ylabel(_title(key))
        if ax.get_legend_handles_labels()[1]:  # one group and no untrained line: nothing to explain
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def _has_parameter_counts(configs: list[Configuration]) -> bool:
    return all("num_parameters" in run.metrics for c in configs for run in c.runs)


def _x_axis(configs: list[Configuration], x_key: str):
    if x_key == "data.global_batch_size":
        return batch_of
    if _has_parameter_counts(configs):
        return lambda c: float(c.runs[0].metrics["num_parameters"])
    order = list(dict.fromkeys(model_of(c) for c in configs))
    return lambda c: float(order.index(model_of(c)))


def _format_x(ax, configs: list[Configuration], x_key: str) -> None:
    if x_key == "data.global_batch_size":
        ax.set_xscale("log", base=2)
        ax.set_xlabel("global batch size (rows)")
    elif _has_parameter_counts(configs):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
    else:
        order = list(dict.fromkeys(model_of(c) for c in configs))
        ax.set_xticks(range(len(order)), order)
        ax.set_xlabel("model (no parameter count in metrics.json: sweep order)")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
