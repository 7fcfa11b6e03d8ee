"""One rule for "is this a Hugging Face hub id or a local path", shared by the training sources and the benchmarks."""

from __future__ import annotations

import re
from pathlib import Path

FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".tsv", ".csv")
_HUB_ID = re.compile(
    r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*"
)  # "org/name": one slash, no glob, no path prefix


def is_hub_id(source: str) -> bool:
    """True for ``"org/name"`` (e.g. ``"InF-IR/InF-IR"``) that is not a path on disk and does not end like a file.

    Everything else is local: ``/abs``, ``./rel``, ``~/x``, ``a/b/c``, ``x.jsonl``, ``d/*.jsonl``, a bare ``name``.
    """
    return (
        bool(_HUB_ID.fullmatch(source)) and not source.endswith(FILE_SUFFIXES) and not Path(source).exists()
    )


__all__ = ["is_hub_id"]
