"""DataModule: synthetic generation, derived sizes, batches, validation before training, bad settings."""

import json
from types import SimpleNamespace

import pytest
import torch

from infembed.data.datamodule import DataConfigError, InfIRDataModule
from infembed.data.schema import COLUMNS, DataError
from infembed.text import TextSpec

from helpers import MINILM

SYNTHETIC = {"train_rows": 40, "eval_queries": 4, "seed": 0}


def module(tmp_path, **kwargs) -> InfIRDataModule:
    settings = dict(  # noqa: C408 (keyword arguments of the DataModule)
        train_source=str(tmp_path / "synthetic" / "train.jsonl"),
        val_source=str(tmp_path / "synthetic" / "heldout.jsonl"),
        text=TextSpec(MINILM, max_passage_length=64),
        global_batch_size=4,
        synthetic=SYNTHETIC,
        shuffle_buffer=16,
    )
    settings.update(kwargs)
    return InfIRDataModule(**settings)


def test_setup_generates_data_and_derives_sizes(tmp_path):
    dm = module(tmp_path, global_batch_size=8)
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1, accumulate_grad_batches=2)
    with pytest.raises(DataConfigError, match="prepare_data"):  # under DDP only prepare_data() generates
        dm.setup("fit")
    dm.prepare_data()
    dm.setup("fit")
    assert (tmp_path / "synthetic" / "manifest.json").exists()
    assert (dm.rows_per_device, dm.triplets_per_device, dm.num_swap_negatives) == (
        2,
        6,
        2,
    )  # auto: min(6 // 2, 6) - 1
    described = dm.describe()
    assert (
        described["rows_global"] == 8 and described["triplets_global"] == 24 and described["train_rows"] == 40
    )
    assert dm.train_set.rank == 1 and dm.train_set.world_size == 2
    assert dm.val_set.rows_per_shard == 8 // 2  # 8 held-out rows, equal share per rank


def test_train_batches_have_the_collated_layout(tmp_path):
    dm = module(tmp_path, num_swap_negatives=2)
    dm.setup("fit")
    batches = iter(dm.train_dataloader())
    for _ in range(12):  # 40 rows / 4 per batch: runs past the first pass (infinite stream)
        batch = next(batches)
    assert batch.pairs["input_ids"].shape[0] == batch.passages["input_ids"].shape[0] == 12
    assert batch.swap_index.shape == (12, 2) and batch.swap_mask.all()
    val = list(dm.val_dataloader())
    assert sum(b.pairs["input_ids"].shape[0] for b in val) == 3 * 8


def test_worker_processes_produce_every_row_once(tmp_path):
    dm = module(tmp_path, num_workers=2, shuffle_buffer=0, num_swap_negatives=0, global_batch_size=3)
    dm.setup("fit")
    loader = dm.val_dataloader()
    texts = [tuple(ids.tolist()) for batch in loader for ids in batch.passages["input_ids"][0::3]]
    assert len(texts) == len(set(texts)) == 8


def test_hash_carved_validation_when_no_val_source(tmp_path):
    dm = module(tmp_path, val_source=None, val_fraction=0.25)
    dm.setup("fit")
    assert dm.describe()["train_rows"] + dm.describe()["val_rows"] == 40 and dm.describe()["val_rows"] > 0
    assert module(tmp_path, val_source=None, val_fraction=0.0).val_dataloader() == []


def test_indivisible_batch_is_a_clear_error(tmp_path):
    dm = module(tmp_path, global_batch_size=6)
    dm.trainer = SimpleNamespace(world_size=4, global_rank=0, accumulate_grad_batches=1)
    with pytest.raises(DataConfigError, match="global_batch_size=6 .* world_size \\(4\\)"):
        dm.setup("fit")


def bad_file(tmp_path):
    rows = [{c: f"{c} {i}" for c in COLUMNS} for i in range(5)]
    rows[3]["instruction_negative"] = 3
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_bad_rows_stop_setup_before_training(tmp_path):
    dm = module(tmp_path, train_source=bad_file(tmp_path), val_source=None, synthetic=None)
    with pytest.raises(DataError, match="bad.jsonl: line 4: field 'instruction_negative': expected a string"):
        dm.setup("fit")


def test_skip_mode_reports_the_count(tmp_path):
    dm = module(
        tmp_path,
        train_source=bad_file(tmp_path),
        val_source=None,
        synthetic=None,
        on_bad_row="skip",
        val_fraction=0.0,
        num_swap_negatives=0,
        global_batch_size=2,
    )
    dm.setup("fit")
    assert dm.skipped == {"wrong_type": 1} and dm.describe()["train_rows"] == 4
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch.pairs["input_ids"], torch.Tensor)


def test_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="on_bad_row"):
        module(tmp_path, on_bad_row="maybe")
    with pytest.raises(DataConfigError, match="val_fraction"):
        module(tmp_path, val_fraction=1.5)
    for rows in ("abc", 0, 2.5):
        with pytest.raises(DataConfigError, match="data.global_batch_size"):
            module(tmp_path, global_batch_size=rows)
    with pytest.raises(RuntimeError, match="after setup"):
        _ = module(tmp_path).rows_per_device


def test_state_dict_resumes_the_stream_and_refuses_other_settings(tmp_path):
    def passages(dm, n: int) -> list[torch.Tensor]:
        batches = iter(dm.train_dataloader())
        return [next(batches).passages["input_ids"] for _ in range(n)]

    full = module(tmp_path, num_swap_negatives=0)
    full.setup("fit")
    full.trainer = SimpleNamespace(global_step=7, accumulate_grad_batches=1)
    state = full.state_dict()
    assert state["batches"] == 7
    resumed = module(tmp_path, num_swap_negatives=0)
    resumed.setup("fit")
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(passages(full, 12)[7:], passages(resumed, 5)))
    other = module(tmp_path, num_swap_negatives=0, num_workers=2)
    other.setup("fit")
    with pytest.raises(DataConfigError, match="data.num_workers: 0 -> 2"):
        other.load_state_dict(state)


def test_batches_name_their_source_rows(tmp_path):
    dm = module(tmp_path, num_swap_negatives=0, shuffle_buffer=0, val_source=None, val_fraction=0.0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.sources == [f"{tmp_path / 'synthetic' / 'train.jsonl'} line {i}" for i in (1, 2, 3, 4)]


def test_hub_source_needs_no_network_until_iterated(tmp_path):
    from infembed.data.sources import HubSource

    dm = module(
        tmp_path, train_source="InF-IR/InF-IR", train_split="msmarco", val_source=None, synthetic=None
    )
    dm.setup("fit")
    assert isinstance(dm.train_set.source, HubSource) and dm.train_set.source.part == "train"
    assert dm.val_set.source.part == "val" and dm.describe()["train_rows"] is None


def test_skipped_rows_are_reported_at_teardown(tmp_path, caplog):
    dm = module(
        tmp_path,
        train_source=bad_file(tmp_path),
        val_source=None,
        synthetic=None,
        on_bad_row="skip",
        val_fraction=0.0,
    )
    dm.setup("fit")
    dm.teardown("fit")
    assert "skipped bad rows per reason: {'wrong_type': 1}" in caplog.text


def test_losses_without_swaps_get_no_swap_pairs(tmp_path):
    dm = module(tmp_path, num_swap_negatives=3, needs_swaps=False)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert dm.num_swap_negatives == 0 and batch.swap_index is None and batch.swap_pairs is None
