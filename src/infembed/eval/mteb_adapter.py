"""Expose a BiEncoder as an ``mteb`` encoder (optional dependency: ``pip install mteb``), so FollowIR, InstructIR,
MAIR and BRIGHT run through mteb::

    import mteb
    from infembed.eval.mteb_adapter import MTEBEncoder
    model = MTEBEncoder(encoder)                       # encoder: BiEncoder, e.g. a checkpoint's
    mteb.MTEB(tasks=mteb.get_tasks(tasks=["Robust04InstructionRetrieval"])).run(model)

mteb tells queries from passages with ``prompt_type`` (``PromptType.query`` / ``PromptType.document``, or the strings
``"query"`` / ``"document"``/``"passage"``); queries go through the pair template with the ``instruction`` mteb
passes (empty when none), passages through ``encode_passages``. Older mteb versions call ``encode_queries`` /
``encode_corpus`` instead; corpus items may be ``{"title", "text"}`` dicts (joined ``"title text"``).
Nothing here imports mteb, so the adapter also works with other harnesses using the same calling convention.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PASSAGE_TYPES = {"document", "passage", "corpus"}


def _prompt_kind(prompt_type) -> str:
    value = getattr(prompt_type, "value", prompt_type)
    return "passage" if value is not None and str(value).lower() in PASSAGE_TYPES else "query"


def _doc_text(item) -> str:
    if isinstance(item, dict):
        title = (item.get("title") or "").strip()
        return f"{title} {item.get('text', '')}".strip() if title else item.get("text", "")
    return item


class MTEBEncoder:
    """Adapter with ``encode(sentences, *, task_name=None, prompt_type=None, instruction=None, **kwargs)``."""

    def __init__(self, encoder, batch_size: int = 64, show_progress: bool = False):
        self.encoder = encoder
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.model_card_data = {"model_name": getattr(encoder, "backbone_name", "infembed")}

    def encode(
        self,
        sentences: Sequence,
        *,
        task_name: str | None = None,
        prompt_type=None,
        instruction: str | None = None,
        batch_size: int | None = None,
        **kwargs,
    ) -> np.ndarray:
        """(n, D) float32 array: passages when ``prompt_type`` is document/passage, else query+instruction pairs."""
        batch_size = batch_size or self.batch_size
        if _prompt_kind(prompt_type) == "passage":
            texts = [_doc_text(s) for s in sentences]
            emb = self.encoder.encode_passages(texts, batch_size=batch_size, show_progress=self.show_progress)
        else:
            instructions = [instruction or ""] * len(sentences)
            emb = self.encoder.encode_pairs(list(sentences), instructions, batch_size=batch_size,
                                            show_progress=self.show_progress)
        return emb.numpy()

    def encode_queries(self, queries: Sequence[str], **kwargs) -> np.ndarray:
        return self.encode(queries, prompt_type="query", **kwargs)

    def encode_corpus(self, corpus: Sequence, **kwargs) -> np.ndarray:
        return self.encode(corpus, prompt_type="document", **kwargs)


__all__ = ["MTEBEncoder"]
