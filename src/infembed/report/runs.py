"""Read the job directories of Hydra multiruns: overrides, resolved choices and ``metrics.json``.

A job directory is any folder holding ``.hydra/overrides.yaml`` (Hydra writes it when the job starts). The job
finished when its ``metrics.json`` (``{"before": {...}, "after": {...}}``) exists; otherwise it is reported as failed.
When a sweep root holds ``multirun.yaml``, the jobs the sweep should have produced are expanded from it, so jobs
that never started (a cancelled SLURM array task, an aborted local batch) are listed too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf


class ReportInputError(ValueError):
    """A path given to the report tool is missing, holds no Hydra job, or a file in it is malformed."""


@dataclass
class Run:
    """One Hydra job: where it lives, what it overrode, and its metrics (None when it did not finish)."""

    path: Path
    overrides: dict[str, str]
    choices: dict[str, str] = field(default_factory=dict)  # config group choices, e.g. {"loss": "uni_p"}
    config: dict = field(default_factory=dict)  # .hydra/config.yaml, unresolved
    metrics: dict[str, dict[str, float]] | None = None
    error: str | None = None  # why there are no metrics

    @property
    def ok(self) -> bool:
        return self.metrics is not None


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["loss=uni_p", "+x=1", "~y"]`` → ``{"loss": "uni_p", "x": "1", "y": "~"}`` (prefixes dropped)."""
    parsed = {}
    for item in items:
        key, _, value = item.partition("=")
        parsed[key.lstrip("+~")] = value if "=" in item else "~"
    return parsed


def find_job_dirs(root: Path) -> list[Path]:
    """Job directories at or below ``root`` (submitit's own folders skipped), in a stable order."""
    if not root.exists():
        raise ReportInputError(f"{root}: no such directory")
    found = {p.parent.parent for p in root.rglob(".hydra/overrides.yaml") if ".submitit" not in p.parts}
    return sorted(found, key=_job_sort_key)


def _job_sort_key(path: Path) -> tuple:
    """Hydra numbers job folders 0, 1, ..., 10: sort numerically where the name is a number."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def load_run(job_dir: Path) -> Run:
    hydra_dir = job_dir / ".hydra"
    overrides = parse_overrides(_load_yaml_list(hydra_dir / "overrides.yaml"))
    config = _load_yaml(hydra_dir / "config.yaml") if (hydra_dir / "config.yaml").is_file() else {}
    hydra_cfg = _load_yaml(hydra_dir / "hydra.yaml") if (hydra_dir / "hydra.yaml").is_file() else {}
    choices = {k: v for k, v in hydra_cfg.get("hydra", {}).get("runtime", {}).get("choices", {}).items()
               if isinstance(v, str) and not k.startswith("hydra/")}
    run = Run(path=job_dir, overrides=overrides, choices=choices, config=config)
    run.metrics, run.error = _load_metrics(job_dir / "metrics.json")
    return run


def _load_metrics(path: Path) -> tuple[dict | None, str | None]:
    """(metrics, None) when the file is a valid ``{"after": {...}}`` object, else (None, why not)."""
    if not path.is_file():
        return None, "no metrics.json (crashed, killed or still running)"
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        return None, f"unreadable metrics.json: line {err.lineno}: {err.msg}"
    if not isinstance(metrics, dict) or not isinstance(metrics.get("after"), dict):
        return None, 'metrics.json has no "after" object'
    return metrics, None


def _load_yaml(path: Path) -> dict:
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # yaml.YAMLError and OmegaConf errors share no base class
        raise ReportInputError(f"{path}: not a readable YAML mapping ({err})") from err


def _load_yaml_list(path: Path) -> list[str]:
    items = _load_yaml(path) if path.stat().st_size else []
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise ReportInputError(f"{path}: expected a YAML list of 'key=value' strings")
    return items


def expected_overrides(sweep_root: Path) -> list[dict[str, str]] | None:
    """The jobs ``multirun.yaml`` describes (BasicSweeper's expansion), or None when there is no such file."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    path = sweep_root / "multirun.yaml"
    if not path.is_file():
        return None
    hydra_cfg = _load_yaml(path).get("hydra", {})
    params = [f"{k}={v}" for k, v in (hydra_cfg.get("sweeper", {}).get("params") or {}).items()]
    arguments = params + list(hydra_cfg.get("overrides", {}).get("task", []))
    parsed = OverridesParser.create().parse_overrides(arguments)
    (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [parse_overrides(job) for job in jobs]


def load_runs(roots: list[str | Path]) -> list[Run]:
    """Every job under the given sweep (or job) directories, plus placeholders for expected jobs never started."""
    runs = []
    for root in map(Path, roots):
        dirs = find_job_dirs(root)
        found = [load_run(d) for d in dirs]
        if not found and not (root / "multirun.yaml").is_file():
            raise ReportInputError(f"{root}: no Hydra job directories (no .hydra/overrides.yaml below it)")
        runs += found + _missing_runs(root, found)
    return runs


def _missing_runs(root: Path, found: list[Run]) -> list[Run]:
    expected = expected_overrides(root) or []
    seen = [run.overrides for run in found]
    return [Run(path=root, overrides=job, error="never started (expected by multirun.yaml)")
            for job in expected if job not in seen]
