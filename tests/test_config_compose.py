"""Every config file composes, and the cheap objects it describes instantiate."""
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from infembed.utils import register_resolvers

CONF = Path(__file__).resolve().parents[1] / "conf"
register_resolvers()

# group -> option names, read from the files so a new file is tested without editing this list
GROUPS = {
    group.name: sorted(p.stem for p in group.glob("*.yaml"))
    for group in sorted(CONF.iterdir())
    if group.is_dir() and group.name not in {"hydra", "paths"}
}
OPTIONS = [(g, o) for g, options in GROUPS.items() for o in options]
REQUIRED = {("benchmark", "birco"): ["benchmark.root=/data/birco"]}  # the user must say where the data is


def compose_train(overrides, tmp_path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}", *overrides])
    return cfg


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_file_composes_and_resolves(group, option, tmp_path):
    cfg = compose_train([f"{group}={option}", *REQUIRED.get((group, option), [])], tmp_path)
    for key in cfg:  # `hydra` (launcher/sweep settings) is resolved by Hydra itself at launch time
        if key != "hydra":
            OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]


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
    cfg = compose_train([f"logger={logger}", f"paths.log_dir={tmp_path}"], tmp_path)
    assert hydra.utils.instantiate(cfg.logger) is not None
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    assert {type(c).__name__ for c in callbacks} >= {"ModelCheckpoint", "RichProgressBar"}


def test_unknown_loss_lists_valid_choices(tmp_path):
    with pytest.raises(Exception, match="multi_p_i"):
        compose_train(["loss=not_a_loss"], tmp_path)
