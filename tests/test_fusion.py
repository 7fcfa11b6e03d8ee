"""The instruction-query attention fusion (model.fusion=attention, docs/method.md, "Attention fusion"): the formula against a direct loop,
swap negatives from the batch against encode_pairs, training steps, the smoke run, export, checkpoints, config."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infembed.data.collator import TripletCollator
from infembed.data.schema import expand_row
from infembed.errors import ConfigError
from infembed.export import ExportError, export_sentence_transformers
from infembed.losses import build_loss
from infembed.models.checkpoint import encoder_from_record, encoder_record
from infembed.models.fusion import attention_fusion
from infembed.models.module import RetrievalModule
from infembed.preflight import validate

from helpers import tiny_bert_encoder
from helpers.compose import compose_train, expand
from helpers.training import row

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["what is a cat", "why do large dogs of the northern hills bark at night", "rain"]
INSTRUCTIONS = [
    "answer briefly for children please",
    "experts",
    "only documents written after the war in french",
]


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return tiny_bert_encoder(fusion="attention").eval()


def loop_fusion(h_q: torch.Tensor, h_i: torch.Tensor) -> torch.Tensor:
    """z = mean_t Σ_s softmax_s(h_i[t]·h_q[s] / √D) h_q[s] for unpadded states (Lq, D), (Li, D), one token at a
    time."""
    d = h_q.shape[1]
    rows = []
    for t in range(h_i.shape[0]):
        scores = [float(h_i[t] @ h_q[s]) / math.sqrt(d) for s in range(h_q.shape[0])]
        top = max(scores)
        weights = [math.exp(x - top) for x in scores]
        rows.append(sum(w * h_q[s] for s, w in enumerate(weights)) / sum(weights))
    return sum(rows) / len(rows)


@pytest.mark.parametrize("side", ["right", "left"])
def test_fusion_formula_masks_padding_on_both_sides(side):
    torch.manual_seed(0)
    lengths_q, lengths_i, d = (
        [5, 2, 7, 1],
        [3, 6, 1, 6],
        8,
    )  # the last query is one token, the widths non-powers of 2

    def mask(lengths: list[int], width: int) -> torch.Tensor:  # (B, width) bool
        positions = torch.arange(width)[None] if side == "right" else torch.arange(width - 1, -1, -1)[None]
        return positions < torch.tensor(lengths)[:, None]

    h_q, h_i = torch.randn(4, 7, d), torch.randn(4, 6, d)
    q_mask, i_mask = mask(lengths_q, 7), mask(lengths_i, 6)
    h_q[~q_mask], h_i[~i_mask] = 1e3, -1e3  # padding states that would dominate if they leaked in
    fused = attention_fusion(h_q, q_mask.long(), h_i, i_mask.long())  # (4, D)
    for b in range(4):
        expected = loop_fusion(h_q[b][q_mask[b]], h_i[b][i_mask[b]])
        torch.testing.assert_close(fused[b], expected, atol=1e-5, rtol=1e-5)


def test_encode_pairs_is_the_formula_on_separately_encoded_texts(encoder):
    """Batched (padded) encode_pairs == each query and instruction encoded alone, fused by the loop, normalised."""
    fused = encoder.encode_pairs(QUERIES, INSTRUCTIONS, batch_size=3)  # (3, D)
    with torch.no_grad():
        for b, (query, instruction) in enumerate(zip(QUERIES, INSTRUCTIONS)):
            h_q = encoder.token_states(encoder.text.tokenize([query], "pair"), "pair")[
                0
            ]  # (Lq, D) no padding
            h_i = encoder.token_states(encoder.text.tokenize([instruction], "pair"), "pair")[0]  # (Li, D)
            expected = torch.nn.functional.normalize(loop_fusion(h_q, h_i), dim=0)
            torch.testing.assert_close(fused[b], expected, atol=1e-5, rtol=1e-4)


def test_empty_instruction_is_the_mean_pooled_query(encoder):
    concat = tiny_bert_encoder(fusion="concat").eval()
    concat.load_state_dict(encoder.state_dict())
    without = encoder.encode_pairs(QUERIES, ["", " ", INSTRUCTIONS[2]])
    reference = concat.encode_pairs(QUERIES, ["", "", ""])  # the query alone, mean-pooled
    torch.testing.assert_close(without[:2], reference[:2], atol=1e-5, rtol=1e-4)
    assert (without[2] - reference[2]).abs().max() > 1e-3  # a real instruction changes the embedding


def test_mteb_evaluates_attention_through_encode_pairs(tmp_path):
    """mteb runs unchanged; the query side keeps the template's prefix (e5's "query: "), the instruction is raw."""
    import mteb

    from infembed.eval.mteb_adapter import MTEBEncoder

    from helpers.benchmarks import local_task, make_beir

    e5 = tiny_bert_encoder(fusion="attention", pair_template="query: {query} {instruction}").eval()
    with torch.no_grad():
        h_q = e5.token_states(e5.text.tokenize(["query: pets"], "pair"), "pair")[0]  # (Lq, D)
        h_i = e5.token_states(e5.text.tokenize(["cats purr"], "pair"), "pair")[0]  # (Li, D)
    expected = torch.nn.functional.normalize(loop_fusion(h_q, h_i), dim=0)
    torch.testing.assert_close(e5.encode_pairs(["pets"], ["cats purr"])[0], expected, atol=1e-5, rtol=1e-4)
    results = mteb.evaluate(
        MTEBEncoder(e5, name="infembed/tiny-attention"),
        local_task(make_beir(tmp_path / "toy")),
        cache=None,
        show_progress_bar=False,
    )
    assert 0.0 <= results.task_results[0].scores["test"][0]["ndcg_at_10"] <= 1.0


def test_swap_embeddings_from_the_batch_are_the_swapped_pairs(encoder):
    rows = [row(n) for n in range(3)]
    batch = TripletCollator(encoder.text, num_swap_negatives=3, seed=1, fusion="attention")(rows)
    assert batch.pairs is None and batch.swap_pairs is None and batch.num_triplets == 9
    with torch.no_grad():
        z, swapped = encoder.encode_fused(
            batch.queries, batch.instructions, batch.swap_index
        )  # (N, D), (N, K, D)
    triplets = [t for r in rows for t in expand_row(r)]  # (instruction, query, passage)
    instructions, queries = [t[0] for t in triplets], [t[1] for t in triplets]
    torch.testing.assert_close(z, encoder.encode_pairs(queries, instructions), atol=1e-5, rtol=1e-4)
    slots = batch.swap_mask.nonzero().tolist()
    assert len(slots) == 9 * 3  # 4 distinct instructions: 3 others for every triplet
    pairs = [(queries[i], instructions[int(batch.swap_index[i, k])]) for i, k in slots]
    assert all(instruction != instructions[i] for (i, _), (_, instruction) in zip(slots, pairs))
    expected = encoder.encode_pairs([q for q, _ in pairs], [ins for _, ins in pairs])  # (S, D)
    torch.testing.assert_close(swapped[batch.swap_mask], expected, atol=1e-5, rtol=1e-4)


def test_attention_swaps_draw_the_same_instructions_as_concat(encoder):
    rows = [row(n) for n in range(4)]
    text = encoder.text
    concat = TripletCollator(text, num_swap_negatives=2, seed=3)
    attention = TripletCollator(text, num_swap_negatives=2, seed=3, fusion="attention")
    instructions = [t[0] for r in rows for t in expand_row(r)]
    u_concat, chosen_concat, _ = concat.sample(instructions, 2, concat.generator(rows))
    batch = attention(rows)
    chosen = [[instructions[int(j)] for j in slot] for slot in batch.swap_index]
    assert chosen == [[u_concat[int(u)] for u in slot] for slot in chosen_concat]


@pytest.mark.parametrize("loss", ["multi_p_i", "uni_p"])  # with ℓ_I (swap negatives) and without
def test_training_step_updates_the_encoder(loss):
    torch.manual_seed(0)
    module = RetrievalModule(
        tiny_bert_encoder(fusion="attention"), build_loss(loss, temperature=0.05, kernel="naive")
    )
    collator = TripletCollator(
        module.encoder.text,
        num_swap_negatives=2 if module.loss_fn.needs_swaps else 0,
        seed=0,
        fusion="attention",
    )
    batch = collator([row(n) for n in range(4)])
    embeddings = module.embed_batch(batch)
    assert (embeddings["iq_swapped"] is not None) == module.loss_fn.needs_swaps
    loss_value = module.loss_fn(**embeddings).loss
    loss_value.backward()
    assert torch.isfinite(loss_value)
    word = module.encoder.backbone.embeddings.word_embeddings.weight
    assert word.grad is not None and word.grad.abs().sum() > 0


def test_grad_cache_with_attention_is_refused():
    with pytest.raises(ConfigError, match="grad_cache.chunk_size=4 with model.fusion=attention"):
        validate(compose_train("model.fusion=attention", "grad_cache.chunk_size=4"))
    with pytest.raises(ConfigError, match=r"grad_cache.chunk_size=\d+ with model.fusion=attention"):
        RetrievalModule(tiny_bert_encoder(fusion="attention"), build_loss("uni_p"), grad_cache_chunk_size=4)


def test_unknown_fusion_is_refused():
    with pytest.raises(ConfigError, match="model.fusion='sum': expected one of concat, attention"):
        tiny_bert_encoder(fusion="sum")


def test_export_refuses_attention(encoder, tmp_path):
    with pytest.raises(ExportError, match="fusion=attention"):
        export_sentence_transformers(encoder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_checkpoint_round_trip_keeps_the_fusion(encoder):
    rebuilt = encoder_from_record(encoder_record(encoder), encoder.state_dict()).eval()
    assert rebuilt.fusion == "attention" and rebuilt.options() == encoder.options()
    torch.testing.assert_close(
        rebuilt.encode_pairs(QUERIES, INSTRUCTIONS), encoder.encode_pairs(QUERIES, INSTRUCTIONS)
    )
    concat = tiny_bert_encoder(fusion="concat")
    concat.load_state_dict(encoder.state_dict())
    assert concat.fingerprint() != encoder.fingerprint()  # mteb's result cache keys on it: the fusion counts


def test_fusion_ablation_crosses_losses_with_fusions():
    cfg = compose_train("experiment=fusion_ablation", hydra_node=True)
    (jobs,) = expand(cfg, ["experiment=fusion_ablation"])
    assert len(jobs) == 11 * 2
    assert {o for job in jobs for o in job if o.startswith("model.fusion=")} == {
        "model.fusion=concat",
        "model.fusion=attention",
    }
    job = dict(o.split("=", 1) for o in jobs[-1])
    job_cfg = compose_train("experiment=fusion_ablation", *jobs[-1], hydra_node=True)
    assert job_cfg.experiment_name == "fusion_ablation"
    assert job_cfg.model.fusion == job["model.fusion"] and job_cfg.loss.name == job["loss"]


@pytest.mark.e2e
def test_smoke_run_with_attention_trains_and_writes_metrics(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "debug=smoke",
            "model.fusion=attention",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["model"]["fusion"] == "attention"
    assert set(metrics["after"]["synthetic"]) >= {"ndcg@10", "p-mrr"}
    assert math.isfinite(metrics["after"]["synthetic"]["ndcg@10"])
    assert "12 queries + 12 instructions" in result.stderr + result.stdout
