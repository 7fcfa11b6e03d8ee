"""WiSE-FT (evaluation.wise_ft): the interpolated weights, the refusals, and run.py task=evaluate on a real MiniLM
checkpoint, where α = 0 must score exactly as the untrained model and α = 1 exactly as the trained one (so last.ckpt
holds the final step, also when it is not a multiple of the checkpoint interval)."""

import json

import pytest
import torch

from infembed.errors import CheckpointError
from infembed.models.weight_ensemble import interpolate

from helpers import TINY_BERT, tiny_bert_encoder
from helpers import run_py as run


def test_interpolation_is_the_weighted_average_of_the_two_encoders():
    torch.manual_seed(0)
    start, tuned = tiny_bert_encoder(), tiny_bert_encoder()
    before = {k: v.clone() for k, v in tuned.state_dict().items()}
    interpolate(tuned, start, 0.25)
    for key, value in tuned.state_dict().items():
        expected = (
            0.75 * start.state_dict()[key] + 0.25 * before[key] if value.is_floating_point() else before[key]
        )
        assert torch.allclose(value, expected, atol=1e-6), key
    assert any(not torch.equal(before[k], start.state_dict()[k]) for k in before)  # the two really differ


def test_other_architecture_and_lora_are_refused():
    with pytest.raises(CheckpointError, match="differ at"):
        interpolate(
            tiny_bert_encoder(), tiny_bert_encoder(config_overrides={**TINY_BERT, "hidden_size": 16}), 0.5
        )
    lora = tiny_bert_encoder(lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]})
    with pytest.raises(CheckpointError, match="LoRA"):
        interpolate(lora, tiny_bert_encoder(), 0.5)


@pytest.mark.e2e
def test_run_py_wise_ft_endpoints_reproduce_untrained_and_trained_scores(tmp_path):
    from infembed.data.synthetic import generate

    followir = generate(tmp_path / "bench", train_rows=5, eval_queries=4)["followir"]
    bench = ("benchmark=followir", f"benchmark.path={followir}")
    # 4 steps, step checkpoints every 3: last.ckpt must still be the final step (what "after" evaluated)
    trained = run(
        "debug=smoke",
        "model=minilm",
        "trainer.max_steps=4",
        "trainer.val_check_interval=3",
        *bench,
        f"hydra.run.dir={tmp_path}/train",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    reference = json.loads((tmp_path / "train" / "metrics.json").read_text())
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == 4
    for alpha, stage in ((0, "before"), (1, "after")):
        job = tmp_path / f"wise{alpha}"
        result = run(
            "task=evaluate",
            f"ckpt_path={ckpt}",
            f"evaluation.wise_ft={alpha}",
            *bench,
            f"hydra.run.dir={job}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        got = json.loads((job / "metrics.json").read_text())["after"]["followir"]
        assert got == pytest.approx(reference[stage]["followir"], abs=1e-6), stage
    assert (
        reference["before"]["followir"] != reference["after"]["followir"]
    )  # the endpoints are distinguishable


@pytest.mark.e2e
def test_wise_ft_without_a_pretrained_start_is_refused(tmp_path):
    (tmp_path / "some.ckpt").write_bytes(b"never read: the config is refused first")
    result = run(
        "task=evaluate",
        "model=tiny",
        f"ckpt_path={tmp_path}/some.ckpt",
        "evaluation.wise_ft=0.5",
        "benchmark.path=.",
        f"hydra.run.dir={tmp_path}/ev",
        cwd=tmp_path,
    )
    message = result.stderr + result.stdout
    assert result.returncode == 1 and "model.random_init=true" in message and "Traceback" not in message
