"""infembed: instruction-following retrieval embeddings (InF-IR / InF-Embed) with Lightning, Hydra and fused
Triton losses. Commands: ``infembed`` (train / evaluate), ``infembed-export``, ``infembed-report``, ``infembed-mteb``."""

__version__ = "0.1.0"
