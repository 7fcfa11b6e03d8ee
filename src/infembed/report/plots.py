"""Figures of a report (matplotlib, Agg backend), each as PNG with a PDF and an SVG beside it.

- ``metrics``: one panel per benchmark (columns) and plotted metric (rows: p-MRR, nDCG@10); one bar per
  configuration, labelled in words with its number of seeds; a benchmark also evaluated without its instruction
  gets a hatched bar beside each one; the panel title gives the benchmark's queries (and clusters); a dashed line
  marks the untrained model's mean.
- ``metrics_vs_batch`` / ``metrics_vs_model``: when the global batch size or the model varies, one line per
  combination of the other varying overrides, one panel per benchmark and metric.

Points are the means over seeds with the table's 95 % intervals as error bars (seeds and queries random: the crossed
bootstrap; the Student t interval over seeds for runs without per-query values; none for one seed without them).
Values ×100.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from infembed.report.configs import Configuration
from infembed.report.runs import MetricKey, query_units
from infembed.results import NO_INSTRUCTION

PLOT_METRICS = ("p-mrr", "ndcg@10")
LABELS = {"p-mrr": "p-MRR (×100)", "ndcg@10": "nDCG@10 (×100)"}
VALUE_ONLY_KEYS = ("loss", "model", "experiment")  # their values read well alone ("uni_p", "minilm")
FORMATS = ("png", "pdf", "svg")


def display_label(config: Configuration, keys: list[str] | None = None) -> str:
    """The configuration in words: ``multi_p_i wise_ft=0.5``, ``untrained`` (``ckpt_path=null``), no ``trained:``
    prefixes, dotted keys by their last part."""
    parts = []
    for key in config.keys if keys is None else keys:
        value = config.overrides.get(key)
        name = key.removeprefix("trained:").rpartition(".")[2]
        if value is None:
            continue
        if key == "ckpt_path":
            job = Path(value).parent.parent.name or Path(value).name  # <job>/checkpoints/last.ckpt
            parts.append("untrained" if value == "null" else f"checkpoint {job}")
        else:
            parts.append(value if name in VALUE_ONLY_KEYS else f"{name}={value}")
    return " ".join(parts) or "all runs"


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


def write_plots(
    configs: list[Configuration], metrics: list[MetricKey], out_dir: Path, resamples: int, seed: int
) -> list[Path]:
    """Draw every figure that has something to show; returns the PNG paths (PDF and SVG lie beside them)."""
    panels = [m for m in metrics if m[1] in PLOT_METRICS]
    if not panels or not configs:
        return []
    interval = Intervals(resamples, seed)
    written = [_bar_plot(configs, panels, interval, out_dir / "metrics.png")]
    if len({batch_of(c) for c in configs}) > 1:
        written.append(
            _line_plot(configs, panels, "data.global_batch_size", interval, out_dir / "metrics_vs_batch.png")
        )
    if len({model_of(c) for c in configs}) > 1:
        written.append(_line_plot(configs, panels, "model", interval, out_dir / "metrics_vs_model.png"))
    return written


class Intervals:
    """(mean ×100, (below, above) error-bar lengths ×100) of a configuration's metric, as the table computes them."""

    def __init__(self, resamples: int, seed: int) -> None:
        self.resamples, self.seed = resamples, seed

    def __call__(self, config: Configuration, key: MetricKey) -> tuple[float, tuple[float, float]] | None:
        summary = config.summary("after", key)
        if summary is None:
            return None
        mean, half, _ = summary
        bounds = config.interval("after", key, self.resamples, self.seed)
        if bounds is None:
            bounds = (mean - half, mean + half) if half is not None else (mean, mean)
        return 100 * mean, (100 * (mean - bounds[0]), 100 * (bounds[1] - mean))


def _benchmark_title(configs: list[Configuration], key: MetricKey) -> str:
    """``arguana (100 queries)`` or ``synthetic (100 queries, 12 clusters)``: the units of the panel's intervals."""
    queries, clusters = query_units([run for c in configs for run in c.runs], key)
    units = f"{queries} queries" + (f", {clusters} clusters" if clusters else "")
    return f"{key[0]} ({units})" if queries else key[0]


