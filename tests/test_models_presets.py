"""The scale presets compose, validate and instantiate: qwen2_5_3b / qwen2_5_7b (LoRA + checkpointing + cache; the
backbone swapped for a tiny random Qwen2 folder, so the preset's LoRA module names are checked against the real
architecture), trainer=fsdp (its strategy object), and the cache-using sweeps."""

import pytest
from hydra.utils import instantiate

from infembed.errors import ConfigError
from infembed.losses import build_loss
from infembed.preflight import validate

from helpers.compose import compose_train


@pytest.mark.parametrize("preset, chunk", [("qwen2_5_3b", 64), ("qwen2_5_7b", 32)])
def test_decoder_presets_build_lora_checkpointing_and_cache(tiny_qwen, preset, chunk):  # noqa: F811
    cfg = compose_train(f"model={preset}", "trainer=gpu")
    validate(cfg)
    assert cfg.model.name == preset and cfg.module.grad_cache_chunk_size == chunk
    encoder = instantiate(cfg.model, backbone=tiny_qwen, random_init=True)
    assert encoder.lora["target_modules"] and encoder.pooling == "last"
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any(getattr(m, "gradient_checkpointing", False) for m in encoder.backbone.modules())
    module = instantiate(cfg.module, _partial_=True)(encoder=encoder, loss=build_loss("multi_p_i"))
    assert module.chunk_size == chunk


def test_fsdp_preset_instantiates_and_refuses_the_cache():
    cfg = compose_train("model=qwen2_5_7b", "model.lora=null", "grad_cache.chunk_size=null", "trainer=fsdp")
    validate(cfg)
    strategy = instantiate(cfg.trainer.strategy)
    assert type(strategy).__name__ == "FSDPStrategy"
    assert "Qwen2DecoderLayer" in repr(strategy.kwargs["auto_wrap_policy"])
    with pytest.raises(ConfigError, match="grad_cache.chunk_size=32 with trainer.strategy"):
        validate(compose_train("model=qwen2_5_7b", "trainer=fsdp"))


@pytest.mark.parametrize("sweep", ["model_scale", "batch_scaling"])
def test_scale_sweeps_use_the_cache(sweep):
    cfg = compose_train(f"sweep={sweep}")
    assert cfg.module.grad_cache_chunk_size >= 1


def test_bad_chunk_size_is_refused():
    with pytest.raises(ConfigError, match="grad_cache.chunk_size=0: expected an integer >= 1"):
        validate(compose_train("grad_cache.chunk_size=0"))
