"""A trained MiniLM exported the way a user does it (run.py, then python -m infembed.export): a hub-ready card, a
silent load in sentence-transformers, long queries cut at the pair length, and mteb on the export scoring what the
project's own evaluation of the same checkpoint scores."""

import json
import subprocess
import sys

import mteb
import pytest
import torch
import yaml
from sentence_transformers import SentenceTransformer

from infembed.eval.benchmarks import load_benchmark
from infembed.eval.runner import evaluate_benchmark
from infembed.export import MINILM_HUB_ID
from infembed.models.checkpoint import load_encoder

from helpers import offline_env, run_module, run_py
from helpers.benchmarks import local_task, make_beir

PAIR_LENGTH = 4  # tokens with [CLS] and [SEP]: every test query of make_beir is longer


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("export")
    train = run_py(
        "debug=smoke",
        "model=minilm",
        f"model.max_pair_length={PAIR_LENGTH}",
        "model.truncation=end",  # what sentence-transformers does; truncation=query: see the last test
        "logger=csv",
        "evaluation.before=false",
        "trainer.max_steps=2",
        f"hydra.run.dir={cwd}/run",
        cwd=cwd,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    ckpt = cwd / "run" / "checkpoints" / "last.ckpt"
    export = run_module(
        "infembed.export",
        "--ckpt",
        str(ckpt),
        "--out",
        str(cwd / "exported"),
        "--metrics",
        str(cwd / "run" / "metrics.json"),
        cwd=cwd,
    )
    assert export.returncode == 0, export.stderr[-3000:]
    return cwd, ckpt, cwd / "exported"


@pytest.mark.e2e
def test_card_is_hub_ready(exported):
    cwd, _, out = exported
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["base_model"] == MINILM_HUB_ID and header["license"] == "apache-2.0"
    assert header["library_name"] == "sentence-transformers"
    metrics = json.loads((cwd / "run" / "metrics.json").read_text())["after"]["synthetic"]
    (entry,) = header["model-index"]
    assert entry["results"][0]["metrics"] == [{"type": k, "value": v} for k, v in metrics.items()]
    assert f"| synthetic | ndcg@10 | – | {100 * metrics['ndcg@10']:.1f} |" in card  # the table, not the JSON
    assert "infembed.losses.registry.MultiPILoss" in card and "synthetic instruction-following data" in card
    for leak in ("${", ".cache/infembed", "site-packages", '"config"'):
        assert leak not in card, leak
    assert f"**Maximum Query Length:** {PAIR_LENGTH} tokens" in card


@pytest.mark.e2e
def test_export_loads_without_warnings(exported):
    _, _, out = exported
    code = f"from sentence_transformers import SentenceTransformer; SentenceTransformer({str(out)!r}, device='cpu')"
    env = offline_env(HF_HUB_DISABLE_PROGRESS_BARS="1")
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "Loading weights" not in line]  # its progress bar
    assert said == []  # a BERT saved without its pooler printed a "pooler.dense.* MISSING" load report here


@pytest.mark.e2e
def test_long_queries_are_cut_at_the_pair_length(exported):
    _, ckpt, out = exported
    encoder, model = load_encoder(ckpt), SentenceTransformer(str(out), device="cpu")
    query, instruction = "what do cats eat at night", "answer in one short sentence"
    expected = encoder.encode_pairs([query], [instruction])  # (1, D)
    got = model.encode_query([f"{query} {instruction}"], convert_to_tensor=True)
    assert torch.allclose(got.cpu(), expected, atol=1e-5)
    untruncated = model.encode(
        [f"{query} {instruction}"], convert_to_tensor=True
    )  # no task: the longer length
    assert not torch.allclose(untruncated.cpu(), expected, atol=1e-3)


@pytest.mark.e2e
def test_mteb_on_the_export_equals_the_projects_evaluation(exported, tmp_path):
    _, ckpt, out = exported
    folder = make_beir(tmp_path / "beir", with_negatives=False)  # full-corpus retrieval on both sides
    ours = evaluate_benchmark(load_encoder(ckpt), load_benchmark(str(folder), "test"), ["ndcg@10"])
    results = mteb.evaluate(
        SentenceTransformer(str(out), device="cpu"), local_task(folder), cache=None, show_progress_bar=False
    )
    (task_result,) = results.task_results
    assert task_result.scores["test"][0]["ndcg_at_10"] == pytest.approx(ours.metrics["ndcg@10"], abs=1e-4)


def test_query_truncation_is_named_once_as_a_warning_and_in_the_card(tmp_path):
    """A text spec that cuts the query and keeps the instruction (``truncation="query"``): ST cuts the end."""
    from infembed.export import ExportWarning, export_sentence_transformers

    from helpers import tiny_bert_encoder

    encoder = tiny_bert_encoder(truncation="query", max_pair_length=8)
    with pytest.warns(ExportWarning) as caught:
        out = export_sentence_transformers(encoder, tmp_path / "export")
    (warning,) = caught
    assert "truncation='query'" in str(warning.message) and "loses the end of its instruction" in str(
        warning.message
    )
    card = (out / "README.md").read_text()
    assert "What this export cannot express" in card and "truncation='query'" in card
    model = SentenceTransformer(str(out), device="cpu")
    short = model.encode_query(["cats purr"], convert_to_tensor=True).cpu()  # under the limit: no difference
    assert torch.allclose(short, encoder.encode_pairs(["cats"], ["purr"]), atol=1e-5)


@pytest.mark.e2e
def test_export_of_a_missing_checkpoint_is_one_line(tmp_path):
    result = run_module(
        "infembed.export", "--ckpt", str(tmp_path / "no.ckpt"), "--out", str(tmp_path / "x"), cwd=tmp_path
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"CheckpointError: {tmp_path / 'no.ckpt'}: no such checkpoint file"
