import shutil

import pytest
import torch

from infembed.data.collator import TripletCollator
from infembed.errors import CheckpointError, ConfigError
from infembed.losses import build_loss
from infembed.models.checkpoint import load_encoder
from infembed.models.encoder import BiEncoder, pool
from infembed.models.module import RetrievalModule

from helpers import MINILM, TINY_BERT, tiny_bert_encoder


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
    with pytest.raises(ConfigError, match="model.pooling='max': expected one of mean"):
        tiny_bert_encoder(pooling="max")


def test_embeddings_are_unit_norm_and_in_input_order(encoder):
    texts = ["a much longer passage about volcanoes and lava", "short", "medium length text here"]
    together = encoder.encode_passages(texts, batch_size=2)  # sorted by length inside, batches of 2
    one_by_one = torch.cat([encoder.encode_passages([t]) for t in texts])
    assert torch.allclose(together.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(together, one_by_one, atol=1e-5)


def test_pair_text_is_the_template_tokenised_once(encoder):
    assert encoder.text.format_pair("what is lava", "for children") == "what is lava for children"
    via_pairs = encoder.encode_pairs(["what is lava"], ["for children"])
    via_text = encoder.encode_texts(["what is lava for children"], "pair")
    assert torch.equal(via_pairs, via_text)


@pytest.mark.parametrize("template", ["{query} {instr}", "{instruction} only", "{query} {"])
def test_bad_pair_template_is_rejected(template):
    with pytest.raises(ConfigError, match="model.pair_template"):
        tiny_bert_encoder(pair_template=template)


def test_separate_passage_tower_has_its_own_weights():
    enc = tiny_bert_encoder(separate_passage_tower=True)
    assert enc.passage_backbone is not None and enc.passage_backbone is not enc.backbone
    tokens = enc.text.tokenize(["same text"], "pair")
    assert not torch.allclose(enc(tokens, "pair"), enc(tokens, "passage"))


def test_fingerprint_tracks_weights(encoder):
    first = encoder.fingerprint()
    assert first == encoder.fingerprint()
    with torch.no_grad():
        encoder.backbone.embeddings.word_embeddings.weight[0, 0] += 1.0
    assert encoder.fingerprint() != first


def test_passage_fingerprint_ignores_how_pairs_are_written():
    """A corpus cache is keyed on the passage fingerprint: another pair template, pair length or truncation rule
    reuses it (the full fingerprint, mteb's model revision, changes); a passage setting does not."""
    encoder = tiny_bert_encoder()
    passages = encoder.fingerprint(passages_only=True)
    changes = (
        {"pair_template": "Instruct: {instruction} Query: {query}"},
        {"max_pair_length": 9},
        {"truncation": "end"},
    )
    for change in changes:
        encoder.text = encoder.text.replace(**change)
        assert encoder.fingerprint(passages_only=True) == passages
    assert encoder.fingerprint() != encoder.fingerprint(passages_only=True)
    before = encoder.fingerprint()
    encoder.text = encoder.text.replace(passage_template="Passage: {passage}")
    assert encoder.fingerprint(passages_only=True) != passages and encoder.fingerprint() != before


def test_config_overrides_need_random_init():
    with pytest.raises(ConfigError, match="random_init"):
        BiEncoder(MINILM, config_overrides={"num_hidden_layers": 1})


ROW = {
    "query_positive": "what is lava",
    "query_negative": "who found lava",
    "instruction_positive": "for children",
    "instruction_negative": "for geologists",
    "document_positive": "lava is hot rock",
    "hard_negative_document_1": "basalt petrology",
    "hard_negative_document_2": "the discovery of lava",
}


LONG_QUERY = "what is lava and how does it flow down the side of a volcano " * 3


@pytest.mark.parametrize("truncation", ["query", "end"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("query", [ROW["query_positive"], LONG_QUERY], ids=["short", "long"])
def test_training_and_evaluation_tokenise_identically(padding_side, truncation, query):
    """The collator (training) and encode_pairs/encode_passages (evaluation) feed the backbone the same ids,
    also for a query above max_pair_length under either truncation rule."""
    encoder = tiny_bert_encoder(
        pair_template="query: {query} | {instruction}",
        passage_template="passage: {passage}",
        max_pair_length=12,
        padding_side=padding_side,
        truncation=truncation,
    )
    batch = TripletCollator(encoder.text)([{**ROW, "query_positive": query}])
    seen = []
    encoder.backbone.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"][kwargs["attention_mask"].bool()]),
        with_kwargs=True,
    )
    encoder.encode_pairs([query], [ROW["instruction_positive"]])
    encoder.encode_passages([ROW["document_positive"]])
    for tokens, evaluated in zip((batch.pairs, batch.passages), seen):
        mask = tokens["attention_mask"][0].bool()
        assert tokens["input_ids"][0][mask].tolist() == evaluated.tolist()
    assert batch.pairs["attention_mask"][0].sum() == min(
        12, len(encoder.tokenizer(f"query: {query} | for children").input_ids)
    )


def test_bert_pooler_is_dropped():
    """Mean pooling never uses BERT's pooler: kept, it would have no gradient and DDP would refuse to step."""
    encoder = tiny_bert_encoder()
    assert not any("pooler" in name for name, _ in encoder.named_parameters())


def test_checkpoint_rebuilds_the_encoder_without_its_original_folder(tmp_path):
    folder = tmp_path / "backbone"
    shutil.copytree(MINILM, folder)
    torch.manual_seed(0)
    encoder = BiEncoder(
        str(folder),
        name="tiny",
        random_init=True,
        config_overrides=TINY_BERT,
        pair_template="query: {query} {instruction}",
        max_pair_length=32,
    )
    module = RetrievalModule(encoder, build_loss("uni_p"))
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)  # what Lightning calls when it writes a .ckpt
    torch.save(checkpoint, tmp_path / "last.ckpt")
    expected = encoder.encode_pairs(["what is lava"], ["for children"])
    shutil.rmtree(folder)  # another machine: the training folder is gone
    loaded = load_encoder(tmp_path / "last.ckpt")
    assert loaded.name == "tiny" and loaded.text.pair_template == "query: {query} {instruction}"
    assert torch.equal(loaded.encode_pairs(["what is lava"], ["for children"]), expected)
    assert load_encoder(tmp_path / "last.ckpt", max_pair_length=8).text.max_pair_length == 8


def test_bad_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_encoder(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_encoder(tmp_path / "junk.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="not written by infembed"):
        load_encoder(tmp_path / "foreign.ckpt")
