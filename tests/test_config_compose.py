"""Every config file composes, and every `_target_` it names instantiates (hub backbones: their arguments bind)."""

import functools
import inspect
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from infembed.text import TextSpec

from helpers import MINILM
from helpers.compose import CONF, compose_in

# group -> option names, read from the files so a new file is tested without editing this list ("_" = shared base)
GROUPS = {
    group.name: sorted(p.stem for p in group.glob("*.yaml") if not p.stem.startswith("_"))
    for group in sorted(CONF.iterdir())
    if group.is_dir() and group.name not in {"hydra", "paths"}
}
OPTIONS = [(g, o) for g, options in GROUPS.items() for o in options]
REQUIRED = {  # the user must say where the data is
    ("benchmark", "birco"): ["benchmark.root=/data/birco"],
    ("experiment", "birco_minilm"): ["benchmark.root=/data/birco"],
    ("experiment", "birco_transfer"): ["benchmark.root=/data/birco"],
    ("experiment", "birco_realtext"): ["benchmark.root=/data/birco"],
    ("experiment", "birco_dev"): ["benchmark.root=/data/birco"],
}


def compose_train(overrides, tmp_path):
    return compose_in(tmp_path, *overrides)


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_file_composes_and_resolves(group, option, tmp_path):
    cfg = compose_train([f"{group}={option}", *REQUIRED.get((group, option), [])], tmp_path)
    for key in cfg:  # `hydra` (launcher/sweep settings) is resolved by Hydra itself at launch time
        if key != "hydra":
            OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]


def _is_local(backbone: str) -> bool:
    return Path(backbone).is_dir()


@pytest.mark.parametrize("model", GROUPS["model"])
def test_model_presets_instantiate(model, tmp_path):
    node = compose_train([f"model={model}"], tmp_path).model
    if _is_local(node.backbone):
        encoder = hydra.utils.instantiate(node)
        assert encoder.name == model and encoder.text.pair_template == node.pair_template
    else:  # a hub id: no network here, so check that the preset's arguments bind to the class
        arguments = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k != "_target_"}
        inspect.signature(hydra.utils.get_class(node._target_)).bind(**arguments)


@pytest.mark.parametrize("loss", GROUPS["loss"])
def test_loss_configs_instantiate(loss, tmp_path):
    cfg = compose_train([f"loss={loss}", "kernel=chunked"], tmp_path)
    built = hydra.utils.instantiate(cfg.loss)
    assert built.name == loss and built.kernel == "chunked" and built.temperature == cfg.loss.temperature


@pytest.mark.parametrize("data", GROUPS["data"])
def test_data_configs_instantiate_with_the_encoder_text(data, tmp_path):
    cfg = compose_train([f"data={data}"], tmp_path)
    text = TextSpec(MINILM)
    datamodule = hydra.utils.instantiate(cfg.data, _partial_=True)(text=text, needs_swaps=False)
    assert datamodule.text is text and datamodule.swap_setting == 0


@pytest.mark.parametrize("scheduler", GROUPS["scheduler"])
@pytest.mark.parametrize("optimizer", GROUPS["optimizer"])
def test_module_optimizer_and_scheduler_instantiate(optimizer, scheduler, tmp_path):
    cfg = compose_train([f"optimizer={optimizer}", f"scheduler={scheduler}"], tmp_path)
    module_factory = hydra.utils.instantiate(cfg.module, _partial_=True)
    make_optimizer, make_scheduler = (
        module_factory.keywords["optimizer"],
        module_factory.keywords["scheduler"],
    )
    assert isinstance(make_optimizer, functools.partial) and isinstance(make_scheduler, functools.partial)
    opt = make_optimizer([{"params": [torch.nn.Parameter(torch.ones(2, 2))]}])
    sched = make_scheduler(opt, total_steps=10)
    assert opt.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.lr * sched.lr_lambdas[0](0))


@pytest.mark.parametrize("trainer", GROUPS["trainer"])
def test_trainer_configs_instantiate(trainer, tmp_path):
    cfg = compose_train([f"trainer={trainer}", "trainer.accelerator=cpu", "trainer.devices=1"], tmp_path)
    with open_dict(cfg):
        cfg.trainer.pop("strategy", None)  # DDP needs several processes; its keys are checked by composing
    trainer_obj = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer_obj.max_steps == cfg.trainer.max_steps


@pytest.mark.parametrize("logger", GROUPS["logger"])
def test_logger_and_callbacks_instantiate(logger, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_train([f"logger={logger}"], tmp_path)
    assert hydra.utils.instantiate(cfg.logger) is not None
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    assert {type(c).__name__ for c in callbacks} >= {"StepCheckpoint"}


def test_unknown_loss_lists_valid_choices(tmp_path):
    with pytest.raises(Exception, match="multi_p_i"):
        compose_train(["loss=not_a_loss"], tmp_path)
