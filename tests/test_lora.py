"""LoRA through peft and gradient checkpointing on a tiny random decoder (a Qwen2 config built from scratch with the
offline MiniLM tokenizer): forward/backward trains only the adapters, the checkpoint rebuilds them, the export
merges them into a plain folder that sentence-transformers loads with the same embeddings."""

import functools

import pytest
import torch

from infembed.errors import ConfigError
from infembed.export import main as export_main
from infembed.losses import build_loss
from infembed.models.checkpoint import load_encoder
from infembed.models.encoder import BiEncoder
from infembed.models.module import RetrievalModule

from helpers.training import batches, max_diff, train

LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
TEXTS = ["kids topic 1 is fun", "technical analysis of a long topic with many words"]


def decoder(folder: str, **kwargs) -> BiEncoder:
    torch.manual_seed(0)
    return BiEncoder(folder, random_init=True, pooling="last", padding_side="left", **kwargs)


def test_lora_trains_only_the_adapters(tiny_qwen):
    encoder = decoder(tiny_qwen, lora=LORA, gradient_checkpointing=True)
    assert any(getattr(m, "gradient_checkpointing", False) for m in encoder.backbone.modules())
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    module = RetrievalModule(encoder, build_loss("multi_p_i", kernel="naive")).train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    after = train(module, batches(module, steps=2))
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved and all("lora_" in k for k in moved)


def test_checkpointing_and_cache_compose_exactly(tiny_qwen):
    def weights(chunk_size, checkpointing):
        encoder = decoder(tiny_qwen, lora=LORA, gradient_checkpointing=checkpointing)
        module = RetrievalModule(
            encoder, build_loss("uni_p_i_iq", kernel="naive"), grad_cache_chunk_size=chunk_size
        )
        return train(module.train(), batches(module, steps=2))

    assert max_diff(weights(2, True), weights(None, False)) <= 1e-5


def test_checkpoint_rebuilds_lora_and_export_merges_it(tiny_qwen, tmp_path):
    from sentence_transformers import SentenceTransformer

    module = RetrievalModule(
        decoder(tiny_qwen, lora=LORA),
        build_loss("uni_p"),
        optimizer=functools.partial(torch.optim.SGD, lr=1.0),
    )
    for name, param in module.named_parameters():  # nonzero adapters, so that merging changes the weights
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "last.ckpt")
    expected = module.encoder.encode_passages(TEXTS)  # (2, D)
    reloaded = load_encoder(tmp_path / "last.ckpt")
    assert reloaded.lora == LORA and torch.allclose(reloaded.encode_passages(TEXTS), expected, atol=1e-5)
    out = export_main(["--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "export")])
    assert not any("lora" in f.name or "adapter" in f.name for f in out.iterdir())
    found = SentenceTransformer(str(out), device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(found.float(), expected, atol=1e-4)
    plain = decoder(tiny_qwen)  # the same random base without adapters gives other embeddings
    assert not torch.allclose(plain.encode_passages(TEXTS), expected, atol=1e-3)


@pytest.mark.parametrize(
    "lora, key",
    [
        ({**LORA, "r": 0}, "model.lora.r"),
        ({**LORA, "target_modules": ["query"]}, "model.lora.target_modules"),
        ({"r": 4}, "model.lora="),
    ],
)
def test_bad_lora_settings_name_the_key(tiny_qwen, lora, key):
    with pytest.raises(ConfigError, match=key):
        decoder(tiny_qwen, lora=lora)
