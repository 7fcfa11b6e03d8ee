"""The text spec: how a (query, instruction) pair and a passage become token ids — one object, owned by the encoder.

The encoder builds it from its preset; the training collator and every evaluation path receive it from the
encoder (never from a copy of the config), and checkpoints and exports store it, so training and evaluation see
identical token ids for the same text.

The pair text is ``pair_template.format(query=Q, instruction=I)`` with surrounding whitespace stripped (an empty
instruction at evaluation time leaves no dangling separator); the passage text is
``passage_template.format(passage=P)``. Each is tokenised once, as a finished string, truncated to its tower's
maximum length and padded to the longest text of the batch on ``padding_side``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import torch

from infembed.errors import ConfigError, check_choice, check_int

PAIR_FIELDS = ("query", "instruction")
PASSAGE_FIELDS = ("passage",)
PADDING_SIDES = ("right", "left")
TOWERS = ("pair", "passage")
FUSIONS = (
    "concat",
    "attention",
)  # how a pair becomes one vector: one "query instruction" text, or docs/method.md, "Attention fusion"


def check_template(template: str, fields: tuple[str, ...], key: str) -> str:
    """A template must use exactly ``fields``, each at least once (e.g. {query} and {instruction})."""
    try:
        template.format(**dict.fromkeys(fields, ""))
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            f"{key}={template!r}: expected only the fields {list(fields)} ({error!r})"
        ) from None
    missing = [name for name in fields if "{" + name + "}" not in template]
    if missing:
        raise ConfigError(f"{key}={template!r}: expected the fields {list(fields)}, missing {missing}")
    return template


@functools.lru_cache(maxsize=8)
def load_tokenizer(name: str, padding_side: str):
    """One tokenizer per (name, padding side) and process; decoder tokenizers get their EOS as padding."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name)
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:  # decoder tokenizers (Qwen, Llama) ship without one
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@dataclasses.dataclass(frozen=True)
class TextSpec:
    """Templates, lengths, padding side and tokenizer (a hub name or folder, loaded lazily once per process).

    Frozen and made of strings and ints, so it pickles cheaply into DataLoader workers and into checkpoints.
    """

    tokenizer: str
    pair_template: str = "{query} {instruction}"
    passage_template: str = "{passage}"
    max_pair_length: int = 256
    max_passage_length: int = 512
    padding_side: str = "right"

    def __post_init__(self) -> None:
        check_template(self.pair_template, PAIR_FIELDS, "model.pair_template")
        check_template(self.passage_template, PASSAGE_FIELDS, "model.passage_template")
        check_choice(self.padding_side, PADDING_SIDES, "model.padding_side")
        for key in ("max_pair_length", "max_passage_length"):
            check_int(getattr(self, key), f"model.{key}", minimum=1)

    def replace(self, **changes) -> TextSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def hf_tokenizer(self):
        return load_tokenizer(self.tokenizer, self.padding_side)

    def format_pair(self, query: str, instruction: str) -> str:
        """The pair text; an empty instruction leaves just the query (no dangling separator)."""
        return self.pair_template.format(query=query, instruction=instruction).strip()

    def format_passage(self, passage: str) -> str:
        return self.passage_template.format(passage=passage)

    def max_length(self, tower: str) -> int:
        if tower not in TOWERS:
            raise ValueError(f"unknown tower {tower!r}; expected one of {TOWERS}")
        return self.max_pair_length if tower == "pair" else self.max_passage_length

    def tokenize(self, texts: Sequence[str], tower: str) -> dict[str, torch.Tensor]:
        """Finished strings -> {input_ids, attention_mask}: (len(texts), L), L the longest text of the call."""
        if not texts:
            empty = torch.zeros((0, 0), dtype=torch.long)
            return {"input_ids": empty, "attention_mask": empty.clone()}
        encoded = self.hf_tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length(tower), return_tensors="pt"
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


__all__ = ["FUSIONS", "PAIR_FIELDS", "PASSAGE_FIELDS", "TextSpec", "check_template", "load_tokenizer"]
