"""Shared test setup.

The Triton interpreter must be switched on before anything imports triton, so it is set here, at collection time,
when no CUDA device is present. W&B never talks to the network from tests.
"""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
