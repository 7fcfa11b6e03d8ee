"""``python -m infembed.losses``: print the formula table of the eleven losses (the README's table)."""

from infembed.losses.registry import formula_table

print(formula_table())
