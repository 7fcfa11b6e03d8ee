"""Gradient cache (GradCache, Gao et al. 2021): the encoder's memory independent of the batch, gradients exact.

A contrastive loss couples every embedding of the step, so the encoder's activations for all texts are normally
alive together. With a chunk size c, for each group of texts X (pairs, passages, swap pairs) of the step:

    pass 1  e = cat_k E(X_k)           without a graph, chunk by chunk (X_k: c texts, padded to their own longest)
    loss    L(e, ...)                  on the embeddings, with the cross-device gather as usual
    pass 2  for each chunk k: re-encode E(X_k) with a graph and back-propagate ∂L/∂e_k, then free its graph

By the chain rule  ∂L/∂θ = Σ_k (∂e_k/∂θ)ᵀ ∂L/∂e_k,  which is the plain step's gradient as long as pass 2 computes
the same e_k as pass 1: each chunk records the random state (CPU and its CUDA device) and the autocast state
before pass 1 and replays them in pass 2, so dropout draws the same masks (sentence-transformers' RandContext).
Peak memory: the embeddings (N, D) plus one chunk's activations, instead of every text's activations.

Pass 2 runs inside the backward of the returned loss (like reentrant activation checkpointing), so the trainer's
backward, gradient accumulation, loss scaling, clipping and scheduler are unchanged. Each chunk's backward is a
separate autograd pass, which DDP's per-parameter hooks cannot follow: :func:`disable_ddp_sync` switches them off
and :func:`all_reduce_gradients` averages the gradients once per optimiser step instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from infembed.errors import ConfigError


def check_fusion(chunk_size: int | None, fusion: str) -> None:
    """The gradient cache caches pooled embeddings; the attention fusion needs the token states of the step."""
    if chunk_size is not None and fusion == "attention":
        raise ConfigError(
            f"grad_cache.chunk_size={chunk_size} with model.fusion=attention: the gradient cache keeps pooled "
            "embeddings, the attention fusion needs token states; use grad_cache.chunk_size=null"
        )


Tokens = dict[str, Tensor]  # {input_ids, attention_mask}: (B, L)
Encode = Callable[[Tokens], Tensor]  # tokens (B, L) -> embeddings (B, D) float32


def chunks(tokens: Tokens, size: int) -> Iterator[Tokens]:
    """Consecutive slices of ``size`` sequences, each cut to the columns its own texts attend to (left or right
    padding alike), so a chunk of short texts is not padded to the batch's longest."""
    for start in range(0, tokens["attention_mask"].shape[0], size):
        mask = tokens["attention_mask"][start : start + size]  # (c, L)
        used = mask.any(0).nonzero().squeeze(1)  # attended columns: one contiguous range
        lo, hi = (int(used[0]), int(used[-1]) + 1) if used.numel() else (0, mask.shape[1])
        yield {key: value[start : start + size, lo:hi] for key, value in tokens.items()}  # (c, l)


class _RandomState:
    """The CPU generator, the CUDA generator of ``device`` (if any) and the autocast state at capture time."""

    def __init__(self, device: torch.device) -> None:
        self.device = device if device.type == "cuda" else None
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(self.device) if self.device is not None else None
        kind = device.type if device.type in ("cuda", "cpu") else "cpu"
        self.autocast = {
            "device_type": kind,
            "enabled": torch.is_autocast_enabled(kind),
            "dtype": torch.get_autocast_dtype(kind),
        }

    def replay(self, fn: Callable[[], Tensor]) -> Tensor:
        """``fn()`` under the captured random and autocast state; the ambient random state is left untouched."""
        with torch.random.fork_rng(devices=[self.device] if self.device is not None else []):
            torch.set_rng_state(self.cpu)
            if self.device is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            with torch.autocast(**self.autocast):
                return fn()


class _CachedEncode(torch.autograd.Function):
    """Forward: pass 1 (no graph). Backward: pass 2, chunk by chunk, then no gradient for the anchor."""

    @staticmethod
    def forward(ctx, anchor: Tensor, encode: Encode, tokens: Tokens, size: int) -> Tensor:
        ctx.encode, ctx.pieces = encode, []
        outputs = []
        for piece in chunks(tokens, size):
            ctx.pieces.append((piece, _RandomState(piece["input_ids"].device)))
            outputs.append(encode(piece))  # (c, D), no graph: forward of a Function runs without grad
        return torch.cat(outputs)  # (B, D)

    @staticmethod
    def backward(ctx, grad: Tensor):
        start = 0
        for piece, state in ctx.pieces:
            with torch.enable_grad():
                embeddings = state.replay(functools.partial(ctx.encode, piece))  # (c, D), with a graph
            torch.autograd.backward(embeddings, grad[start : start + embeddings.shape[0]])
            start += embeddings.shape[0]
        ctx.pieces = None
        return None, None, None, None


def cached_encode(encode: Encode, tokens: Tokens, size: int) -> Tensor:
    """``encode(tokens)`` (B, D) in chunks of ``size`` whose graph is rebuilt chunk by chunk in the backward."""
    anchor = torch.empty(0, requires_grad=True)  # gives the output a grad_fn; receives no gradient
    return _CachedEncode.apply(anchor, encode, tokens, size)


def disable_ddp_sync(model: nn.Module) -> None:
    """Switch off DDP's gradient hooks for the whole fit (what ``no_sync()`` does for one step)."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model.require_backward_grad_sync = False


def all_reduce_gradients(parameters: list[nn.Parameter]) -> None:
    """Average the gradients of ``parameters`` (those that require one) over the ranks, one flat all-reduce per
    dtype; a parameter without a gradient counts as zero. No-op without a process group of W > 1."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    for dtype in dict.fromkeys(p.grad.dtype for p in params):  # the same order on every rank
        grads = [p.grad for p in params if p.grad.dtype == dtype]
        flat = torch._utils._flatten_dense_tensors(grads)  # (Σ numel,)
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        for grad, reduced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            grad.copy_(reduced)


__all__ = ["all_reduce_gradients", "cached_encode", "chunks", "disable_ddp_sync"]
