"""Non-finite guard: a row whose passage makes the encoder output NaN stops the run before the optimiser step with
the step, loss terms and source row named, the last good checkpoint staying the newest; skip_steps skips it."""

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from infembed.callbacks.nonfinite import NonFiniteError, NonFiniteGuard
from infembed.data.datamodule import InfIRDataModule
from infembed.data.schema import COLUMNS
from infembed.losses import build_loss
from infembed.models.module import RetrievalModule

from helpers import tiny_bert_encoder

POISON = "zebra"  # a word of the MiniLM vocabulary; its passage embeds to NaN below


def train(tmp_path, monkeypatch, guard: NonFiniteGuard, max_steps: int) -> L.Trainer:
    rows = [{c: f"{c.replace('_', ' ')} {i}" for c in COLUMNS} for i in range(8)]
    rows[4]["document_positive"] = f"a {POISON} passage"  # line 5: the third step (2 rows a batch)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    torch.manual_seed(0)
    encoder = tiny_bert_encoder(max_pair_length=16, max_passage_length=16)
    poison_id = encoder.text.hf_tokenizer.convert_tokens_to_ids(POISON)
    plain = encoder.forward

    def forward(tokens, tower="pair"):
        out = plain(tokens, tower)  # (B, D)
        poisoned = (tokens["input_ids"] == poison_id).any(1, keepdim=True)  # (B, 1)
        return torch.where(poisoned, torch.full_like(out, float("nan")), out)

    monkeypatch.setattr(encoder, "forward", forward)
    loss = build_loss("multi_p_i", kernel="naive")
    data = InfIRDataModule(
        str(path), encoder.text, loss.needs_swaps, global_batch_size=2, shuffle_buffer=0, val_fraction=0.0
    )
    checkpoints = ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1, save_last=True)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[guard, checkpoints],
        default_root_dir=tmp_path,
    )
    trainer.fit(RetrievalModule(encoder, loss), datamodule=data)
    return trainer


def weights(path) -> dict:
    return torch.load(path, weights_only=False)["state_dict"]


def test_nonfinite_step_stops_before_the_update_naming_step_terms_and_row(tmp_path, monkeypatch):
    with pytest.raises(NonFiniteError) as caught:
        train(tmp_path, monkeypatch, NonFiniteGuard(), max_steps=4)
    message = str(caught.value)
    assert "\n" not in message and "non-finite loss and gradient at step 3" in message
    assert "loss=nan" in message and "l_p=nan" in message  # the loss terms as logged
    assert f"{tmp_path / 'rows.jsonl'} line 5" in message and "line 6" in message and "line 4" not in message
    newest = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert newest["global_step"] == 2 and (tmp_path / "ckpt" / "epoch=0-step=2.ckpt").exists()
    assert not (tmp_path / "ckpt" / "epoch=0-step=3.ckpt").exists()
    assert all(torch.isfinite(v).all() for v in newest["state_dict"].values())


def test_skip_steps_skips_without_touching_the_weights_and_reports(tmp_path, monkeypatch, caplog):
    guard = NonFiniteGuard(skip_steps=1)
    trainer = train(tmp_path, monkeypatch, guard, max_steps=4)
    assert trainer.global_step == 4 and len(guard.skipped) == 1 and "line 5" in guard.skipped[0]
    before = weights(tmp_path / "ckpt" / "epoch=0-step=2.ckpt")
    skipped = weights(tmp_path / "ckpt" / "epoch=0-step=3.ckpt")
    assert all(torch.equal(before[k], skipped[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "ckpt" / "last.ckpt").values())
    assert "1 non-finite step(s) skipped" in caplog.text


def test_skip_steps_is_checked():
    with pytest.raises(ValueError, match="callbacks.nonfinite.skip_steps=-1"):
        NonFiniteGuard(skip_steps=-1)
