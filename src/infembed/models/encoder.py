"""Bi-encoder: a Hugging Face backbone, a pooling rule and L2 normalisation.

A pair (instruction I, query Q) is one string built from ``pair_template`` (default ``"{query} {instruction}"``,
query first, as in the paper) and tokenised once; a pair longer than ``max_pair_length`` loses query tokens before
instruction tokens (``truncation="query"``, :mod:`infembed.text`); a passage is tokenised as is. Both go through the
same backbone unless ``separate_passage_tower`` is set. Pooling:

- ``mean``: mean of the last hidden states over non-padding tokens;
- ``cls``: the first token's state;
- ``last``: the last non-padding token's state (decoder backbones; works with left or right padding).

Embeddings are L2-normalised, so a dot product is the cosine similarity used everywhere in the project.

Fusion of the pair (``fusion``): ``concat`` (the default, above) | ``attention`` (docs/method.md, "Attention fusion",
:mod:`infembed.models.fusion`): the query (the pair template with an empty instruction) and the raw instruction are
encoded separately and fused by parameter-free attention of the instruction tokens over the query tokens; the pair
template's instruction slot and ``pooling`` then do not apply to pairs (passages are pooled as usual). An empty
instruction (evaluation without instruction) gives the mean-pooled query.

Scale options: ``gradient_checkpointing`` recomputes each layer in the backward (the backbone's own support,
non-reentrant, so it composes with the gradient cache); ``lora`` = ``{r, alpha, dropout, target_modules}`` trains
low-rank adapters W + (alpha / r)·B·A through ``peft`` on the frozen backbone (null = full fine-tuning).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from infembed.errors import ConfigError, check_choice, check_int, check_number
from infembed.logs import progress
from infembed.models.fusion import attention_fusion, swap_fusion
from infembed.text import FUSIONS, TOWERS, TextSpec

POOLINGS = ("mean", "cls", "last")
PAIR_ONLY_TEXT = ("pair_template", "max_pair_length", "truncation")  # TextSpec fields passages never use


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Reduce token states (B, L, H) to one vector per sequence (B, H) with the padding masked out."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
    if pooling == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, H)
    if pooling == "cls":
        return hidden[:, 0]  # (B, H)
    if pooling == "last":
        # index of the last attended token: works for left padding (always L-1) and right padding alike
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)  # (L,)
        last = (attention_mask.long() * positions).argmax(dim=1)  # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, H)
    raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")


class BiEncoder(nn.Module):
    """Embeds (query, instruction) pairs and passages into one L2-normalised space.

    Args:
        backbone: a Hugging Face hub name or a local folder holding a model and its tokenizer.
        name: the preset's name (W&B tag, reports, model cards); defaults to the backbone.
        pooling: ``mean`` | ``cls`` | ``last`` (``last`` wants ``padding_side="left"`` for decoders).
        normalize: L2-normalise the pooled vectors.
        separate_passage_tower: encode passages with a second copy of the backbone.
        pair_template, passage_template, max_pair_length, max_passage_length, padding_side, truncation: the
            :class:`~infembed.text.TextSpec` (``self.text``) that training and evaluation tokenise with.
        random_init: build the architecture from the backbone's config with random weights (tests, ablations).
        config_overrides: fields replacing those of the backbone's config (e.g. a tiny BERT for tests).
        gradient_checkpointing: recompute the backbone's layers in the backward (activation memory of one layer).
        lora: None (train every weight) or ``{r, alpha, dropout, target_modules}`` (module names, e.g.
            ``[q_proj, k_proj, v_proj, o_proj]``): LoRA adapters on each tower, the backbone frozen.
        fusion: ``concat`` (one "query instruction" text) | ``attention`` (see the module docstring).

    Parts of the backbone that pooling never uses (BERT's pooler) are dropped: they would receive no gradient,
    which DDP rejects.
    """

    def __init__(
        self,
        backbone: str,
        name: str | None = None,
        pooling: str = "mean",
        normalize: bool = True,
        separate_passage_tower: bool = False,
        pair_template: str = "{query} {instruction}",
        passage_template: str = "{passage}",
        max_pair_length: int = 256,
        max_passage_length: int = 512,
        padding_side: str = "right",
        truncation: str = "query",
        random_init: bool = False,
        config_overrides: dict | None = None,
        gradient_checkpointing: bool = False,
        lora: dict | None = None,
        fusion: str = "concat",
    ) -> None:
        super().__init__()
        check_choice(pooling, POOLINGS, "model.pooling")
        check_choice(fusion, FUSIONS, "model.fusion")
        self.fusion = fusion
        self.text = TextSpec(
            str(backbone),
            pair_template,
            passage_template,
            max_pair_length,
            max_passage_length,
            padding_side,
            truncation,
        )
        self.backbone_name = str(backbone)
        self.name = name or self.backbone_name
        self.pooling = pooling
        self.normalize = normalize
        self.lora = _check_lora(lora)
        towers = 2 if separate_passage_tower else 1
        backbones = [_load_backbone(self.backbone_name, random_init, config_overrides) for _ in range(towers)]
        backbones = [_with_lora(_with_checkpointing(b, gradient_checkpointing), self.lora) for b in backbones]
        self.backbone = backbones[0]
        self.passage_backbone = backbones[1] if separate_passage_tower else None

    @property
    def dim(self) -> int:
        return self.backbone.config.hidden_size

    @property
    def tokenizer(self):
        return self.text.hf_tokenizer

    def options(self) -> dict:
        """Everything but the backbone that rebuilds this encoder: ``BiEncoder(backbone, **options())``."""
        return {
            "name": self.name,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "separate_passage_tower": self.passage_backbone is not None,
            "lora": self.lora,
            "fusion": self.fusion,
            **{k: v for k, v in self.text.as_dict().items() if k != "tokenizer"},
        }

    def token_states(self, tokens: dict[str, torch.Tensor], tower: str) -> torch.Tensor:
        """Token ids (B, L) + attention mask (B, L) -> the tower's last hidden states (B, L, D)."""
        if tower not in TOWERS:
            raise ValueError(f"unknown tower {tower!r}; expected one of {TOWERS}")
        model = (
            self.passage_backbone
            if tower == "passage" and self.passage_backbone is not None
            else self.backbone
        )
        return model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state

    def _finish(self, vectors: torch.Tensor) -> torch.Tensor:
        """(..., D) -> float32, L2-normalised when ``normalize``."""
        return nn.functional.normalize(vectors.float(), dim=-1) if self.normalize else vectors.float()

    def forward(self, tokens: dict[str, torch.Tensor], tower: str = "pair") -> torch.Tensor:
        """Token ids (B, L) + attention mask (B, L) -> embeddings (B, D): pooled passages, or concatenated pairs."""
        if tower == "pair" and self.fusion == "attention":
            raise ValueError(
                "fusion='attention' embeds pairs from query and instruction tokens: use encode_fused"
            )
        hidden = self.token_states(tokens, tower)  # (B, L, D)
        return self._finish(pool(hidden, tokens["attention_mask"], self.pooling))  # (B, D)

    def encode_fused(
        self,
        queries: dict[str, torch.Tensor],
        instructions: dict[str, torch.Tensor],
        swap_index: torch.Tensor | None = None,
        instruction_present: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The attention fusion: query tokens (N, Lq) and instruction tokens (N, Li), one pass each ->
        (z (N, D), z_{i←j} (N, K, D) for ``swap_index`` (N, K) into the instructions, else None).

        ``instruction_present`` (N,) bool: False for an empty instruction text, whose tokens (only special ones)
        then leave the fusion (the mean-pooled query, see :mod:`infembed.models.fusion`).
        """
        h_q = self.token_states(queries, "pair")  # (N, Lq, D)
        h_i = self.token_states(instructions, "pair")  # (N, Li, D)
        q_mask, i_mask = queries["attention_mask"], instructions["attention_mask"]  # (N, Lq), (N, Li)
        if instruction_present is not None:
            i_mask = i_mask * instruction_present[:, None].to(i_mask.dtype)  # (N, Li)
        z = self._finish(attention_fusion(h_q, q_mask, h_i, i_mask))  # (N, D)
        if swap_index is None:
            return z, None
        return z, self._finish(swap_fusion(h_q, q_mask, h_i, i_mask, swap_index))  # (N, K, D)

    def encode_pairs(
        self,
        queries: Sequence[str],
        instructions: Sequence[str],
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> torch.Tensor:
        """Embed (query, instruction) pairs -> (n, D) float32 on CPU, in input order.

        With ``fusion="attention"`` an empty (or blank) instruction gives the mean-pooled query."""
        if len(queries) != len(instructions):
            raise ValueError(f"{len(queries)} queries but {len(instructions)} instructions")
        if self.fusion == "attention":

            def fused(idx: list[int]) -> torch.Tensor:
                return self._fused([queries[i] for i in idx], [instructions[i] for i in idx])  # (b, D)

            lengths = [len(self.text.format_pair(q, "")) + len(i) for q, i in zip(queries, instructions)]
            return self._batched(lengths, batch_size, "pair", show_progress, fused)

        def embed(idx: list[int]) -> torch.Tensor:
            tokens = self.text.tokenize_pairs([queries[i] for i in idx], [instructions[i] for i in idx])
            return self(self._on_device(tokens), "pair")  # (b, D)

        lengths = [len(self.text.format_pair(q, i)) for q, i in zip(queries, instructions)]
        return self._batched(lengths, batch_size, "pair", show_progress, embed)

    def _fused(self, queries: list[str], instructions: list[str]) -> torch.Tensor:
        """One inference batch of the attention fusion -> (b, D); empty instructions give the mean-pooled query.
        The query side is the pair template with an empty instruction (so e5's prefix stays)."""
        query_tokens = self._on_device(self.text.tokenize_pairs(queries, [""] * len(queries)))
        tokens = self._on_device(self.text.tokenize(instructions, "pair"))
        device = tokens["input_ids"].device
        present = torch.tensor([bool(i.strip()) for i in instructions], device=device)  # (b,)
        return self.encode_fused(query_tokens, tokens, instruction_present=present)[0]

    def _on_device(self, tokens: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device = next(self.parameters()).device
        return {k: v.to(device) for k, v in tokens.items()}

    def encode_passages(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False
    ) -> torch.Tensor:
        """Embed passages -> (n, D) float32 on CPU, in input order."""
        texts = [self.text.format_passage(t) for t in texts]
        return self.encode_texts(texts, "passage", batch_size, show_progress)

    def encode_texts(
        self, texts: list[str], tower: str, batch_size: int = 64, show_progress: bool = False
    ) -> torch.Tensor:
        """Finished texts of one tower -> (n, D) float32 on CPU, in input order."""

        def embed(idx: list[int]) -> torch.Tensor:
            return self(self._on_device(self.text.tokenize([texts[i] for i in idx], tower)), tower)  # (b, D)

        return self._batched([len(t) for t in texts], batch_size, tower, show_progress, embed)

    @torch.inference_mode()
    def _batched(
        self, lengths: list[int], batch_size: int, tower: str, show_progress: bool, embed
    ) -> torch.Tensor:
        """Batched inference sorted by length (less padding): ``embed(indices) -> (b, D)``, results in input order."""
        was_training = self.training
        self.eval()
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        out = torch.empty(len(lengths), self.dim, dtype=torch.float32)
        batches = range(0, len(lengths), batch_size)
        if show_progress:  # a bar in a terminal, lines with an ETA in a file
            batches = progress(batches, len(batches), f"encode {tower}s", unit="batch")
        for start in batches:
            idx = order[start : start + batch_size]
            out[idx] = embed(idx).float().cpu()
        self.train(was_training)
        return out

    def fingerprint(self, passages_only: bool = False) -> str:
        """Stable hash of the backbone name, pooling, fusion, text spec and every weight: a key for embedding caches.

        ``passages_only``: only what passage embeddings depend on (the pair template, pair length, truncation rule
        and fusion left out), so a corpus cache survives a change of how queries are written.
        """
        text = self.text.as_dict()
        if passages_only:
            text = {k: v for k, v in text.items() if k not in PAIR_ONLY_TEXT}
        digest = hashlib.blake2b(digest_size=16)
        header = [self.backbone_name, self.pooling, self.normalize, *([] if passages_only else [self.fusion])]
        digest.update("|".join(map(str, [*header, *text.values()])).encode())
        for name, tensor in self.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


def _load_backbone(name: str, random_init: bool, config_overrides: dict | None) -> nn.Module:
    if not random_init and not config_overrides:
        return _without_pooler(AutoModel.from_pretrained(name))
    config = AutoConfig.from_pretrained(name)
    for key, value in (config_overrides or {}).items():
        if not hasattr(config, key):
            raise ConfigError(f"model.config_overrides: {type(config).__name__} has no field {key!r}")
        setattr(config, key, value)
    if not random_init:
        raise ConfigError("model.config_overrides change the architecture: they need model.random_init=true")
    return _without_pooler(AutoModel.from_config(config))


LORA_KEYS = ("r", "alpha", "dropout", "target_modules")


def _check_lora(lora: dict | None) -> dict | None:
    """``model.lora``: None or exactly {r: int >= 1, alpha: number > 0, dropout: [0, 1), target_modules: names}."""
    if lora is None:
        return None
    lora = dict(lora)
    if set(lora) != set(LORA_KEYS):
        raise ConfigError(f"model.lora={lora}: expected null or the keys {list(LORA_KEYS)}")
    r, alpha, dropout, targets = (lora[k] for k in LORA_KEYS)
    check_int(r, "model.lora.r", minimum=1)
    check_number(alpha, "model.lora.alpha", 0, bounds="(]")
    check_number(dropout, "model.lora.dropout", 0, 1, bounds="[)")
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) for t in targets):
        raise ConfigError(f"model.lora.target_modules={targets!r}: expected a non-empty list of module names")
    return {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": list(targets)}


def _with_checkpointing(model: nn.Module, enabled: bool) -> nn.Module:
    if enabled:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ConfigError(
                f"model.gradient_checkpointing=true: {type(model).__name__} does not support it"
            )
        kwargs = {
            "use_reentrant": False
        }  # recompute inside any backward, also the gradient cache's chunk passes
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return model


def _with_lora(model: nn.Module, lora: dict | None) -> nn.Module:
    """The backbone wrapped by peft with trainable adapters (everything else frozen), or as is."""
    if lora is None:
        return model
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in lora["target_modules"] if t not in names]
    if missing:
        raise ConfigError(f"model.lora.target_modules: {type(model).__name__} has no modules named {missing}")
    config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"],
    )
    return get_peft_model(model, config)


def merged_backbone(encoder: BiEncoder) -> nn.Module:
    """The pair backbone as a plain Hugging Face model: LoRA adapters merged into the weights (W + (alpha/r)·B·A),
    in place (the encoder keeps no adapters afterwards; export loads a fresh one from the checkpoint)."""
    return encoder.backbone.merge_and_unload() if encoder.lora is not None else encoder.backbone


def _without_pooler(model: nn.Module) -> nn.Module:
    """Drop a BERT-style pooler head: token pooling never uses it, so DDP would find unused parameters."""
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


__all__ = ["POOLINGS", "BiEncoder", "merged_backbone", "pool"]
