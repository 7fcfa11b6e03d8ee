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
from infembed.data.sources import HubSource, LocalSource

log = logging.getLogger(__name__)


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
    """Iterable over validated rows of one shard of a source.

    repeat=True streams pass after pass (epoch, epoch + 1, ...) for step-based training; each pass reshuffles
    with seed (seed, epoch, shard). `rows_per_shard` caps each shard (a finite validation stream under DDP
    needs the same number of rows on every rank so no rank waits in a collective).
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
        self.epoch = 0
        self.stats = SkipStats()  # rows skipped by this copy (one per worker process)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self) -> tuple[int, int]:
        """(shard index, number of shards) of the calling process/worker."""
        worker = get_worker_info()
        workers, worker_id = (1, 0) if worker is None else (worker.num_workers, worker.id)
        return self.rank * workers + worker_id, self.world_size * workers

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
            count += 1
            yield row
        log.info(
            "data shard %d/%d pass %d: %d rows, %s", shard, num_shards, epoch, count, self.stats.summary()
        )

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch
        while True:
            count = 0
            for row in self.iter_pass(epoch):
                count += 1
                yield row
            if not self.repeat:
                return
            if count == 0:  # repeating an empty shard would spin forever
                raise ValueError(
                    f"data shard {self.shard()} of {self.source!r} has no rows; use fewer ranks/workers"
                )
            epoch += 1
