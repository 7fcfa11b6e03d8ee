"""Where rows come from: local .jsonl / .parquet files (paths, directories, globs) or a hub dataset.

Every source yields validated rows (schema.validate_row) in a deterministic order and can restrict itself to
one shard (`shard` of `num_shards`) and one part of a hash split:
    part="val" keeps rows with hash(Q+, I+, P+) < val_fraction, part="train" the rest, part=None all.
The hash split depends only on the row's content, never on its position, so it is the same on every machine,
rank, worker and file order. Every row carries its provenance in ``row[SOURCE]`` (file and line, or hub row).

A hub stream that fails with a transient network error (:func:`is_transient`) is reopened where it stopped after
a backoff of backoff_s · 2^(attempt − 1) seconds, up to `retries` consecutive attempts; then :class:`StreamError`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infembed.data.schema import MALFORMED_JSON, DataError, SkipStats, check_on_bad_row, validate_row
from infembed.errors import UserError
from infembed.hub_ids import is_hub_id

log = logging.getLogger(__name__)

LOCAL_SUFFIXES = (".jsonl", ".parquet")
PARTS = (None, "train", "val")
_GLOB_CHARS = set("*?[")


class StreamError(UserError):
    """A hub stream that kept failing: names the dataset, the shard and row, the step and how to continue."""

    def __init__(self, message: str):
        # raised in a DataLoader worker, it reaches the main process as "Caught StreamError in DataLoader worker
        # process 0.\nOriginal Traceback ...\nStreamError: <message>": keep the message, one line
        super().__init__(message.rstrip().rsplit("StreamError: ", 1)[-1])


def is_transient(error: BaseException) -> bool:
    """Network trouble worth retrying (connection reset, timeout, HTTP 5xx/408/429), not a missing repository
    or file, refused access or offline mode."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(error, (OfflineModeIsEnabled, FileNotFoundError, PermissionError)):
        return False
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        return status is None or status >= 500 or status in (408, 429)
    return isinstance(error, OSError)


def is_local(source: str) -> bool:
    """A path, directory or glob on disk; an "org/name" that is none of those is a hub dataset id (``is_hub_id``)."""
    return not is_hub_id(source)


def resolve_files(source: str) -> list[Path]:
    """Sorted .jsonl/.parquet files of a file path, a directory or a glob; DataError when nothing matches."""
    path = Path(source)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix in LOCAL_SUFFIXES]
    elif _GLOB_CHARS & set(source):
        files = [Path(p) for p in glob.glob(source, recursive=True) if Path(p).suffix in LOCAL_SUFFIXES]
    else:
        files = [path]
    for p in files:
        if p.suffix not in LOCAL_SUFFIXES:
            raise DataError(
                p, "file", "<file>", f"a file ending in one of {list(LOCAL_SUFFIXES)}", repr(p.suffix)
            )
    if not files:
        raise DataError(source, "file", "<file>", f"at least one {'/'.join(LOCAL_SUFFIXES)} file", "no match")
    return sorted(files)


def in_validation(row: dict[str, str], val_fraction: float) -> bool:
    """blake2b(Q+ ␟ I+ ␟ P+) mapped to [0, 1) < val_fraction."""
    key = "\x1f".join((row["query_positive"], row["instruction_positive"], row["document_positive"]))
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < val_fraction


def _keep(row: dict[str, str], part: str | None, val_fraction: float) -> bool:
    return part is None or (part == "val") == in_validation(row, val_fraction)


def _unreadable(path: Path, error: Exception) -> DataError:
    return DataError(
        path, "file", "<file>", f"a readable {path.suffix} file", f"{type(error).__name__}: {error}"
    )


def _empty(path: Path) -> DataError:
    return DataError(path, "file", "<file>", "at least one row", "an empty file")


def _jsonl_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, parsed object or DataError) per non-blank line; line numbers are 1-based."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below; open errors are reported apart)
    except OSError as error:
        raise _unreadable(path, error) from error
    seen = False
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            seen = True
            location = f"line {number}"
            try:
                yield location, json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                yield (
                    location,
                    DataError(
                        path,
                        location,
                        "<line>",
                        "one JSON object per line (UTF-8)",
                        str(error),
                        MALFORMED_JSON,
                    ),
                )
    if not seen:
        raise _empty(path)


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, row dict) per parquet row; row numbers are 0-based."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as error:  # pyarrow.ArrowInvalid is a ValueError
        raise _unreadable(path, error) from error
    if parquet.metadata.num_rows == 0:
        raise _empty(path)
    index = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for raw in batch.to_pylist():
            yield f"row {index} (0-based)", raw
            index += 1


def read_file_rows(path: Path, on_bad_row: str, stats: SkipStats) -> Iterator[dict[str, str]]:
    """Validated rows of one local file; bad rows raise DataError or are counted in `stats` and skipped."""
    records = _jsonl_records(path) if path.suffix == ".jsonl" else _parquet_records(path)
    for location, raw in records:
        try:
            if isinstance(raw, DataError):
                raise raw
            yield validate_row(raw, str(path), location)
        except DataError as error:
            if on_bad_row == "raise":
                raise
            stats.record(error)


@dataclass
class ScanResult:
    """Counts from a full pass over a source: valid rows per part of the hash split and skipped rows."""

    rows: int = 0
    train_rows: int = 0
    val_rows: int = 0
    skipped: SkipStats = field(default_factory=SkipStats)


