"""InF-IR data: schema + validation, sources, sharded streaming dataset, collator, DataModule, synthetic."""

from infembed.data.collator import TripletCollator, resolve_num_swap_negatives
from infembed.data.dataset import InfIRStream
from infembed.data.schema import COLUMNS, DataError, expand_row, validate_row

__all__ = [
    "COLUMNS",
    "DataConfigError",
    "DataError",
    "InfIRDataModule",
    "InfIRStream",
    "TripletCollator",
    "expand_row",
    "resolve_num_swap_negatives",
    "validate_row",
]


def __getattr__(name: str):
    """InfIRDataModule / DataConfigError, imported on first use (the synthetic CLI needs no Lightning)."""
    if name in ("InfIRDataModule", "DataConfigError"):
        from infembed.data import datamodule

        return getattr(datamodule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
