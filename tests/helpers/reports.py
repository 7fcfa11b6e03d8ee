"""Fabricated Hydra job directories in the results schema (``metrics.json``, ``per_query.json``, ``clusters.json``)
and the report CLI run as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import yaml

from helpers.processes import ROOT, offline_env, run_module


def make_job(
    root: Path,
    num: int,
    overrides: list[str],
    after: dict,
    before: dict | None = None,
    clusters: dict | None = None,
    seed: int = 1,
) -> Path:
    """A finished job; ``after``/``before`` are ``{BENCH: {METRIC: {query_id: value}}}``, ``clusters``
    ``{BENCH: {query_id: cluster}}``; metrics.json holds the per-query means, as the pipeline writes them."""
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
    stages = {"after": after, **({"before": before} if before else {})}
    means = {
        s: {b: {m: float(np.mean(list(q.values()))) for m, q in ms.items()} for b, ms in v.items()}
        for s, v in stages.items()
    }
    config = {"seed": seed, "optimized_metric": "after/synthetic/p-mrr"}
    (job / "metrics.json").write_text(
        json.dumps({"task": "train", **means, "num_parameters": 1, "config": config})
    )
    (job / "per_query.json").write_text(json.dumps(stages))
    if clusters:
        (job / "clusters.json").write_text(json.dumps(clusters))
    return job


def per_query(values: np.ndarray, prefix: str = "q") -> dict[str, float]:
    return {f"{prefix}{i}": float(v) for i, v in enumerate(values)}


def report(*args: str | Path, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m infembed.report ARGS`` in a subprocess (offline W&B, Agg backend)."""
    environment = offline_env(MPLBACKEND="Agg", PYTHONPATH=str(ROOT / "src"), **env)
    return run_module("infembed.report", *map(str, args), cwd=cwd or ROOT, timeout=300, env=environment)


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown rows whose first cell is ``first_cell``."""
    cells = [
        [c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")
    ]
    return [c for c in cells if c[0] == first_cell]
