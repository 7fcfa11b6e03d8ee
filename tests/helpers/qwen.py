"""A Qwen2-style tokenizer without a download: byte-level BPE (Qwen2's pre-tokenizer, no special tokens added to a
text, ``<|endoftext|>`` as EOS and padding) trained on a few sentences, and a 2-layer random Qwen2 beside it."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2Config, Qwen2Tokenizer

CORPUS = (
    "what is lava and how does it flow down the side of a volcano",
    "Instruct: find a passage for young children that explains it simply",
    "Query: the query and the instruction, for experts who want the chemistry | (answer briefly)",
    "cats purr and sleep, dogs bark and fetch, birds sing and fly, fish swim in water",
)


def tiny_qwen_config(vocab_size: int, pad_token_id: int) -> Qwen2Config:
    """A 2-layer, 32-dim Qwen2 (4 heads, 2 key-value heads) for a tokenizer of ``vocab_size``."""
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=pad_token_id,
    )


def write_qwen_tokenizer(folder: Path) -> str:
    """``folder`` with a byte-level BPE ``Qwen2Tokenizer`` whose merges make most corpus words one token."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    bpe.train_from_iterator(list(CORPUS) * 20, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    Qwen2Tokenizer(vocab=model["vocab"], merges=merges).save_pretrained(folder)
    return str(folder)


def write_tiny_qwen(folder: Path) -> str:
    """``folder`` with a 2-layer, 32-dim random Qwen2 and :func:`write_qwen_tokenizer`'s tokenizer."""
    write_qwen_tokenizer(folder)
    vocab = json.loads((Path(folder) / "tokenizer.json").read_text())["model"]["vocab"]
    tiny_qwen_config(len(vocab), vocab["<|endoftext|>"]).save_pretrained(folder)
    return str(folder)
