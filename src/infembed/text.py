"""The text spec: how a (query, instruction) pair and a passage become token ids — one object, owned by the encoder.

The encoder builds it from its preset; the training collator and every evaluation path receive it from the
encoder (never from a copy of the config), and checkpoints and exports store it, so training and evaluation see
identical token ids for the same text.

The pair text is ``pair_template.format(query=Q, instruction=I)`` with surrounding whitespace stripped (an empty
instruction at evaluation time leaves no dangling separator); the passage text is
``passage_template.format(passage=P)``. Each is tokenised once, as a finished string, and padded to the longest text
of the batch on ``padding_side``. A passage longer than ``max_passage_length`` loses its end. A pair longer than
``max_pair_length`` is cut by ``truncation``:

- ``query`` (the default): the finished string's tokens are split, by their character offsets, into query tokens,
  instruction tokens and the rest (special tokens, template text; a token that overlaps a field belongs to it).
  With R the rest's count and M = max_pair_length the pair keeps

      the rest, the first min(n_I, M − R) instruction tokens, the first M − R − (kept instruction) query tokens,

  in their original order: the query is cut first, the instruction only when it alone exceeds the room left by the
  template, whatever the template puts where. The kept ids are a subset of the finished string's ids (never a
  re-tokenisation of pieces), so a pair that fits is tokenised exactly as before;
- ``end``: the tokenizer's own truncation, the end of the string is cut (the instruction first under the default
  ``"{query} {instruction}"``; the behaviour before ``truncation`` existed).
"""

from __future__ import annotations

import dataclasses
import functools
import string
from collections.abc import Sequence

import torch

from infembed.errors import ConfigError, check_choice, check_int

