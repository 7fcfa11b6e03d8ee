"""``python run.py task=build_data`` as a user runs it: rows from a BEIR folder that ``data=local`` trains on,
re-mined with the trained checkpoint; the OpenAI-compatible backend against a local stub (429, timeout, malformed
answer) killed mid-build and resumed from the response cache without asking twice; a random causal LM through
transformers whose meaningless answers are counted; bad input stopping with one line."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from infembed.data.schema import COLUMNS

from helpers import ROOT, offline_env, run_py
from helpers.build import TOPICS, ChatStub, chat_lm, collection

pytestmark = pytest.mark.e2e
SCHEMA = list(COLUMNS)


def build(tmp_path: Path, run: str, *overrides: str) -> list[str]:
    """The overrides of a build run writing into ``tmp_path/run`` (MiniLM mines; caches under tmp_path)."""
    return [
        "task=build_data",
        f"hydra.run.dir={tmp_path / run}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"build.input={tmp_path / 'collection'}",
        "logger=csv",
        *overrides,
    ]


def summary(tmp_path: Path, run: str) -> dict:
    return json.loads((tmp_path / run / "summary.json").read_text())


def test_build_without_llm_trains_and_refreshes_with_the_trained_model(tmp_path):
    collection(tmp_path / "collection")
    rows = tmp_path / "rows.parquet"
    done = run_py(*build(tmp_path, "build", f"build.output={rows}"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_parquet(rows)
    stats = summary(tmp_path, "build")
    assert stats["accepted"] == len(table) == 30 and stats["acceptance_rate"] == 1.0
    assert (
        stats["mining"]["suspected_false_negatives"] > 0
        and "| acceptance rate | 100.0 % |" in done.stdout + done.stderr
    )
    assert (table.instruction_negative != table.instruction_positive).all()
    assert (table.hard_negative_document_1 != table.document_positive).all()
    assert set(table.generator_model) == {"none"} and set(table.mining_encoder) == {"minilm"}
    assert all(len(ids) == 3 and ids[0].endswith("-pos") for ids in table.source_document_ids)

    trained = run_py(
        "debug=smoke", "data=local", f"data.train_source={rows}", "evaluation.before=false", "logger=csv",
        f"hydra.run.dir={tmp_path / 'train'}", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = tmp_path / "train" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()

    # the tiny trained BERT scores everything alike, so the filter is opened (margin 2) to see the re-mining
    refreshed = tmp_path / "refreshed.jsonl"
    done = run_py(
        *build(tmp_path, "refresh", f"build.refresh_from={rows}", f"ckpt_path={checkpoint}",
               f"build.output={refreshed}", "build.mining.margin=2"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    new = pd.read_json(refreshed, lines=True)
    assert len(new) == 30 and summary(tmp_path, "refresh")["mode"] == "refresh"
    assert (new[SCHEMA[:5] + SCHEMA[6:]].values == table[SCHEMA[:5] + SCHEMA[6:]].values).all()
    assert (new.hard_negative_document_1 != new.document_positive).all()
    assert set(new.mining_encoder) == {str(checkpoint)}


def test_openai_build_survives_faults_and_resumes_after_a_kill_without_asking_twice(tmp_path):
    collection(tmp_path / "collection")
    killed = {}
    with ChatStub(status={1: 429}, slow={2: 6.0}, malformed={3}) as stub:
        args = build(
            tmp_path, "run", "generator=openai", f"generator.base_url={stub.url}", "generator.model=stub-model",
            "generator.timeout_s=3", "generator.backoff_s=0.01", "generator.concurrency=1", "build.max_rows=4",
        )  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), *args], cwd=tmp_path, env=offline_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stub.kill = (14, lambda: killed.setdefault("signal", os.kill(process.pid, signal.SIGKILL)))
        assert process.wait(timeout=300) == -signal.SIGKILL and "signal" in killed
        assert not (tmp_path / "run" / "rows.jsonl").exists()  # nothing half written
        cached = len(list((tmp_path / "cache" / "llm_responses").rglob("*.json")))
        assert cached == 14 - 1 - 2  # every answer before the kill (not the 429 nor the timed-out one)

        stub.kill, before = None, stub.requests
        resumed = run_py(*args, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        stats = summary(tmp_path, "run")
        assert stats["cache_hits"] == cached and stub.requests - before == stats["requests"] > 0
        assert stats["malformed_answers"]["poison"] == 1  # the malformed answer was cached and parsed again
        rows = pd.read_json(tmp_path / "run" / "rows.jsonl", lines=True)
        assert stats["accepted"] == len(rows) and stats["acceptance_rate"] == len(rows) / 4
        assert set(rows.generator_model) == set(rows.judge_model) == {"stub-model"} and set(
            rows.prompt_version
        ) == {"v1"}
        for verdicts in rows.verdicts.map(json.loads):
            assert verdicts == {
                "positive": True, "instruction_negative": True, "query_negative": True,
                "poisoned_instruction": False, "poisoned_query": False,
            }  # fmt: skip

        before = stub.requests
        again = run_py(*args[:1], f"hydra.run.dir={tmp_path / 'again'}", *args[2:], cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        assert stub.requests == before and summary(tmp_path, "again")["requests"] == 0
        assert (tmp_path / "again" / "rows.jsonl").read_text() == (
            tmp_path / "run" / "rows.jsonl"
        ).read_text()


def test_transformers_backend_counts_malformed_answers_and_writes_no_rows(tiny_qwen, tmp_path):
    collection(tmp_path / "collection")
    model = chat_lm(tiny_qwen, tmp_path / "lm")
    done = run_py(
        *build(tmp_path, "run", "generator=transformers", f"generator.model={model}",
               "generator.max_new_tokens=4", "build.max_rows=2", "build.max_attempts=2"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        "BuildError: no row accepted out of 2 pairs: {'no_valid_poison_answer': 2}"
        in done.stderr + done.stdout
    )
    stats = summary(tmp_path, "run")
    assert stats["malformed_answers"] == {"poison": 4, "judge": 0} and stats["requests"] == 4
    assert not (tmp_path / "run" / "rows.jsonl").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("build.output=rows.csv", "build.output=rows.csv: expected a path ending in .jsonl or .parquet"),
        ("build.input=/no/such/folder", "/no/such/folder: benchmark folder not found"),
        ("build.mining.margin=0", "build.mining.margin=0: expected a number > 0"),
        ("build.mining.negatives=random", "build.mining.negatives='random': expected one of mined, judged"),
        ("generator=openai", "generator.model: the endpoint's model name is required"),
    ],
)
def test_bad_input_stops_with_one_line(tmp_path, override, message):
    collection(tmp_path / "collection")
    done = run_py(*build(tmp_path, "run", "model=tiny", override), cwd=tmp_path)
    assert done.returncode == 1 and message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_several_folders_with_judged_negatives(tmp_path):
    """Two collections as one (ids prefixed by folder, swaps across them), hard negatives from the judged
    non-relevant documents only."""
    collection(tmp_path / "collection" / "first", TOPICS[:4], judged_negatives=True)
    collection(tmp_path / "collection" / "second", TOPICS[4:8], judged_negatives=True)
    folders = f"[{tmp_path / 'collection' / 'first'},{tmp_path / 'collection' / 'second'}]"
    done = run_py(
        *build(
            tmp_path,
            "run",
            f"build.input={folders}",
            "build.min_relevance=[1,1]",
            "build.mining.negatives=judged",
        ),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = pd.read_json(tmp_path / "run" / "rows.jsonl", lines=True)
    assert len(rows) == 24 and {q.split("/")[0] for q in rows.source_query_id} == {"first", "second"}
    assert summary(tmp_path, "run")["mining"]["first_candidate_judged_non_relevant"] == 24
    for query_id, (positive, negative, _) in zip(rows.source_query_id, rows.source_document_ids):
        folder, qid = query_id.split("/")
        topic = qid.split("-")[1]
        assert positive.startswith(f"{folder}/d-{topic}-") and positive.endswith("-pos")
        assert (
            negative.startswith(f"{folder}/d-{topic}-") and negative.endswith("-pos") and negative != positive
        )
    mismatch = run_py(
        *build(tmp_path, "bad", f"build.input={folders}", "build.min_relevance=[1,1,2]"), cwd=tmp_path
    )
    assert (
        mismatch.returncode == 1
        and "expected one number, or one per build.input folder (2)" in mismatch.stdout + mismatch.stderr
    )
