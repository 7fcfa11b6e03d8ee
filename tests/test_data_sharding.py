"""Rank × worker sharding without duplicates or loss, shuffle determinism, hub sharding (in memory)."""

import json
from types import SimpleNamespace

import pytest

from infembed.data import dataset as dataset_module
from infembed.data.dataset import POSITION, InfIRStream, shuffle_buffer
from infembed.data.schema import COLUMNS, SkipStats
from infembed.data.sources import HubSource, LocalSource


def rows_file(path, start: int, count: int) -> None:
    path.write_text(
        "".join(json.dumps({c: f"{c} {i}" for c in COLUMNS}) + "\n" for i in range(start, start + count))
    )


@pytest.fixture
def three_files(tmp_path):
    for name, start, count in (("b.jsonl", 0, 7), ("a.jsonl", 7, 11), ("c.jsonl", 18, 5)):
        rows_file(tmp_path / name, start, count)
    return str(tmp_path / "*.jsonl")


def ids(rows) -> list[str]:
    return [row["query_positive"] for row in rows]


def stream_as(stream: InfIRStream, monkeypatch, worker: int | None, workers: int) -> list[str]:
    info = None if worker is None else SimpleNamespace(id=worker, num_workers=workers)
    monkeypatch.setattr(dataset_module, "get_worker_info", lambda: info)
    return ids(stream)


@pytest.mark.parametrize("world_size, workers", [(1, 1), (2, 1), (2, 3), (3, 2), (4, 4)])
def test_ranks_times_workers_cover_every_row_once(three_files, monkeypatch, world_size, workers):
    seen = []
    for rank in range(world_size):
        stream = InfIRStream(LocalSource(three_files), rank, world_size, shuffle_buffer=4, seed=3)
        per_shard = [stream_as(stream, monkeypatch, w, workers) for w in range(workers)]
        assert max(map(len, per_shard)) - min(map(len, per_shard)) <= 1  # balanced
        seen += [row for shard in per_shard for row in shard]
    assert sorted(seen) == sorted(f"query_positive {i}" for i in range(23))


def test_files_are_read_in_sorted_order_without_shuffle(three_files):
    rows = ids(InfIRStream(LocalSource(three_files)))
    assert rows[:3] == ["query_positive 7", "query_positive 8", "query_positive 9"]  # a.jsonl first


def test_shuffle_is_deterministic_by_seed_and_epoch(three_files):
    def run(seed: int, epoch: int) -> list[str]:
        stream = InfIRStream(LocalSource(three_files), shuffle_buffer=8, seed=seed)
        return ids(stream.iter_pass(epoch))

    assert run(1, 0) == run(1, 0)
    assert run(1, 0) != run(2, 0) and run(1, 0) != run(1, 1)
    assert sorted(run(1, 0)) == sorted(run(2, 5))


def test_repeat_streams_pass_after_pass_with_new_order(three_files):
    stream = InfIRStream(LocalSource(three_files), shuffle_buffer=8, seed=0, repeat=True)
    iterator = iter(stream)
    first, second = (
        [next(iterator)["query_positive"] for _ in range(23)],
        [next(iterator)["query_positive"] for _ in range(23)],
    )
    assert sorted(first) == sorted(second) and first != second


def test_rows_per_shard_caps_each_shard(three_files):
    assert len(list(InfIRStream(LocalSource(three_files), 1, 2, rows_per_shard=5))) == 5


def test_shuffle_buffer_is_a_permutation():
    rows = [{"i": i} for i in range(50)]
    out = list(shuffle_buffer(iter(rows), 10, seed=0))
    assert sorted(r["i"] for r in out) == list(range(50)) and out != rows


def test_hash_split_parts_are_disjoint_and_complete(three_files):
    train = ids(LocalSource(three_files, part="train", val_fraction=0.3).iter_shard(0, 1, SkipStats()))
    val = ids(LocalSource(three_files, part="val", val_fraction=0.3).iter_shard(0, 1, SkipStats()))
    assert not set(train) & set(val) and len(train) + len(val) == 23 and val
    assert val == ids(LocalSource(three_files, part="val", val_fraction=0.3).iter_shard(0, 1, SkipStats()))


def test_hub_source_shards_by_rank_and_worker_without_duplicates():
    import datasets

    rows = [{c: f"{c} {i}" for c in COLUMNS} for i in range(30)]
    rows[4]["query_negative"] = ""

    def loader(dataset_id, split):
        assert (dataset_id, split) == ("InF-IR/InF-IR", "msmarco")
        return datasets.Dataset.from_list(rows).to_iterable_dataset(num_shards=3)

    source = HubSource("InF-IR/InF-IR", "msmarco", on_bad_row="skip", loader=loader)
    stats = [SkipStats() for _ in range(4)]
    seen = [row for shard in range(4) for row in ids(source.iter_shard(shard, 4, stats[shard]))]
    assert sorted(seen) == sorted(f"query_positive {i}" for i in range(30) if i != 4)
    assert sum(s.total for s in stats) == 1
    strict = HubSource("InF-IR/InF-IR", "msmarco", loader=loader)
    with pytest.raises(ValueError, match="InF-IR/InF-IR .*'query_negative'"):
        [row for shard in range(4) for row in strict.iter_shard(shard, 4, SkipStats())]


def test_sources_are_chosen_by_the_look_of_the_name(tmp_path):
    from infembed.data.sources import build_source, is_local

    assert not is_local("InF-IR/InF-IR") and isinstance(build_source("InF-IR/InF-IR", "msmarco"), HubSource)
    assert all(is_local(s) for s in ("/data/x", "./x", "data/train/x.jsonl", "x.parquet", "d/*.jsonl"))


@pytest.mark.parametrize("workers, batches", [(1, 5), (2, 3), (3, 4), (3, 7)])
def test_resumed_stream_delivers_what_the_uninterrupted_one_would(three_files, monkeypatch, workers, batches):
    """Round-robin over workers (batch i from worker i mod W), 2 rows a batch, across pass boundaries."""

    def delivered(start: int, count: int) -> list[tuple]:
        stream = InfIRStream(LocalSource(three_files), 1, 2, shuffle_buffer=4, seed=3, repeat=True)
        stream.start_at(start, batch_rows=2)
        per_worker = []
        for worker in range(workers):
            info = SimpleNamespace(id=worker, num_workers=workers)
            monkeypatch.setattr(dataset_module, "get_worker_info", lambda info=info: info)
            rows = iter(stream)
            batches_of_worker = len(range(worker, count, workers))
            per_worker.append(
                [
                    tuple((r["query_positive"], r[POSITION]) for r in (next(rows), next(rows)))
                    for _ in range(batches_of_worker)
                ]
            )
        return [per_worker[i % workers][i // workers] for i in range(count)]

    full = delivered(0, batches + 6)
    assert full[batches:] == delivered(batches, 6)
    assert len({p[0] for batch in full for _, p in batch}) > 1  # resumed across pass boundaries
