"""The mteb adapter's command line on local folders (BEIR-style with judged pools, FollowIR) and offline."""

import re

import pytest

from infembed.eval.benchmarks import load_benchmark
from infembed.eval.runner import evaluate_benchmark
from infembed.models.encoder import BiEncoder

from helpers import MINILM, run_module
from helpers.benchmarks import make_beir, make_followir

ADAPTER = "infembed.eval.mteb_adapter"


def scores(stdout: str) -> dict[str, float]:
    return {name: float(value) for name, value in re.findall(r"^(.+): (-?[\d.]+)$", stdout, re.MULTILINE)}


@pytest.mark.e2e
def test_local_folders_score_as_the_projects_evaluation(tmp_path):
    beir, followir = make_beir(tmp_path / "toy"), make_followir(tmp_path / "fir")
    result = run_module(ADAPTER, "--model", MINILM, "--folder", str(beir), str(followir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = scores(result.stdout)
    encoder = BiEncoder(MINILM)
    ours_beir = evaluate_benchmark(encoder, load_benchmark(str(beir)), ["ndcg@10"])  # reranks the judged pool
    ours_fir = evaluate_benchmark(encoder, load_benchmark(str(followir)), ["ndcg@10"])
    assert printed["toy"] == pytest.approx(ours_beir.metrics["ndcg@10"], abs=1e-4)
    assert printed["fir"] == pytest.approx(
        ours_fir.metrics["p-mrr"], abs=1e-4
    )  # FollowIR: p-MRR is the score
    assert printed["mean over 2 tasks"] == pytest.approx((printed["toy"] + printed["fir"]) / 2, abs=1e-4)


@pytest.mark.e2e
def test_hub_task_offline_is_one_line(tmp_path):
    result = run_module(ADAPTER, "--model", MINILM, "--tasks", "SciFact", cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("HubUnavailable: mteb: the data of SciFact is on the Hugging Face hub")
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_a_broken_folder_is_one_line(tmp_path):
    folder = make_beir(tmp_path / "toy")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "pets"}\nnot json\n')
    result = run_module(ADAPTER, "--model", MINILM, "--folder", str(folder), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "queries.jsonl:2: malformed JSON" in result.stderr and "Loading weights" not in result.stderr
    )  # before the model
