"""Shared test setup.

The Triton interpreter must be switched on before anything imports triton, so it is set here, at collection time,
when no CUDA device is present. W&B never talks to the network from tests.
"""

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from transformers import AutoTokenizer  # noqa: E402

from helpers import MINILM  # noqa: E402
from helpers.qwen import tiny_qwen_config  # noqa: E402


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> str:
    """A folder with a 2-layer random Qwen2 (the MiniLM tokenizer): decoder presets without a download."""
    folder = tmp_path_factory.mktemp("tiny_qwen")
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    tiny_qwen_config(tokenizer.vocab_size, tokenizer.pad_token_id).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
