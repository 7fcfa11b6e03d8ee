"""Streaming dataset of validated InF-IR rows, sharded across DDP ranks × DataLoader workers.

Shard grid: shard = rank · W + worker, num_shards = world_size · W (W = DataLoader workers, at least 1).
Every row goes to exactly one shard (see sources.LocalSource.iter_shard / HubSource.iter_shard). Rows, not
triplets, are yielded: the collator expands each row into its three adjacent triplets; batch_size counts rows.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable, Iterator

from torch.utils.data import IterableDataset, get_worker_info

from infembed.data.schema import SkipStats
from infembed.data.sources import HubSource, LocalSource, StreamError

log = logging.getLogger(__name__)
POSITION = "_position"  # row key: (pass, shard, index within the pass), set by InfIRStream


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from ints (seed, epoch, shard, ...), stable across processes and Python runs."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def shuffle_buffer(rows: Iterable[dict], size: int, seed: int) -> Iterator[dict]:
    """Approximate shuffle with a buffer of `size` rows (size ≤ 1: unchanged order); seeded."""
    if size <= 1:
        yield from rows
        return
    rng, buffer = random.Random(seed), []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        index = rng.randrange(size)
        yield buffer[index]
        buffer[index] = row
    rng.shuffle(buffer)
    yield from buffer


class InfIRStream(IterableDataset):
    """Iterable over validated rows of one shard of a source, each stamped with its stream position.

    repeat=True streams pass after pass (0, 1, ...) for step-based training; each pass reshuffles with seed
    (seed, pass, shard). `rows_per_shard` caps each shard (a finite validation stream under DDP needs the same
    number of rows on every rank so no rank waits in a collective). Every yielded row carries
    ``row[POSITION] = (pass, shard, index within the pass)``, unique over the whole training stream (the collator
    seeds its swap sampling from it).

    Resuming (:meth:`start_at`): the DataLoader takes batch i from worker i mod W. After B batches, worker p of a
    fresh loader delivers batches B+p, B+p+W, ..., which the uninterrupted run took from worker (B+p) mod W; so
    worker p plays that worker's shard and skips the rows of its batches among the first B:
        slot = (B + p) mod W,   shard = rank · W + slot,   skipped rows = batch_rows · ⌈(B − slot) / W⌉₊
    Skipping reads rows without collating them; whole passes are skipped by their length once it is known.
    """

    def __init__(
        self,
        source: LocalSource | HubSource,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 0,
        seed: int = 0,
        repeat: bool = False,
        rows_per_shard: int | None = None,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} world_size={world_size}: expected 0 <= rank < world_size")
        self.source, self.rank, self.world_size = source, rank, world_size
        self.buffer, self.seed, self.repeat, self.rows_per_shard = (
            shuffle_buffer,
            seed,
            repeat,
            rows_per_shard,
        )
        self.start_batch, self.batch_rows, self.batches_per_step = 0, 1, 1
        self.stats = SkipStats()  # rows skipped by this copy (one per worker process)

    def start_at(self, batches: int, batch_rows: int, batches_per_step: int = 1) -> None:
        """Continue after `batches` batches of `batch_rows` rows (per rank; `batches_per_step` = gradient
        accumulation, for the step named in errors)."""
        self.start_batch, self.batch_rows, self.batches_per_step = batches, batch_rows, batches_per_step

    def slot(self) -> tuple[int, int]:
        """(worker slot of the calling worker, number of workers W ≥ 1); see the class docstring."""
        worker = get_worker_info()
        workers, worker_id = (1, 0) if worker is None else (worker.num_workers, worker.id)
        return (self.start_batch + worker_id) % workers, workers

    def shard(self) -> tuple[int, int]:
        """(shard index, number of shards) of the calling process/worker."""
        slot, workers = self.slot()
        return self.rank * workers + slot, self.world_size * workers

    def skipped_rows(self) -> int:
        """Rows of the calling worker's shard already consumed before :meth:`start_at`'s batch."""
        slot, workers = self.slot()
        return self.batch_rows * max(0, -(-(self.start_batch - slot) // workers))

    def iter_pass(self, epoch: int) -> Iterator[dict]:
        """One pass over this shard's rows, shuffled for `epoch` when shuffle_buffer > 1."""
        shard, num_shards = self.shard()
        shuffled = self.buffer > 1
        order_seed = derive_seed(self.seed, epoch) if shuffled else None  # same file order on every shard
        rows = self.source.iter_shard(shard, num_shards, self.stats, order_seed)
        rows = shuffle_buffer(rows, self.buffer, derive_seed(self.seed, epoch, shard))
        count = 0
        for row in rows:
            if self.rows_per_shard is not None and count >= self.rows_per_shard:
                break
            row[POSITION] = (epoch, shard, count)
            count += 1
            yield row
        log.info(
            "data shard %d/%d pass %d: %d rows, %s", shard, num_shards, epoch, count, self.stats.summary()
        )

    def __iter__(self) -> Iterator[dict]:
        skip, epoch, pass_rows, yielded = self.skipped_rows(), 0, None, 0
        while True:
            if pass_rows and skip >= pass_rows:  # every pass of a shard has the same length
                epoch, skip = epoch + skip // pass_rows, skip % pass_rows
            count = 0
            try:
                for row in self.iter_pass(epoch):
                    count += 1
                    if count > skip:
                        yielded += 1
                        yield row
            except StreamError as error:
                raise StreamError(f"{error}; {self.where(epoch, yielded)}") from error
            skip = max(0, skip - count)
            if not self.repeat:
                return
            if count == 0:  # repeating an empty shard would spin forever
                raise ValueError(
                    f"data shard {self.shard()} of {self.source!r} has no rows; use fewer ranks/workers"
                )
            pass_rows, epoch = count, epoch + 1

    def where(self, epoch: int, yielded: int) -> str:
        """Stream position and training step of the row being read (for errors)."""
        slot, workers = self.slot()
        worker = (slot - self.start_batch) % workers
        batch = self.start_batch + worker + workers * (yielded // self.batch_rows)
        shard, num_shards = self.shard()
        return (
            f"stopped at step {batch // self.batches_per_step + 1} (pass {epoch} of stream shard {shard}/{num_shards});"
            " the last checkpoint is kept: rerun with ckpt_path=last to continue exactly"
        )
