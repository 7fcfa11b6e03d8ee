"""conf/loss/*.yaml: exactly one file per registered loss (tests/test_config_compose.py instantiates each)."""

from pathlib import Path

from infembed.losses import LOSS_NAMES

LOSS_CONF = Path(__file__).resolve().parents[1] / "conf" / "loss"


def test_one_yaml_per_loss_name():
    assert {f.stem for f in LOSS_CONF.glob("*.yaml") if not f.stem.startswith("_")} == set(LOSS_NAMES)
    assert len(LOSS_NAMES) == 11