class LocalSource:
    """Rows of local files, in sorted file order (or a seeded permutation of it, the same on every shard)."""

    def __init__(
        self, source: str, on_bad_row: str = "raise", part: str | None = None, val_fraction: float = 0.0
    ):
        if part not in PARTS:
            raise ValueError(f"part={part!r}: expected one of {list(PARTS)}")
        self.source, self.files = source, resolve_files(source)
        self.on_bad_row, self.part, self.val_fraction = check_on_bad_row(on_bad_row), part, val_fraction

    def __repr__(self) -> str:
        return f"LocalSource({self.source!r}, part={self.part!r})"

    def scan(self, val_fraction: float | None = None) -> ScanResult:
        """Validate every row once (raises on the first bad row in raise mode) and count the split sizes."""
        fraction = self.val_fraction if val_fraction is None else val_fraction
        result = ScanResult()
        for path in self.files:
            for row in read_file_rows(path, self.on_bad_row, result.skipped):
                result.rows += 1
                result.val_rows += in_validation(row, fraction)
        result.train_rows = result.rows - result.val_rows
        return result

    def iter_shard(
        self, shard: int, num_shards: int, stats: SkipStats, order_seed: int | None = None
    ) -> Iterator[dict[str, str]]:
        """Rows whose ordinal among the kept rows ≡ shard (mod num_shards): disjoint, balanced to ±1 row."""
        files = list(self.files)
        if order_seed is not None:
            random.Random(order_seed).shuffle(files)
        ordinal = 0
        for path in files:
            for row in read_file_rows(path, self.on_bad_row, stats):
                if not _keep(row, self.part, self.val_fraction):
                    continue
                if ordinal % num_shards == shard:
                    yield row
                ordinal += 1


def _load_hub(dataset_id: str, split: str) -> Any:
    import datasets  # lazy: only hub sources need it

    return datasets.load_dataset(dataset_id, split=split, streaming=True)


class HubSource:
    """A streaming Hugging Face hub dataset, validated lazily row by row, reopened after transient errors.

    Sharding: `datasets.distributed.split_dataset_by_node` over the (rank × worker) grid, iterated with
    `.iter()` so `datasets` does not shard a second time by worker. `loader(dataset_id, split)` returns an
    IterableDataset; tests pass an in-memory one. Retries: see the module docstring.
    """

    def __init__(
        self,
        dataset_id: str,
        split: str,
        on_bad_row: str = "raise",
        part: str | None = None,
        val_fraction: float = 0.0,
        loader: Callable[[str, str], Any] | None = None,
        retries: int = 5,
        backoff_s: float = 2.0,
    ):
        if part not in PARTS:
            raise ValueError(f"part={part!r}: expected one of {list(PARTS)}")
        self.dataset_id, self.split, self.part, self.val_fraction = dataset_id, split, part, val_fraction
        self.on_bad_row = check_on_bad_row(on_bad_row)
        self.loader = loader or _load_hub
        self.retries, self.backoff_s = retries, backoff_s

    def __repr__(self) -> str:
        return f"HubSource({self.dataset_id!r}, split={self.split!r}, part={self.part!r})"

    def open(self, shard: int, num_shards: int, start: int) -> Iterator[dict[str, Any]]:
        """Raw rows of one shard from its row `start` on (a fresh connection each call)."""
        from datasets.distributed import split_dataset_by_node

        dataset = split_dataset_by_node(
            self.loader(self.dataset_id, self.split), rank=shard, world_size=num_shards
        )
        for batch in dataset.skip(start).iter(batch_size=1):
            yield {key: values[0] for key, values in batch.items()}

    def iter_shard(
        self, shard: int, num_shards: int, stats: SkipStats, order_seed: int | None = None
    ) -> Iterator[dict[str, str]]:
        name = f"{self.dataset_id} (split {self.split})"
        index, failures = 0, 0
        while True:
            try:
                for raw in self.open(shard, num_shards, index):
                    location = f"row {index} (0-based, of shard {shard}/{num_shards})"
                    index, failures = index + 1, 0
                    try:
                        row = validate_row(raw, name, location)
                    except DataError as error:
                        if self.on_bad_row == "raise":
                            raise
                        stats.record(error)
                        continue
                    if _keep(row, self.part, self.val_fraction):
                        yield row
                return
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                self.retry_or_stop(name, shard, num_shards, index, failures, error)

    def retry_or_stop(
        self, name: str, shard: int, num_shards: int, index: int, failures: int, error: BaseException
    ) -> None:
        where = f"{name}: row {index} (0-based, of shard {shard}/{num_shards})"
        cause = f"{type(error).__name__}: {error}".splitlines()[0]
        if failures > self.retries:
            raise StreamError(
                f"{where}: the hub stream failed {failures} times in a row ({cause})"
            ) from error
        delay = self.backoff_s * 2 ** (failures - 1)
        log.warning("%s: %s; retry %d/%d in %.1f s", where, cause, failures, self.retries, delay)
        time.sleep(delay)


def build_source(
    source: str,
    split: str = "train",
    on_bad_row: str = "raise",
    part: str | None = None,
    val_fraction: float = 0.0,
    retries: int = 5,
    backoff_s: float = 2.0,
) -> LocalSource | HubSource:
    """A LocalSource for paths/globs, else a HubSource for `source` as a hub dataset id (with its retries)."""
    if is_local(source):
        return LocalSource(source, on_bad_row, part, val_fraction)
    return HubSource(source, split, on_bad_row, part, val_fraction, retries=retries, backoff_s=backoff_s)
