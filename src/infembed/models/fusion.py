"""Instruction-query attention fusion (docs/method.md, "Attention fusion"): the pair embedding from separately encoded I and Q.

The instruction I and the query Q go through the pair backbone separately (token states H_I (Li, D), H_Q (Lq, D),
after the last layer); then, parameter-free,

    A = softmax_s( H_I H_Qᵀ / √D )          (Li, Lq)  row t: how instruction token t attends over the query tokens
    z = mean_{t : I token t not padding} (A H_Q)[t]      (D,)   then L2-normalised by the encoder

with the query's padding masked out of the softmax (its columns get -inf) and the instruction's padding left out of
the mean. Special tokens ([CLS], [SEP], a decoder's EOS) count as tokens on both sides. An instruction with no
token (all-zero mask: the encoder's rule for an empty instruction text, i.e. evaluation without instruction) falls
back to the mean of the query's token states, the ``mean`` pooling of the query alone.

Swap negatives need no encoder pass: z_{i←j} = fuse(H_Q[i], H_I[j]) for the instruction j sampled for query i.

Texts (the encoder's ``encode_pairs`` and the training collator alike): the query side is the pair template with an
empty instruction, ``text.format_pair(query, "")`` (so e5's ``"query: "`` prefix stays); the instruction is its raw
text (the pair template does not apply to it). Both are tokenised as the ``pair`` tower (max_pair_length).
"""

from __future__ import annotations

import math

import torch


def attention_fusion(
    query_states: torch.Tensor,
    query_mask: torch.Tensor,
    instruction_states: torch.Tensor,
    instruction_mask: torch.Tensor,
) -> torch.Tensor:
    """(B, Lq, D), (B, Lq), (B, Li, D), (B, Li) -> z (B, D) float32, not normalised (see the module docstring)."""
    h_q, h_i = query_states.float(), instruction_states.float()
    q_mask, i_mask = query_mask.bool(), instruction_mask.float()
    scores = h_i @ h_q.transpose(1, 2) / math.sqrt(h_q.shape[-1])  # (B, Li, Lq)
    scores = scores.masked_fill(~q_mask[:, None, :], float("-inf"))
    attended = scores.softmax(dim=-1) @ h_q  # (B, Li, D); every query has >= 1 token, so no row is all -inf
    counts = i_mask.sum(1, keepdim=True)  # (B, 1)
    fused = (attended * i_mask[..., None]).sum(1) / counts.clamp_min(1.0)  # (B, D)
    q_weights = q_mask.float()[..., None]  # (B, Lq, 1)
    query_mean = (h_q * q_weights).sum(1) / q_weights.sum(1).clamp_min(1.0)  # (B, D)
    return torch.where(counts > 0, fused, query_mean)  # (B, D): empty instruction -> mean-pooled query


def swap_fusion(
    query_states: torch.Tensor,
    query_mask: torch.Tensor,
    instruction_states: torch.Tensor,
    instruction_mask: torch.Tensor,
    swap_index: torch.Tensor,
) -> torch.Tensor:
    """z_{i←j}: query i's states (N, Lq, D) with instruction ``swap_index[i, k]``'s states (M, Li, D) -> (N, K, D).

    One fusion per swap slot k, so the gathered instruction states take (N, Li, D) at a time, not (N, K, Li, D).
    """
    slots = [
        attention_fusion(query_states, query_mask, instruction_states[j], instruction_mask[j])  # (N, D)
        for j in swap_index.unbind(1)  # (N,) per slot
    ]
    return torch.stack(slots, dim=1)  # (N, K, D)


__all__ = ["attention_fusion", "swap_fusion"]