def _bar_plot(configs: list[Configuration], panels: list[MetricKey], interval: Intervals, path: Path) -> Path:
    benches = list(dict.fromkeys(b for b, _ in panels if not b.endswith(NO_INSTRUCTION)))
    rows = [m for m in PLOT_METRICS if any(k[1] == m for k in panels)]
    paired = any(b + NO_INSTRUCTION == k[0] for b in benches for k in panels)
    width = 0.4 if paired else 0.8
    fig, axes = plt.subplots(
        len(rows),
        len(benches),
        figsize=(max(4.5, 0.6 * len(configs) + 2.0) * len(benches), 3.4 * len(rows) + 0.8),
        squeeze=False,
    )
    ticks = [f"{display_label(c)} ({len(c.runs)} seed{'s' * (len(c.runs) > 1)})" for c in configs]
    for ax, (metric, bench) in zip(axes.ravel(), [(m, b) for m in rows for b in benches]):
        for offset, variant, hatch in ((0.0, bench, None), (width, bench + NO_INSTRUCTION, "//")):
            if (variant, metric) not in panels:
                continue
            for i, config in enumerate(configs):
                point = interval(config, (variant, metric))
                if point is not None:
                    ax.bar(
                        i + offset,
                        point[0],
                        width=width,
                        yerr=[[point[1][0]], [point[1][1]]],
                        capsize=3,
                        color=_colour(i, len(configs)),
                        alpha=0.55 if hatch else 1.0,
                        hatch=hatch,
                        edgecolor="black",
                        linewidth=0.5,
                    )
        before = [
            v for c in configs for run in c.runs if (v := run.value("before", (bench, metric))) is not None
        ]
        if before:
            ax.axhline(sum(before) / len(before) * 100, color="black", linestyle="--", linewidth=1)
        ax.set_xticks(
            [i + (width / 2 if paired else 0) for i in range(len(configs))], ticks, rotation=35, ha="right"
        )
        ax.set_title(_benchmark_title(configs, (bench, metric)), fontsize="medium")
        ax.set_ylabel(LABELS[metric])
    handles = [Patch(facecolor="grey", edgecolor="black", label="with the instruction")] if paired else []
    if paired:
        handles.append(Patch(facecolor="grey", alpha=0.55, hatch="//", edgecolor="black", label="without"))
    if any(run.value("before", k) is not None for c in configs for run in c.runs for k in panels):
        handles.append(plt.Line2D([], [], color="black", linestyle="--", label="untrained model"))
    handles.append(plt.Line2D([], [], color="black", marker="|", linestyle="", label="95 % interval"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, fontsize="small")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return _save(fig, path)


def _colour(index: int, count: int):
    """Matplotlib's ten default colours, or tab20's twenty when there are more configurations."""
    return f"C{index}" if count <= 10 else plt.get_cmap("tab20")(index % 20)


def _series(configs: list[Configuration], x_key: str) -> dict[str, list[Configuration]]:
    """Group configurations by the values of the varying keys other than ``x_key`` (one series per group)."""
    groups: dict[str, list[Configuration]] = {}
    for config in configs:
        label = display_label(config, [k for k in config.keys if k != x_key])
        groups.setdefault(label, []).append(config)
    return groups


def _seed_counts(members: list[Configuration]) -> str:
    counts = sorted({len(c.runs) for c in members})
    text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{text} seed{'s' * (counts[-1] > 1)}"


def _line_plot(
    configs: list[Configuration], panels: list[MetricKey], x_key: str, interval: Intervals, path: Path
) -> Path:
    """Lines with error bars: x = global batch (log2) or model (by parameter count when metrics.json has it)."""
    x_of = _x_axis(configs, x_key)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, key in zip(axes[0], panels):
        for g, (label, members) in enumerate(_series(configs, x_key).items()):
            points = sorted((x_of(c), *p) for c in members if (p := interval(c, key)) is not None)
            if points:
                ax.errorbar(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    yerr=[[p[2][0] for p in points], [p[2][1] for p in points]],
                    marker="o",
                    capsize=3,
                    color=f"C{g % 10}",
                    label=f"{label} ({_seed_counts(members)})",
                )
        _format_x(ax, configs, x_key)
        ax.set_title(_benchmark_title(configs, key), fontsize="medium")
        ax.set_ylabel(LABELS[key[1]])
        ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
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
    """``path`` (PNG) and the same figure as PDF and SVG beside it."""
    with plt.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):  # editable text in SVG and PDF
        for fmt in FORMATS:
            fig.savefig(path.with_suffix(f".{fmt}"), dpi=150 if fmt == "png" else None)
    plt.close(fig)
    return path
