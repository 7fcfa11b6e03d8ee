"""Instruction-sensitivity check on InF-IR held-out rows (docs/method.md, "Metrics").

For each row with positive (I+, Q+, P+), poisoned instruction I- and poisoned query Q-:

    hit = s(z(I+, Q+), P+) > s(z(I-, Q+), P+)  and  s(z(I+, Q+), P+) > s(z(I+, Q-), P+)

sensitivity = mean(hit) over rows, in [0, 1] (ties count as misses).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from infembed.data.schema import validate_row
from infembed.eval.benchmarks import BenchmarkDataError, iter_jsonl


def read_heldout(path: str | os.PathLike) -> list[dict[str, str]]:
    """InF-IR rows, validated by the training schema (:func:`infembed.data.schema.validate_row`)."""
    path = Path(path)
    rows = [validate_row(row, str(path), f"line {lineno}") for lineno, row in iter_jsonl(path, ())]
    if not rows:
        raise BenchmarkDataError(f"{path}: no rows")
    return rows


def instruction_hits(encoder, rows: list[dict[str, str]], batch_size: int = 64) -> list[float]:
    """Per row: 1.0 when P+ prefers (I+, Q+) over both (I-, Q+) and (I+, Q-), else 0.0."""
    q_pos = [r["query_positive"] for r in rows]
    i_pos = [r["instruction_positive"] for r in rows]
    pairs_q = q_pos + q_pos + [r["query_negative"] for r in rows]
    pairs_i = i_pos + [r["instruction_negative"] for r in rows] + i_pos
    z = encoder.encode_pairs(pairs_q, pairs_i, batch_size=batch_size).view(3, len(rows), -1)  # (3, R, D)
    p = encoder.encode_passages([r["document_positive"] for r in rows], batch_size=batch_size)  # (R, D)
    scores = (z * p.unsqueeze(0)).sum(-1)  # (3, R): positive, instruction-poisoned, query-poisoned
    hits = (scores[0] > scores[1]) & (scores[0] > scores[2])  # (R,)
    return hits.to(torch.float64).tolist()


def instruction_sensitivity(encoder, rows: list[dict[str, str]], batch_size: int = 64) -> float:
    """Share of rows where P+ prefers (I+, Q+) over both (I-, Q+) and (I+, Q-)."""
    hits = instruction_hits(encoder, rows, batch_size)
    return sum(hits) / len(hits)


__all__ = ["instruction_hits", "instruction_sensitivity", "read_heldout"]
