"""Tiny InF-IR rows, fixed batches and a plain SGD loop for comparing training paths exactly."""

from __future__ import annotations

import torch

from infembed.data.collator import TripletCollator
from infembed.models.module import RetrievalModule


def row(n: int, vary_lengths: bool = False) -> dict:
    """InF-IR row ``n`` of a tiny topic family (``vary_lengths``: texts of three lengths, so chunks pad differently)."""
    extra = " and more words" * (n % 3) if vary_lengths else ""
    return {
        "query_positive": f"what is topic {n}{extra}",
        "query_negative": f"who invented topic {n}",
        "instruction_positive": "for children",
        "instruction_negative": f"for experts number {n}{extra}",
        "document_positive": f"kids topic {n} is fun{extra}",
        "hard_negative_document_1": f"technical analysis of topic {n}",
        "hard_negative_document_2": f"the inventor of topic {n}{extra}{extra}",
    }


def batches(module: RetrievalModule, steps: int = 3, rows: int = 2, offset: int = 0) -> list:
    collator = TripletCollator(module.encoder.text, num_swap_negatives=2, seed=1)
    return [
        collator([row(offset + rows * s + r, vary_lengths=True) for r in range(rows)]) for s in range(steps)
    ]


def train(module: RetrievalModule, data: list, sync=None, call=None) -> dict:
    """SGD steps on fixed batches from a fixed random state -> the final weights (``call``: e.g. a DDP wrapper
    whose forward is ``embed_batch``; ``sync``: run after each backward)."""
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    torch.manual_seed(1)
    for batch in data:
        optimizer.zero_grad()
        module.loss_fn(**(call or module.embed_batch)(batch)).loss.backward()
        if sync is not None:
            sync(module)
        optimizer.step()
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def max_diff(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def same(a, b) -> bool:
    """Exact equality of nested checkpoint values (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