PAIR_FIELDS = ("query", "instruction")
PASSAGE_FIELDS = ("passage",)
PADDING_SIDES = ("right", "left")
TOWERS = ("pair", "passage")
# what a pair longer than max_pair_length loses: query tokens first | the string's end (module docstring)
TRUNCATIONS = ("query", "end")
Tokens = dict[str, torch.Tensor]  # {input_ids, attention_mask}: (B, L)
Spans = list[tuple[int, int]]  # [start, end) character ranges of one field's values in a pair text
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
    if any(spec and "{" in spec for _, _, spec, _ in _template_parts(template)):
        raise ConfigError(f"{key}={template!r}: a field inside a format spec is not supported")
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
    truncation: str = "query"

    def __post_init__(self) -> None:
        check_template(self.pair_template, PAIR_FIELDS, "model.pair_template")
        check_template(self.passage_template, PASSAGE_FIELDS, "model.passage_template")
        check_choice(self.padding_side, PADDING_SIDES, "model.padding_side")
        check_choice(self.truncation, TRUNCATIONS, "model.truncation")
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
        return self.pair_layout(query, instruction)[0]

    def pair_layout(self, query: str, instruction: str) -> tuple[str, dict[str, Spans]]:
        """(the pair text of :meth:`format_pair`, {field: character spans of its values in that text})."""
        formatter = string.Formatter()
        values = {"query": query, "instruction": instruction}
        pieces, spans, at = [], {field: [] for field in PAIR_FIELDS}, 0
        for literal, field, spec, conversion in _template_parts(self.pair_template):
            pieces.append(literal)
            at += len(literal)
            if field is None:
                continue
            value = formatter.convert_field(formatter.get_field(field, (), values)[0], conversion)
            piece = formatter.format_field(value, spec)
            spans[_field_root(field)].append((at, at + len(piece)))
            pieces.append(piece)
            at += len(piece)
        raw = "".join(pieces)
        text = raw.strip()
        lead = len(raw) - len(raw.lstrip())

        def clip(position: int) -> int:  # a position in the raw text -> in the stripped text
            return min(max(position - lead, 0), len(text))

        return text, {field: [(clip(a), clip(b)) for a, b in found] for field, found in spans.items()}

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

    def tokenize_pairs(self, queries: Sequence[str], instructions: Sequence[str]) -> Tokens:
        """(query, instruction) pairs -> {input_ids, attention_mask}: (n, L), each pair cut by ``truncation``
        (module docstring) to at most max_pair_length tokens, L the longest pair of the call."""
        if len(queries) != len(instructions):
            raise ValueError(f"{len(queries)} queries but {len(instructions)} instructions")
        if self.truncation == "end" or not queries:
            return self.tokenize([self.format_pair(q, i) for q, i in zip(queries, instructions)], "pair")
        layouts = [self.pair_layout(q, i) for q, i in zip(queries, instructions)]
        return self._cut_query_first([text for text, _ in layouts], [spans for _, spans in layouts])

    def _cut_query_first(self, texts: list[str], spans: list[dict[str, Spans]]) -> Tokens:
        """The finished strings tokenised once, untruncated; the over-long ones keep the tokens the rule keeps."""
        tokenizer = self.hf_tokenizer
        if not tokenizer.is_fast:
            raise ConfigError(
                f"model.truncation=query needs a fast tokenizer (token offsets); {self.tokenizer} has none: "
                "use model.truncation=end"
            )
        encoded = tokenizer(
            texts,
            padding=True,
            truncation=False,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_tensors="np",  # numpy, then shared with torch: faster than the tokenizer's own torch tensors
            verbose=False,  # no warning about texts above the model's maximum: they are cut below
        )
        encoded = {key: torch.from_numpy(value).long() for key, value in encoded.items()}
        ids, attention = encoded["input_ids"], encoded["attention_mask"]  # (n, L), (n, L)
        limit = self.max_pair_length
        if ids.shape[1] <= limit:  # every pair fits: the tokenizer's ids and masks as they are
            return {"input_ids": ids, "attention_mask": attention}
        offsets = encoded["offset_mapping"]  # (n, L, 2)
        real = attention.bool() & ~encoded["special_tokens_mask"].bool() & (offsets[..., 1] > offsets[..., 0])
        in_query = real & _overlaps(offsets, [s["query"] for s in spans])  # (n, L)
        in_instruction = real & ~in_query & _overlaps(offsets, [s["instruction"] for s in spans])  # (n, L)
        rest = attention.sum(1) - in_query.sum(1) - in_instruction.sum(1)  # (n,)
        if (rest > limit).any():
            raise ConfigError(
                f"model.max_pair_length={limit}: the pair template {self.pair_template!r} and the special tokens "
                f"alone take {int(rest.max())} tokens"
            )
        kept_instruction = torch.minimum(in_instruction.sum(1), limit - rest)  # (n,)
        kept_query = torch.minimum(in_query.sum(1), limit - rest - kept_instruction)  # (n,)
        keep = attention.bool() & ~in_query & ~in_instruction  # (n, L) the rest
        keep |= in_query & (in_query.cumsum(1) <= kept_query[:, None])  # the first kept_query query tokens
        keep |= in_instruction & (in_instruction.cumsum(1) <= kept_instruction[:, None])
        return self._compact(ids, keep)

    def _compact(self, ids: torch.Tensor, keep: torch.Tensor) -> Tokens:
        """ids (n, L) and keep (n, L) bool -> the kept ids in order, padded on ``padding_side``: (n, max kept)."""
        lengths = keep.sum(1)  # (n,)
        width = int(lengths.max())
        column = keep.long().cumsum(1) - 1  # (n, L) position among the kept tokens of its row
        if self.padding_side == "left":
            column += width - lengths[:, None]
        rows = torch.arange(ids.shape[0])[:, None].expand_as(ids)  # (n, L)
        out = torch.full((ids.shape[0], width), self.hf_tokenizer.pad_token_id, dtype=ids.dtype)  # (n, W)
        mask = torch.zeros((ids.shape[0], width), dtype=torch.long)  # (n, W)
        out[rows[keep], column[keep]] = ids[keep]
        mask[rows[keep], column[keep]] = 1
        return {"input_ids": out, "attention_mask": mask}


@functools.lru_cache(maxsize=16)
def _template_parts(template: str) -> tuple[tuple[str, str | None, str | None, str | None], ...]:
    """``string.Formatter().parse``: (literal text, field name, format spec, conversion) per piece."""
    return tuple(string.Formatter().parse(template))


def _field_root(field: str) -> str:
    """``"query"`` of ``query``, ``query.attr`` or ``query[0]``."""
    return field.partition(".")[0].partition("[")[0]


def _overlaps(offsets: torch.Tensor, spans: list[Spans]) -> torch.Tensor:
    """Token offsets (n, L, 2) and per row the same number S of [start, end) spans -> (n, L) bool: the token's
    characters overlap one of its row's spans."""
    bounds = torch.tensor(spans, dtype=offsets.dtype).reshape(offsets.shape[0], -1, 2)  # (n, S, 2)
    start, end = offsets[..., 0, None], offsets[..., 1, None]  # (n, L, 1)
    return ((start < bounds[:, None, :, 1]) & (end > bounds[:, None, :, 0])).any(-1)  # (n, L)


__all__ = [
    "FUSIONS",
    "PAIR_FIELDS",
    "PASSAGE_FIELDS",
    "TRUNCATIONS",
    "TextSpec",
    "check_template",
    "load_tokenizer",
]
