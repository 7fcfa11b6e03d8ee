"""LightningDataModule: sources → sharded streams → collated batches, with sizes derived from the trainer.

Batch sizes: global_batch_size counts ROWS per optimiser step across all devices and accumulation steps:
    rows_per_device = global_batch_size / (world_size · accumulate_grad_batches),  triplets = 3 · rows
Training streams pass after pass (use the trainer's max_steps); validation is one finite pass.

Exact resume: the checkpoint holds the number of training batches every rank has consumed (all ranks step
together) and the layout that maps it to per-(rank, worker) stream positions (see dataset.InfIRStream); the collator
and the stream are otherwise stateless, so a resumed run reads, collates and samples exactly what the
uninterrupted run would have.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning import LightningDataModule
from torch.utils.data import DataLoader

from infembed.data import synthetic
from infembed.data.collator import TripletCollator, resolve_num_swap_negatives
from infembed.data.dataset import InfIRStream
from infembed.data.schema import TRIPLETS_PER_ROW, DataError, check_on_bad_row
from infembed.data.sources import LocalSource, build_source
from infembed.data.synthetic import params as synthetic_params
from infembed.errors import ConfigError
from infembed.text import TextSpec

log = logging.getLogger(__name__)


class DataConfigError(ConfigError):
    """Inconsistent data settings (e.g. a batch size that does not divide over devices)."""


def synthetic_dir(train_source: str) -> Path:
    """The synthetic dataset directory of a train_source pointing at DIR/train.jsonl (or DIR itself)."""
    path = Path(train_source)
    return path.parent if path.suffix else path


class InfIRDataModule(LightningDataModule):
    """InF-IR rows for training (and optionally validation); see the module docstring for the batch sizes.

    text: the encoder's text spec (the collator tokenises with it, so training sees evaluation's token ids).
    needs_swaps: whether the loss needs instruction-swap negatives (no sampling or tokenising otherwise).
    fusion: the encoder's pair fusion, "concat" (pair texts) or "attention" (queries and instructions tokenised
    apart; swaps need no text), see data.collator.
    train_source / val_source: hub dataset id, .jsonl/.parquet path, directory or glob. Without val_source, a
    val_fraction of the train source (by content hash) is held out for validation (0 disables validation).
    num_swap_negatives: swaps per triplet, an int or "auto" (the paper's rule, collator.resolve_num_swap_negatives).
    mask_false_swaps / false_swap_rate: see data.collator (rows with labels: no swap the passage satisfies; a
    dose of decoy swaps).
    synthetic: {"train_rows", "eval_queries", "seed", "difficulty", "generator"} generates the synthetic dataset into train_source's
    directory first when it is missing or was generated with other parameters; its held-out topics are then
    :attr:`heldout_dir`.
    stream_retries / stream_backoff_s: a hub stream's transient errors are retried this many times in a row,
    waiting stream_backoff_s · 2^(attempt − 1) seconds (see sources.HubSource).
    """

    def __init__(
        self,
        train_source: str,
        text: TextSpec,
        needs_swaps: bool = True,
        fusion: str = "concat",
        train_split: str = "train",
        val_source: str | None = None,
        val_split: str | None = None,
        val_fraction: float = 0.02,
        global_batch_size: int = 32,
        num_swap_negatives: int | str | None = "auto",
        mask_false_swaps: bool = True,
        false_swap_rate: float = 0.0,
        num_workers: int = 0,
        shuffle_buffer: int = 1000,
        seed: int = 0,
        on_bad_row: str = "raise",
        synthetic: dict | None = None,
        stream_retries: int = 5,
        stream_backoff_s: float = 2.0,
    ):
        super().__init__()
        if not isinstance(val_fraction, (int, float)) or not 0.0 <= val_fraction < 1.0:
            raise DataConfigError(f"data.val_fraction={val_fraction}: expected a number in [0, 1)")
        if (
            isinstance(global_batch_size, bool)
            or not isinstance(global_batch_size, int)
            or global_batch_size < 1
        ):
            raise DataConfigError(
                f"data.global_batch_size={global_batch_size}: expected a positive number of rows"
            )
        self.train_source, self.train_split = str(train_source), train_split
        self.val_source = None if val_source is None else str(val_source)
        self.val_split, self.val_fraction = val_split or train_split, val_fraction
        self.text = text
        self.fusion = fusion
        self.global_batch_size = global_batch_size
        self.swap_setting = num_swap_negatives if needs_swaps else 0
        self.mask_false_swaps, self.false_swap_rate = mask_false_swaps, false_swap_rate
        self.num_workers, self.shuffle_buffer, self.seed = num_workers, shuffle_buffer, seed
        self.on_bad_row, self.synthetic = check_on_bad_row(on_bad_row), dict(synthetic) if synthetic else None
        if self.synthetic is not None:
            synthetic_params(**self.synthetic)  # an unknown generator or difficulty stops here, not mid-run
        self.retries = {"retries": stream_retries, "backoff_s": stream_backoff_s}
        self.sizes: dict[str, Any] = {}
        self.scan: dict[str, Any] = {}
        self.train_set: InfIRStream | None = None
        self.val_set: InfIRStream | None = None
        self.train_collator: TripletCollator | None = None

    # -- synthetic data -------------------------------------------------------------------------------------
    @property
    def heldout_dir(self) -> Path | None:
        """The synthetic held-out evaluation set (followir/ + heldout.jsonl), or None for other data."""
        return synthetic_dir(self.train_source) if self.synthetic is not None else None

    def prepare_data(self) -> None:
        """Generate the synthetic dataset (Lightning runs this on one process per node, before setup)."""
        if self.synthetic is not None and synthetic.ensure(
            synthetic_dir(self.train_source), **self.synthetic
        ):
            log.info("generated synthetic data in %s", synthetic_dir(self.train_source))

    def _check_synthetic(self, world_size: int) -> None:
        out = synthetic_dir(self.train_source)
        if self.synthetic is None or synthetic.is_current(out, synthetic.params(**self.synthetic)):
            return
        if world_size > 1:
            raise DataConfigError(
                f"synthetic data in {out} is missing or stale and prepare_data() did not run"
            )
        self.prepare_data()

    # -- sizes ----------------------------------------------------------------------------------------------
    def _topology(self) -> tuple[int, int, int]:
        """(world_size, global_rank, accumulate_grad_batches) from the attached trainer, else (1, 0, 1)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0, 1
        return trainer.world_size, trainer.global_rank, trainer.accumulate_grad_batches

    def _derive_sizes(self, world_size: int, accumulate: int) -> None:
        per_step = world_size * accumulate
        if self.global_batch_size % per_step:
            raise DataConfigError(
                f"data.global_batch_size={self.global_batch_size} rows must be divisible by world_size "
                f"({world_size}) × accumulate_grad_batches ({accumulate}) = {per_step}"
            )
        rows = self.global_batch_size // per_step
        self.sizes = {
            "rows_per_device": rows,
            "triplets_per_device": TRIPLETS_PER_ROW * rows,
            "rows_global": self.global_batch_size,
            "triplets_global": TRIPLETS_PER_ROW * self.global_batch_size,
            "world_size": world_size,
            "accumulate_grad_batches": accumulate,
            "num_swap_negatives": resolve_num_swap_negatives(self.swap_setting, TRIPLETS_PER_ROW * rows),
        }

    @property
    def rows_per_device(self) -> int:
        return self._size("rows_per_device")

    @property
    def triplets_per_device(self) -> int:
        return self._size("triplets_per_device")

    @property
    def num_swap_negatives(self) -> int:
        """Swaps per triplet: an explicit int, or for None/"auto" clamp(min(triplets_per_device // 2, 6) − 1, 1, 5)."""
        return self._size("num_swap_negatives")

    def _size(self, key: str) -> int:
        if not self.sizes:
            raise RuntimeError(f"{key} is known after setup()")
        return self.sizes[key]

    def describe(self) -> dict[str, Any]:
        """Derived sizes (rows/triplets per device and global, K, topology) and what the pre-scan found."""
        return {**self.sizes, **self.scan}

    @property
    def skipped(self) -> dict[str, int]:
        """Bad rows skipped per reason in the local pre-scan (on_bad_row="skip")."""
        return dict(self.scan.get("skipped", {}))

    # -- setup ----------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Derive sizes, validate local files (before any training step) and build the streams; once."""
        if self.train_set is not None:
            return
        world_size, rank, accumulate = self._topology()
        self._derive_sizes(world_size, accumulate)
        self._check_synthetic(world_size)
        carve = self.val_source is None and self.val_fraction > 0
        train = build_source(
            self.train_source,
            self.train_split,
            self.on_bad_row,
            "train" if carve else None,
            self.val_fraction,
            **self.retries,
        )
        val = None
        if self.val_source is not None:
            val = build_source(self.val_source, self.val_split, self.on_bad_row, **self.retries)
        elif carve:
            val = build_source(
                self.train_source, self.train_split, self.on_bad_row, "val", self.val_fraction, **self.retries
            )
        self._prescan(train, val)
        self.train_set = InfIRStream(train, rank, world_size, self.shuffle_buffer, self.seed, repeat=True)
        self.train_set.start_at(0, self.rows_per_device, accumulate)
        self.train_collator = self.collator()
        self.val_set = (
            None
            if val is None
            else InfIRStream(
                val, rank, world_size, 0, self.seed, rows_per_shard=self._val_rows_per_shard(world_size)
            )
        )
        log.info("data: %s", self.describe())
        n, k = self.sizes["triplets_per_device"], self.sizes["num_swap_negatives"]
        if self.fusion == "attention":
            swaps = (
                f" ({self._swap_rule(k)}, fused from these states, no encoder pass)" if k else " (no swaps)"
            )
            pairs = f"{n} queries + {n} instructions"
        else:
            swaps = (
                f" + at most {n * k} unique swap pairs ({self._swap_rule(k)})" if k else " (no swap pairs)"
            )
            pairs = f"{n} pairs"
        log.info("batch sizes: encoder passes per device and step: %s + %d passages%s", pairs, n, swaps)

    def _swap_rule(self, k: int) -> str:
        """How K came about, for the log line: the paper's rule under auto, else the explicit value."""
        if self.swap_setting in (None, "auto"):
            n = self.sizes["triplets_per_device"]
            rule = (
                f"auto: the paper's K = min({n} triplets // 2, 6) = {k + 1} instructions, the own one + {k}"
            )
        else:
            rule = "data.num_swap_negatives"
        masked = (
            ", swaps the passage satisfies masked where rows have labels" if self.mask_false_swaps else ""
        )
        dosed = f", {self.false_swap_rate:g} of swap slots false by design" if self.false_swap_rate else ""
        return f"{k} swap negatives per triplet ({rule}){masked}{dosed}"

    def _prescan(self, train: Any, val: Any) -> None:
        """Validate local files fully before training (first bad row raises; skip mode counts)."""
        scan: dict[str, Any] = {"train_rows": None, "val_rows": None, "skipped": {}}
        if isinstance(train, LocalSource):
            result = train.scan()
            scan["train_rows"] = result.train_rows if train.part == "train" else result.rows
            scan["val_rows"] = result.val_rows if train.part == "train" else None
            scan["skipped"] = result.skipped.as_dict()
            if result.skipped.total:
                log.warning("%s: %s", self.train_source, result.skipped.summary())
            if scan["train_rows"] == 0:
                raise DataError(
                    self.train_source,
                    "file",
                    "<all rows>",
                    "at least one valid training row",
                    f"0 ({result.skipped.summary()})",
                )
        if self.val_source is not None and isinstance(val, LocalSource):
            result = val.scan()
            scan["val_rows"] = result.rows
            for reason, count in result.skipped.as_dict().items():
                scan["skipped"][reason] = scan["skipped"].get(reason, 0) + count
        self.scan = scan

    def _val_rows_per_shard(self, world_size: int) -> int | None:
        """Under DDP every rank must see the same number of validation batches: cap each shard equally.

        Hub sources are not counted beforehand, so their validation shards are not capped (use the trainer's
        limit_val_batches under DDP).
        """
        val_rows = self.scan.get("val_rows")
        if world_size == 1 or val_rows is None:
            return None
        return val_rows // (world_size * max(1, self.num_workers))

    # -- resume (Lightning saves and restores these with the checkpoint) -----------------------------------
    def layout(self) -> dict[str, Any]:
        """The settings that map a batch count to stream positions, by config key; a resume needs the same."""
        return {
            "world size (trainer.devices × trainer.num_nodes)": self.sizes["world_size"],
            "trainer.accumulate_grad_batches": self.sizes["accumulate_grad_batches"],
            "data.global_batch_size": self.global_batch_size,
            "data.num_workers": self.num_workers,
            "data.shuffle_buffer": self.shuffle_buffer,
            "data.seed": self.seed,
            "data.train_source": self.train_source,
        }

    def state_dict(self) -> dict[str, Any]:
        """Training batches consumed on every rank (checkpoints are written at optimiser-step boundaries)."""
        trainer = self.trainer
        return {"batches": trainer.global_step * trainer.accumulate_grad_batches, "layout": self.layout()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the training stream after the checkpoint's batches (Lightning calls this after setup)."""
        changed = [
            f"{k}: {state['layout'].get(k)!r} -> {v!r}"
            for k, v in self.layout().items()
            if state["layout"].get(k) != v
        ]
        if changed:
            raise DataConfigError(
                f"the checkpoint's data stream cannot continue exactly with other settings ({'; '.join(changed)}):"
                " resume with the checkpoint's settings"
            )
        self.train_set.start_at(state["batches"], self.rows_per_device, self.sizes["accumulate_grad_batches"])
        log.info("data: resuming the training stream after %d batches per rank", state["batches"])

    def teardown(self, stage: str | None = None) -> None:
        """Report skipped bad rows at the end (local pre-scan counts; hub rows are reported per pass)."""
        if self.scan.get("skipped"):
            log.warning("data: skipped bad rows per reason: %s", self.scan["skipped"])

    # -- loaders --------------------------------------------------------------------------------------------
    def collator(self) -> TripletCollator:
        return TripletCollator(
            self.text,
            self.num_swap_negatives,
            self.seed,
            self.fusion,
            self.mask_false_swaps,
            self.false_swap_rate,
        )

    def _loader(self, dataset: InfIRStream, collator: TripletCollator, drop_last: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.rows_per_device,
            collate_fn=collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=drop_last,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            raise RuntimeError("call setup() before train_dataloader()")
        return self._loader(self.train_set, self.train_collator, drop_last=True)

    def val_dataloader(self) -> DataLoader | list:
        """Validation batches (same collator, no shuffle), or [] when there is no validation data."""
        if self.val_set is None:
            return []
        return self._loader(self.val_set, self.collator(), drop_last=False)
