"""Configurations: finished runs that differ only in ``seed``, with their means, intervals and per-query values.

A configuration is identified by its overrides without ``seed`` (and without the launcher keys in
``IGNORED_KEYS``); its label is ``key=value`` of the overrides that vary across configurations and that it sets,
e.g. ``data.global_batch_size=32 loss=uni_p``. Configurations are sorted by the varying overrides: model first, then
global batch size, then loss, then the rest; numbers numerically, other values in the order the sweep produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infembed.report.runs import SEED_KEY, MetricKey, ReportInputError, Run, query_clusters
from infembed.report.stats import cluster_labels, crossed_bootstrap, mean_ci

PREFERRED_KEYS = ("model", "data.global_batch_size", "loss")
# Overrides that select how a sweep runs, not what it measures.
IGNORED_KEYS = frozenset({"sweep", "launcher", "hydra.sweep.dir", "hydra.run.dir"})


@dataclass
class Configuration:
    """The runs (one per seed) of one set of overrides; ``keys`` are the overrides that vary between configurations."""

    runs: list[Run]
    keys: list[str]
    _intervals: dict = field(default_factory=dict, repr=False)  # (stage, key, resamples, seed) -> interval

    @property
    def overrides(self) -> dict[str, str]:
        return {k: v for k, v in self.runs[0].overrides.items() if k != SEED_KEY}

    @property
    def label(self) -> str:
        return " ".join(f"{k}={self.overrides[k]}" for k in self.keys if k in self.overrides) or "all runs"

    def summary(self, stage: str, key: MetricKey) -> tuple[float, float | None, int] | None:
        """(mean, CI half-width, number of seeds) over the runs that have the metric; None when none has it."""
        values = [v for v in (run.value(stage, key) for run in self.runs) if v is not None]
        return (*mean_ci(values), len(values)) if values else None

    def change(self, key: MetricKey) -> float | None:
        """Mean over seeds of after − before (None when no run has both)."""
        deltas = [
            run.value("after", key) - run.value("before", key)
            for run in self.runs
            if run.value("after", key) is not None and run.value("before", key) is not None
        ]
        return float(np.mean(deltas)) if deltas else None

    @property
    def seeds(self) -> list[str]:
        return [run.seed for run in self.runs]

    def query_ids(self, stage: str, key: MetricKey) -> set[str]:
        """The queries every run has a per-query value for (empty when a run lacks per_query.json's metric)."""
        return set.intersection(*(set(run.query_values(stage, key)) for run in self.runs))

    def query_matrix(self, stage: str, key: MetricKey, queries: list[str]) -> np.ndarray:
        """(S, n): each run's (row, in seed order) value of each of ``queries`` (which every run has)."""
        return np.array([[run.query_values(stage, key)[q] for q in queries] for run in self.runs])

    def interval(self, stage: str, key: MetricKey, resamples: int, seed: int) -> tuple[float, float] | None:
        """95 % interval of the mean when seeds and queries (clusters) are random: the crossed bootstrap over the
        per-query values (None when a run has none); computed once per argument set."""
        cache_key = (stage, key, resamples, seed)
        if cache_key not in self._intervals:
            queries = sorted(self.query_ids(stage, key))
            clusters = cluster_labels(queries, query_clusters(self.runs, key[0]))
            self._intervals[cache_key] = (
                crossed_bootstrap(
                    self.query_matrix(stage, key, queries), None, clusters, False, resamples, seed
                )
                if queries
                else None
            )
        return self._intervals[cache_key]


def config_id(run: Run) -> frozenset:
    return frozenset((k, v) for k, v in run.overrides.items() if k != SEED_KEY and k not in IGNORED_KEYS)


def group_configurations(runs: list[Run]) -> list[Configuration]:
    """The finished runs grouped by their overrides without ``seed``, sorted by the varying overrides."""
    groups: dict[frozenset, list[Run]] = {}
    for run in (r for r in runs if r.ok):
        groups.setdefault(config_id(run), []).append(run)
    members = [sorted(g, key=lambda r: _number_or_text(r.seed)) for g in groups.values()]
    keys = varying_keys([g[0] for g in members])
    return sort_configurations([Configuration(g, keys) for g in members], keys)


def varying_keys(runs: list[Run]) -> list[str]:
    """Override keys other than ``seed`` whose value differs between runs (missing counts), preferred keys first."""
    keys = list(
        dict.fromkeys(k for run in runs for k in run.overrides if k not in IGNORED_KEYS and k != SEED_KEY)
    )
    varying = [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]
    return sorted(
        varying, key=lambda k: PREFERRED_KEYS.index(k) if k in PREFERRED_KEYS else len(PREFERRED_KEYS)
    )


def sort_configurations(configs: list[Configuration], keys: list[str]) -> list[Configuration]:
    """Sort by each varying key in turn: numbers numerically, other values by first appearance."""
    first_seen = {k: list(dict.fromkeys(c.overrides.get(k, "") for c in configs)) for k in keys}

    def value_key(config: Configuration, key: str) -> tuple:
        value = config.overrides.get(key, "")
        number = _as_number(value)
        return (0, number, 0) if number is not None else (1, 0.0, first_seen[key].index(value))

    return sorted(configs, key=lambda c: tuple(value_key(c, k) for k in keys))


def find_configuration(configs: list[Configuration], text: str) -> Configuration:
    """The one configuration whose overrides include every ``key=value`` of ``text`` (e.g. ``"loss=uni_p"``)."""
    items = text.split()
    if not items or not all("=" in item for item in items):
        raise ReportInputError(f"configuration {text!r}: expected key=value pairs, e.g. 'loss=uni_p'")
    wanted = dict(item.partition("=")[::2] for item in items)
    matches = [c for c in configs if all(c.overrides.get(k) == v for k, v in wanted.items())]
    if len(matches) != 1:
        known = "; ".join(c.label for c in configs)
        what = "no configuration" if not matches else f"{len(matches)} configurations"
        raise ReportInputError(f"configuration {text!r} matches {what} (known: {known})")
    return matches[0]


def _as_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _number_or_text(value: str) -> tuple:
    number = _as_number(value)
    return (0, number, "") if number is not None else (1, 0.0, value)
