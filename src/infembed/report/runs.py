"""Read the job directories of Hydra multiruns: overrides, group choices, ``metrics.json`` and ``per_query.json``.

A job directory is any folder holding ``.hydra/overrides.yaml`` (Hydra writes it when the job starts). The job
finished when its ``metrics.json`` exists (both tasks write it)::

    metrics.json    {"task": "train" | "evaluate", "before"?: {BENCH: {METRIC: value}}, "after": {BENCH: {METRIC: value}},
                     "num_parameters": int, "config": {resolved config}}
    per_query.json  {"before"?: {BENCH: {METRIC: {query_id: value}}}, "after": {...}}   (optional)
    clusters.json   {BENCH: {query_id: cluster}}   (optional: the benchmark's queries.jsonl "cluster" field)

A job without ``metrics.json`` is reported as failed; a malformed file is an input error naming the file and the
field. When a sweep root holds ``multirun.yaml``, the jobs the sweep should have produced are expanded from it, so
jobs that never started (a cancelled SLURM array task, an aborted local batch) are listed too.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from infembed.results import STAGES, split_metric_path

SEED_KEY = "seed"
CKPT_KEY = "ckpt_path"
MEASUREMENT_ONLY = ("evaluation.",)  # training overrides of what was measured, not of the weights it wrote

MetricKey = tuple[str, str]  # (benchmark, metric), e.g. ("synthetic", "p-mrr")


class ReportInputError(ValueError):
    """A path given to the report tool is missing, holds no Hydra job, or a file in it is malformed."""


@dataclass
class Run:
    """One Hydra job: where it lives, what it overrode, and its results (None when it did not finish)."""

    path: Path
    overrides: dict[
        str, str
    ]  # what describes the run (an evaluated checkpoint's training overrides included)
    choices: dict[str, str] = field(default_factory=dict)  # config group choices, e.g. {"loss": "uni_p"}
    config: dict = field(default_factory=dict)  # metrics.json's resolved config, else .hydra/config.yaml
    metrics: dict | None = None  # metrics.json as written
    per_query: dict | None = None  # per_query.json as written (None when the job wrote none)
    error: str | None = None  # why there are no metrics
    launched: dict[str, str] = field(default_factory=dict)  # the job's own command-line overrides
    clusters: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # clusters.json: {bench: {query_id: cluster}}

    @property
    def ok(self) -> bool:
        return self.metrics is not None

    @property
    def seed(self) -> str:
        return self.overrides.get(SEED_KEY, str(self.config.get(SEED_KEY, "?")))

    def value(self, stage: str, key: MetricKey) -> float | None:
        return self.metrics.get(stage, {}).get(key[0], {}).get(key[1])

    def query_values(self, stage: str, key: MetricKey) -> dict[str, float]:
        """``{query_id: value}`` of one metric ({} when per_query.json lacks it)."""
        return (self.per_query or {}).get(stage, {}).get(key[0], {}).get(key[1], {})


def metric_keys(runs: list[Run], stage: str = "after") -> list[MetricKey]:
    """Every (benchmark, metric) of ``stage`` in the finished runs, in file order."""
    return list(
        dict.fromkeys(
            (b, m) for run in runs if run.ok for b, ms in run.metrics.get(stage, {}).items() for m in ms
        )
    )


def parse_metric_path(path: str) -> tuple[str, MetricKey]:
    """``"after/synthetic/p-mrr"`` → ``("after", ("synthetic", "p-mrr"))`` (a benchmark name may hold '/')."""
    parts = split_metric_path(path)
    if parts is None:
        raise ReportInputError(
            f"metric {path!r}: expected STAGE/BENCHMARK/METRIC with STAGE in {STAGES}, "
            "e.g. after/synthetic/p-mrr"
        )
    return parts[0], parts[1:]


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
    launched = parse_overrides(_load_yaml_list(hydra_dir / "overrides.yaml"))
    config = _load_yaml(hydra_dir / "config.yaml") if (hydra_dir / "config.yaml").is_file() else {}
    hydra_cfg = _load_yaml(hydra_dir / "hydra.yaml") if (hydra_dir / "hydra.yaml").is_file() else {}
    overrides = with_training_overrides(launched, hydra_cfg.get("hydra", {}).get("runtime", {}).get("cwd"))
    choices = {
        k: v
        for k, v in hydra_cfg.get("hydra", {}).get("runtime", {}).get("choices", {}).items()
        if isinstance(v, str) and not k.startswith("hydra/")
    }
    run = Run(path=job_dir, overrides=overrides, choices=choices, config=config, launched=launched)
    if not (job_dir / "metrics.json").is_file():
        run.error = "no metrics.json (crashed, killed or still running)"
        return run
    run.metrics = load_metrics(job_dir / "metrics.json")
    run.config = run.metrics.get("config") or config
    if (job_dir / "per_query.json").is_file():
        run.per_query = load_per_query(job_dir / "per_query.json")
    if (job_dir / "clusters.json").is_file():
        run.clusters = load_clusters(job_dir / "clusters.json")
    return run


def with_training_overrides(overrides: dict[str, str], cwd: str | None) -> dict[str, str]:
    """An evaluation of a checkpoint written by a Hydra job is described by that training job.

    ``ckpt_path=<job>/checkpoints/X.ckpt`` (relative paths from the evaluation's working directory) is replaced by
    the training job's overrides and seed, so evaluations of a seed sweep's checkpoints group as the sweep did, with
    the seeds as replicates. A training key that the evaluation also sets is kept as ``trained:KEY`` (e.g. both
    ``experiment``s); the training job's ``evaluation.*`` keys (e.g. ``evaluation.before=false``) change what it
    measured, not the checkpoint, and are dropped; a checkpoint outside a Hydra job keeps ``ckpt_path``.
    """
    ckpt = overrides.get(CKPT_KEY)
    if not ckpt or ckpt in ("null", "last", "hpc"):
        return overrides
    path = Path(ckpt) if Path(ckpt).is_absolute() or cwd is None else Path(cwd) / ckpt
    hydra_dir = path.parent.parent / ".hydra"
    if not (hydra_dir / "overrides.yaml").is_file():
        return overrides
    trained = {
        k: v
        for k, v in parse_overrides(_load_yaml_list(hydra_dir / "overrides.yaml")).items()
        if not k.startswith(MEASUREMENT_ONLY)
    }
    if SEED_KEY not in trained and (hydra_dir / "config.yaml").is_file():
        trained[SEED_KEY] = str(_load_yaml(hydra_dir / "config.yaml").get(SEED_KEY, "?"))
    own = {k: v for k, v in overrides.items() if k not in (CKPT_KEY, SEED_KEY)}
    return {**own, **{(f"trained:{k}" if k in own else k): v for k, v in trained.items()}}


def load_metrics(path: Path) -> dict:
    """``metrics.json``, checked: an "after" (and optional "before") ``{BENCH: {METRIC: number}}``."""
    metrics = _load_json(path)
    if not isinstance(metrics.get("after"), dict) or not metrics["after"]:
        raise ReportInputError(
            f'{path}: no "after" results (expected {{"after": {{BENCH: {{METRIC: value}}}}}})'
        )
    for stage in STAGES:
        for bench, values in metrics.get(stage, {}).items():
            _check_mapping(path, f"{stage}/{bench}", values, "{METRIC: value}")
            for metric, value in values.items():
                if not _is_number(value):
                    raise ReportInputError(f"{path}: {stage}/{bench}/{metric} = {value!r}, expected a number")
    if "config" in metrics and not isinstance(metrics["config"], dict):
        raise ReportInputError(f"{path}: config = {json.dumps(metrics['config'])[:60]}, expected an object")
    if "num_parameters" in metrics and not isinstance(metrics["num_parameters"], int):
        raise ReportInputError(f"{path}: num_parameters = {metrics['num_parameters']!r}, expected an integer")
    return metrics


def load_per_query(path: Path) -> dict:
    """``per_query.json``, checked: ``{STAGE: {BENCH: {METRIC: {query_id: number}}}}``."""
    per_query = _load_json(path)
    for stage, benches in per_query.items():
        _check_mapping(path, stage, benches, "{BENCH: {METRIC: {query_id: value}}}")
        for bench, metrics in benches.items():
            _check_mapping(path, f"{stage}/{bench}", metrics, "{METRIC: {query_id: value}}")
            for metric, values in metrics.items():
                _check_mapping(path, f"{stage}/{bench}/{metric}", values, "{query_id: value}")
                bad = next((q for q, v in values.items() if not _is_number(v)), None)
                if bad is not None:
                    raise ReportInputError(
                        f"{path}: {stage}/{bench}/{metric}/{bad} = {values[bad]!r}, expected a number"
                    )
    return per_query


def load_clusters(path: Path) -> dict[str, dict[str, str]]:
    """``clusters.json``, checked: ``{BENCH: {query_id: cluster name}}``."""
    clusters = _load_json(path)
    for bench, names in clusters.items():
        _check_mapping(path, bench, names, "{query_id: cluster}")
        bad = next((q for q, name in names.items() if not isinstance(name, str) or not name), None)
        if bad is not None:
            raise ReportInputError(
                f"{path}: {bench}/{bad} = {names[bad]!r}, expected a cluster name (a string)"
            )
    return clusters


def query_clusters(runs: list[Run], bench: str) -> dict[str, str]:
    """``{query_id: cluster}`` of one benchmark over ``runs``; runs that name different clusters are an error."""
    merged: dict[str, tuple[str, Path]] = {}
    for run in runs:
        for query, name in run.clusters.get(bench, {}).items():
            first = merged.setdefault(query, (name, run.path))
            if first[0] != name:
                raise ReportInputError(
                    f"{run.path / 'clusters.json'}: {bench}/{query} = {name!r}, but {first[1] / 'clusters.json'} "
                    f"has {first[0]!r}; expected every run to name the same clusters"
                )
    return {query: name for query, (name, _) in merged.items()}


def query_units(runs: list[Run], key: MetricKey) -> tuple[int, int | None]:
    """(queries, clusters) of one after-training metric over ``runs``: the most queries a run has, and the clusters
    they fall into, a query without one counting as its own (None when none of them names a cluster)."""
    ids = max((set(run.query_values("after", key)) for run in runs), key=len, default=set())
    names = query_clusters(runs, key[0])
    named = {names[q] for q in ids if q in names}
    return len(ids), (len(named) + sum(q not in names for q in ids)) if named else None


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from err
    if not isinstance(data, dict):
        raise ReportInputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_mapping(path: Path, where: str, value, expected: str) -> None:
    if not isinstance(value, dict):
        raise ReportInputError(f"{path}: {where} = {json.dumps(value)[:60]}, expected an object {expected}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
    """The jobs ``multirun.yaml`` describes (the basic sweeper's cartesian product), or None when there is no such
    file or the sweep is not an enumerable grid.

    Sweep parameters come first, then the command line's overrides; a later value of a key replaces an earlier one.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from hydra.errors import OverrideParseException

    path = sweep_root / "multirun.yaml"
    if not path.is_file():
        return None
    hydra_cfg = _load_yaml(path).get("hydra", {})
    params = [f"{k}={v}" for k, v in (hydra_cfg.get("sweeper", {}).get("params") or {}).items()]
    arguments = params + list(hydra_cfg.get("overrides", {}).get("task", []))
    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
    except OverrideParseException as err:
        raise ReportInputError(f"{path}: unreadable sweep overrides ({err})") from err
    grid_types = (
        None,
        ValueType.ELEMENT,
        ValueType.CHOICE_SWEEP,
        ValueType.SIMPLE_CHOICE_SWEEP,
        ValueType.RANGE_SWEEP,
    )
    if any(o.value_type not in grid_types for o in parsed):
        return None  # not a grid (an interval or glob sweep, e.g. Optuna's): nothing to expect
    choices: dict[str, list[str]] = {}
    for override in parsed:
        key = override.get_key_element()
        values = (
            override.sweep_string_iterator()
            if override.is_sweep_override()
            else [override.get_value_element_as_str()]
        )
        choices[key] = [f"{key}={v}" for v in values]
    return [parse_overrides(list(job)) for job in itertools.product(*choices.values())]


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
    seen = [run.launched for run in found]
    return [
        Run(path=root, overrides=job, error="never started (expected by multirun.yaml)")
        for job in expected
        if job not in seen
    ]
