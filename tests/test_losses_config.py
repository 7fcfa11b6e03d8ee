"""conf/loss/*.yaml: one file per registered loss, each buildable."""
from pathlib import Path

import pytest
import yaml

from infembed.losses import LOSS_NAMES, build_loss

LOSS_CONF = Path(__file__).resolve().parents[1] / "conf" / "loss"


def test_one_yaml_per_loss_name():
    assert {f.stem for f in LOSS_CONF.glob("*.yaml")} == set(LOSS_NAMES)
    assert len(LOSS_NAMES) == 11


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_yaml_builds_its_loss(name):
    cfg = yaml.safe_load((LOSS_CONF / f"{name}.yaml").read_text())
    assert cfg == {"name": name, "temperature": 0.05}
    loss_fn = build_loss(cfg["name"], temperature=cfg["temperature"])
    assert loss_fn.name == name and loss_fn.temperature == 0.05
