"""The losses document themselves: one table in the registry feeds each loss's docstring and the README."""

from pathlib import Path

import pytest

from infembed.losses import LOSS_CLASSES, LOSS_NAMES, LOSS_REGISTRY, build_loss, formula_table

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_each_loss_is_a_class_whose_docstring_holds_its_formula(name):
    loss = build_loss(name)
    assert type(loss) is LOSS_CLASSES[name]
    for fact in (
        LOSS_REGISTRY[name].formula,
        "Towards Better Instruction Following Retrieval Models",
        "iq (N, D)",
    ):
        assert fact in type(loss).__doc__


def test_readme_shows_the_registry_table():
    assert formula_table() in README.read_text(encoding="utf-8")
