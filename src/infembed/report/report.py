"""``report.md`` = the sweep table, the list of failed runs, and the plots, written next to each other."""
from __future__ import annotations

from pathlib import Path

from infembed.report.plots import write_plots
from infembed.report.runs import load_runs
from infembed.report.table import failed_list, markdown_table


def write_report(roots: list[str | Path], out_dir: str | Path | None = None, title: str | None = None) -> Path:
    """Read every job under ``roots``, write ``report.md`` and plots into ``out_dir`` (default: the first root)."""
    runs = load_runs(roots)
    out = Path(out_dir if out_dir is not None else roots[0])
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(runs, out)
    finished = sum(run.ok for run in runs)
    sections = [
        f"# {title or 'Sweep report'}",
        "Sources: " + ", ".join(f"`{r}`" for r in roots),
        f"{finished} of {len(runs)} runs finished. Cells: metric after training ×100 (change from the untrained "
        "model); best per column in bold.",
        markdown_table(runs) if finished else "_No run finished._",
    ]
    failed = failed_list(runs)
    if failed:
        sections += ["## Failed or missing runs", failed]
    if plots:
        sections += ["## Plots", "\n".join(f"![{p.stem}]({p.name})" for p in plots)]
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n")
    return path
