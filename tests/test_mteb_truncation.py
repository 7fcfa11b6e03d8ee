"""The mteb adapter cuts long pairs with the encoder's text spec: the checkpoint's truncation, or --truncation."""

import json

import mteb
import pytest
import torch
from mteb.types import PromptType
from torch.utils.data import DataLoader

from infembed.eval import mteb_adapter
from infembed.losses import build_loss
from infembed.models.module import RetrievalModule

from helpers import tiny_bert_encoder
from helpers.benchmarks import local_task, make_long_query_beir

LONG_QUERY = "tell me everything about lava " * 80


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny encoder trained with the default truncation=query, saved as run.py saves it."""
    torch.manual_seed(0)
    module = RetrievalModule(tiny_bert_encoder(max_pair_length=32), build_loss("uni_p"))
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)  # what Lightning calls when it writes a .ckpt
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("truncation, differ", [("query", True), ("end", False)])
def test_mteb_queries_keep_their_instruction_under_query_truncation(truncation, differ):
    model = mteb_adapter.MTEBEncoder(tiny_bert_encoder(max_pair_length=32, truncation=truncation))
    queries = DataLoader(
        [
            {"query": LONG_QUERY, "instruction": "for children"},
            {"query": LONG_QUERY, "instruction": "for experts"},
        ],
        batch_size=2,
    )
    got = model.encode(
        queries, task_metadata=None, hf_split="test", hf_subset="default", prompt_type=PromptType.query
    )
    assert (got[0] != got[1]).any() == differ


def test_one_command_takes_the_checkpoints_truncation_or_the_flag(tmp_path, monkeypatch, capsys, checkpoint):
    """Each rule is its own model revision in mteb's result cache (the fingerprint covers the text spec)."""
    task = local_task(make_long_query_beir(tmp_path / "long"))
    monkeypatch.setattr(
        mteb, "get_tasks", lambda tasks: [task] if tasks == ["LocalInstructionRetrieval"] else []
    )
    out = tmp_path / "results"
    common = ["--ckpt", str(checkpoint), "--tasks", "LocalInstructionRetrieval", "--out", str(out)]
    mteb_adapter.main(common)
    mteb_adapter.main([*common, "--truncation", "query"])  # the checkpoint's own rule: the same revision
    assert len(list(out.rglob("LocalInstructionRetrieval.json"))) == 1
    mteb_adapter.main([*common, "--truncation", "end"])
    files = sorted(out.rglob("LocalInstructionRetrieval.json"))
    assert len(files) == 2 and files[0].parent != files[1].parent  # one revision folder per rule
    assert all("ndcg_at_10" in json.dumps(json.loads(f.read_text())) for f in files)
    assert capsys.readouterr().out.count("LocalInstructionRetrieval: ") == 3
