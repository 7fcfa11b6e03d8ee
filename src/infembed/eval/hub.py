"""Hugging Face hub tables for the benchmark readers (needs internet; ``datasets`` is imported lazily).

``infembed.eval.benchmarks.load_hub_benchmark`` checks and converts these tables exactly as it reads local folders.
Layouts (as mteb's loaders read them; not verified against the hub from this offline machine):

- FollowIR (e.g. ``jhu-clsp/robust04-instructions``, ``jhu-clsp/core17-instructions``,
  ``jhu-clsp/news21-instructions`` and their ``-mteb`` copies): configs ``corpus`` (``_id``, ``title``, ``text``),
  ``queries`` (``_id``, ``text``, ``instruction_og``, ``instruction_changed``), ``qrels_og`` and ``qrels_changed``
  (split ``test``: ``query-id``, ``corpus-id``, ``score``) and ``top_ranked`` (``qid``, ``pid``: the pool to rerank).
- BEIR-style (e.g. ``mteb/<task>`` datasets, InstructIR-style copies with an ``instruction`` column): configs
  ``corpus``, ``queries`` (optional ``instruction``) and the default config holding the qrels per split.

``fmt="auto"`` picks FollowIR when the dataset has a ``qrels_og`` config.
"""

from __future__ import annotations


def config_names(name: str) -> list[str]:
    import datasets

    return datasets.get_dataset_config_names(name)


def table(name: str, config: str | None, split: str | None = None):
    """The rows of one config: its ``split``, or its first split when ``split`` is None (corpus, queries).

    Raises ``LookupError`` naming the splits that exist when ``split`` is not one of them.
    """
    import datasets

    splits = datasets.load_dataset(name, config)
    if split is None:
        return next(iter(splits.values()))
    if split not in splits:
        raise LookupError(f"no split {split!r}; expected one of {sorted(splits)}")
    return splits[split]


__all__ = ["config_names", "table"]
