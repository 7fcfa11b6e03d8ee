"""InF-IR data: schema + validation, sources, sharded streaming dataset, collator, DataModule, synthetic data."""
from infembed.data.collator import TripletCollator, resolve_num_swap_negatives
from infembed.data.datamodule import DataConfigError, InfIRDataModule
from infembed.data.dataset import InfIRStream
from infembed.data.schema import COLUMNS, DataError, expand_row, validate_row

__all__ = ["COLUMNS", "DataConfigError", "DataError", "InfIRDataModule", "InfIRStream", "TripletCollator",
           "expand_row", "resolve_num_swap_negatives", "validate_row"]
