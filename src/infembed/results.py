"""The one results schema, written by one writer for both tasks and read by the report tool and sweepers.

``metrics.json`` (values are fractions; tables print ×100)::

    {"task": "train" | "evaluate",
     "before": {BENCHMARK: {METRIC: value}},     # training with evaluation.before=true only
     "after":  {BENCHMARK: {METRIC: value}},
     "num_parameters": int, "config": {...},    # the resolved config of the run (of its last segment)
     "segments": [{"start_step": int, "changes": {KEY: [old, new]}}]}   # training: one per start or resume

``per_query.json`` beside it: ``{STAGE: {BENCHMARK: {METRIC: {query_id: value}}}}`` for every metric that is a
mean over queries (per held-out row for ``instruction_sensitivity``), for paired tests between runs.

``clusters.json`` beside them, only when a benchmark names query clusters (the optional ``cluster`` field of its
``queries.jsonl``): ``{BENCHMARK: {query_id: cluster}}``. The report resamples and tests whole clusters, since the
queries of one cluster move together.

A metric is addressed by its path ``STAGE/BENCHMARK/METRIC`` (e.g. ``after/synthetic/p-mrr``): that is what
``optimized_metric`` names and what ``run.py`` returns to Hydra sweepers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from infembed.errors import ConfigError

STAGES = ("before", "after")
NO_INSTRUCTION = " (no instruction)"  # suffix of a benchmark row evaluated without its instructions
Stages = Mapping[str, Mapping[str, object]]  # {stage: {benchmark: EvalResult}}


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write atomically: a crash never leaves a half-written results file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def metrics_payload(
    task: str, stages: Stages, num_parameters: int, config: dict, segments: list | None = None
) -> dict:
    """The ``metrics.json`` document (see the module docstring)."""
    payload: dict = {"task": task}
    for stage, rows in stages.items():
        payload[stage] = {bench: dict(result.metrics) for bench, result in rows.items()}
    payload |= {"num_parameters": num_parameters, "config": config}
    return payload | ({"segments": segments} if segments is not None else {})


def write_results(
    output_dir: str | os.PathLike,
    task: str,
    stages: Stages,
    num_parameters: int,
    config: dict,
    segments: list | None = None,
) -> dict:
    """Write ``metrics.json``, ``per_query.json`` (and ``clusters.json``) into ``output_dir``; returns the metrics
    document."""
    payload = metrics_payload(task, stages, num_parameters, config, segments)
    per_query = {stage: {bench: r.per_query for bench, r in rows.items()} for stage, rows in stages.items()}
    write_json(Path(output_dir) / "per_query.json", per_query)
    clusters = {bench: r.clusters for rows in stages.values() for bench, r in rows.items() if r.clusters}
    if clusters:
        write_json(Path(output_dir) / "clusters.json", clusters)
    write_json(Path(output_dir) / "metrics.json", payload)  # last: its presence marks a finished job
    return payload


def split_metric_path(path: str) -> tuple[str, str, str] | None:
    """``"after/synthetic/p-mrr"`` -> (stage, benchmark, metric), None if malformed; the benchmark may contain '/'."""
    stage, _, rest = str(path).partition("/")
    benchmark, _, metric = rest.rpartition("/")
    return (stage, benchmark, metric) if stage in STAGES and benchmark and metric else None


def check_metric_path(path: str) -> tuple[str, str, str]:
    """:func:`split_metric_path`, a malformed ``optimized_metric`` being a config error."""
    parts = split_metric_path(path)
    if parts is None:
        raise ConfigError(
            f"optimized_metric={path!r}: expected STAGE/BENCHMARK/METRIC with STAGE in {list(STAGES)}, "
            "e.g. after/synthetic/p-mrr"
        )
    return parts


def lookup(payload: Mapping, path: str) -> float:
    """The value at ``STAGE/BENCHMARK/METRIC`` of a metrics document; the error lists the paths that exist."""
    stage, benchmark, metric = check_metric_path(path)
    try:
        return payload[stage][benchmark][metric]
    except KeyError:
        available = [f"{s}/{b}/{m}" for s in STAGES for b, ms in (payload.get(s) or {}).items() for m in ms]
        raise ConfigError(
            f"optimized_metric={path!r} is not in this run's results; available: {available}"
        ) from None


def results_table(payload: Mapping, scale: float = 100) -> str:
    """Markdown: one row per benchmark and metric, columns before / after / change (values ×``scale``)."""
    before, after = payload.get("before") or {}, payload.get("after") or {}
    rows = [(b, m) for stage in (before, after) for b, ms in stage.items() for m in ms]
    lines = [f"| benchmark | metric (×{scale:g}) | before | after | change |", "|---|---|---:|---:|---:|"]
    for bench, metric in dict.fromkeys(rows):
        b, a = before.get(bench, {}).get(metric), after.get(bench, {}).get(metric)
        change = f"{scale * (a - b):+.1f}" if a is not None and b is not None else ""
        cells = [f"{scale * v:.1f}" if v is not None else "–" for v in (b, a)]
        lines.append(f"| {bench} | {metric} | {cells[0]} | {cells[1]} | {change} |")
    return "\n".join(lines)


__all__ = [
    "NO_INSTRUCTION",
    "STAGES",
    "check_metric_path",
    "lookup",
    "results_table",
    "write_json",
    "write_results",
]
