"""model.truncation: a pair above max_pair_length loses query tokens, never its instruction first, under every
template, with a WordPiece (MiniLM/BERT) and a byte-level BPE (Qwen2) tokenizer; ``end`` is the old behaviour."""

import pytest
import torch

from infembed.data.collator import TripletCollator
from infembed.errors import ConfigError
from infembed.losses import build_loss
from infembed.models.checkpoint import load_encoder
from infembed.models.encoder import BiEncoder
from infembed.models.module import RetrievalModule
from infembed.text import TextSpec

from helpers import MINILM, tiny_bert_encoder
from helpers.qwen import write_tiny_qwen

TEMPLATES = [
    "{query} {instruction}",
    "Instruct: {instruction}\nQuery: {query}",
    "query: {query} | instruction: {instruction} (answer briefly)",
]
LONG_QUERY = "what is lava and how does it flow down the side of a volcano " * 4
INSTRUCTION = "find a passage for young children that explains it simply"
LIMIT = 24


@pytest.fixture(scope="module")
def qwen(tmp_path_factory) -> str:
    return write_tiny_qwen(tmp_path_factory.mktemp("qwen"))


@pytest.fixture(params=["bert", "qwen"])
def tokenizer(request, qwen) -> tuple[str, str]:
    """(tokenizer folder, padding side): MiniLM's WordPiece right-padded, the Qwen2 BPE left-padded as decoders."""
    return (MINILM, "right") if request.param == "bert" else (qwen, "left")


def spec(tokenizer, **fields) -> TextSpec:
    name, side = tokenizer
    return TextSpec(name, padding_side=side, max_pair_length=LIMIT, **fields)


def kept_ids(tokens: dict, row: int = 0) -> list[int]:
    return tokens["input_ids"][row][tokens["attention_mask"][row].bool()].tolist()


def plain(text: TextSpec, texts: list[str], **kwargs) -> dict:
    """What the tokenizer itself gives (the behaviour before model.truncation)."""
    return text.hf_tokenizer(texts, padding=True, return_tensors="pt", **kwargs)


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_long_query_keeps_its_whole_instruction(tokenizer, template):
    """The kept ids are exactly the pair of a shortened query (whole words here), the budget used to the last
    token: the instruction, the template text and the special tokens are all there."""
    text = spec(tokenizer, pair_template=template)
    got = kept_ids(text.tokenize_pairs([LONG_QUERY], [INSTRUCTION]))
    words = LONG_QUERY.split()
    shortened = [
        plain(text, [text.format_pair(" ".join(words[:n]), INSTRUCTION)])["input_ids"][0].tolist()
        for n in range(1, len(words))
    ]
    assert got in shortened and len(got) == LIMIT
    instruction = text.hf_tokenizer(" " + INSTRUCTION, add_special_tokens=False).input_ids
    assert any(got[i : i + len(instruction)] == instruction for i in range(len(got)))
    assert len(plain(text, [text.format_pair(LONG_QUERY, INSTRUCTION)])["input_ids"][0]) > 2 * LIMIT


@pytest.mark.parametrize("template", TEMPLATES)
def test_end_truncation_reproduces_the_tokenizers_ids(tokenizer, template):
    text = spec(tokenizer, pair_template=template, truncation="end")
    queries, instructions = [LONG_QUERY, "cats purr"], [INSTRUCTION, "for experts"]
    got = text.tokenize_pairs(queries, instructions)
    texts = [text.format_pair(q, i) for q, i in zip(queries, instructions)]
    expected = plain(text, texts, truncation=True, max_length=LIMIT)
    assert torch.equal(got["input_ids"], expected["input_ids"])
    assert torch.equal(got["attention_mask"], expected["attention_mask"])


@pytest.mark.parametrize("template", TEMPLATES)
def test_pairs_that_fit_tokenise_bit_identically_to_before(tokenizer, template):
    """No regression for the default run: ids and masks of pairs within the limit are the tokenizer's own, padded
    as before; in a batch with an over-long pair the short rows keep their ids and are padded on the same side."""
    text = spec(tokenizer, pair_template=template)
    queries, instructions = ["what is lava", "cats purr", "fish"], ["for experts", "", "swim in water"]
    texts = [text.format_pair(q, i) for q, i in zip(queries, instructions)]
    got = text.tokenize_pairs(queries, instructions)
    expected = plain(text, texts, truncation=True, max_length=LIMIT)
    assert torch.equal(got["input_ids"], expected["input_ids"])
    assert torch.equal(got["attention_mask"], expected["attention_mask"])
    mixed = text.tokenize_pairs([*queries, LONG_QUERY], [*instructions, INSTRUCTION])
    assert mixed["input_ids"].shape == (4, LIMIT)
    for row in range(3):
        assert kept_ids(mixed, row) == kept_ids(expected, row)
    real = mixed["attention_mask"][0].bool()
    assert real[-1 if tokenizer[1] == "left" else 0]  # padding on the configured side
    assert (mixed["input_ids"][0][~real] == text.hf_tokenizer.pad_token_id).all()


def test_an_instruction_alone_above_the_limit_loses_its_end_and_the_whole_query(tokenizer):
    text = spec(tokenizer, pair_template="Instruct: {instruction}\nQuery: {query}")
    long_instruction = (INSTRUCTION + " ") * 5
    got = kept_ids(text.tokenize_pairs([LONG_QUERY], [long_instruction]))
    words = long_instruction.split()
    shortened = [
        plain(text, ["Instruct: " + " ".join(words[:n]) + "\nQuery:"])["input_ids"][0].tolist()
        for n in range(len(words))
    ]
    assert got in shortened and len(got) == LIMIT


def test_a_template_longer_than_the_limit_is_a_config_error():
    text = TextSpec(MINILM, pair_template="a b c d e f g h {query} {instruction}", max_pair_length=6)
    with pytest.raises(
        ConfigError, match=r"model.max_pair_length=6: the pair template .* alone take 10 tokens"
    ):
        text.tokenize_pairs([LONG_QUERY], [INSTRUCTION])


def test_an_unknown_truncation_is_a_config_error():
    with pytest.raises(ConfigError, match="model.truncation='start': expected one of query, end"):
        tiny_bert_encoder(truncation="start")


def test_pair_layout_spans_are_the_fields_in_the_formatted_text():
    template = "  Instruct: {instruction}\nQuery: {query} ({query!r:>8}) "
    formatted, spans = TextSpec(MINILM, pair_template=template).pair_layout("lava", "kids")
    assert formatted == template.format(query="lava", instruction="kids").strip()
    assert [formatted[a:b] for a, b in spans["query"]] == ["lava", "  'lava'"]
    assert [formatted[a:b] for a, b in spans["instruction"]] == ["kids"]


@pytest.mark.parametrize("truncation, differ", [("query", True), ("end", False)])
@pytest.mark.parametrize("backbone", ["bert", "qwen"])
def test_the_instruction_changes_the_embedding_of_a_long_query(qwen, backbone, truncation, differ):
    """End to end through encode_pairs: with ``end`` a long query's instruction never reaches the model (the
    embeddings under two instructions are equal), with ``query`` it does. Qwen: last-token pooling, left padding."""
    torch.manual_seed(0)
    if backbone == "bert":
        encoder = tiny_bert_encoder(max_pair_length=LIMIT, truncation=truncation)
    else:
        encoder = BiEncoder(
            qwen,
            random_init=True,
            pooling="last",
            padding_side="left",
            pair_template="{query} {instruction}",
            max_pair_length=LIMIT,
            truncation=truncation,
        )
    kids, experts = encoder.encode_pairs(
        [LONG_QUERY, LONG_QUERY, "short"], [INSTRUCTION, "for experts", "x"]
    )[:2]
    assert torch.equal(kids, experts) != differ


@pytest.mark.parametrize("truncation", ["query", "end"])
def test_the_attention_fusion_sees_the_whole_instruction_of_a_long_query(truncation):
    """fusion=attention encodes the instruction apart from the query: a long query never cuts it."""
    torch.manual_seed(0)
    encoder = tiny_bert_encoder(max_pair_length=LIMIT, truncation=truncation, fusion="attention")
    kids, experts = encoder.encode_pairs([LONG_QUERY, LONG_QUERY], [INSTRUCTION, "for experts"])
    assert not torch.equal(kids, experts)
    row = {
        "query_positive": LONG_QUERY,
        "query_negative": "who found lava",
        "instruction_positive": INSTRUCTION,
        "instruction_negative": "for experts",
        "document_positive": "lava is hot rock",
        "hard_negative_document_1": "basalt petrology",
        "hard_negative_document_2": "the discovery of lava",
    }
    batch = TripletCollator(encoder.text, fusion="attention")([row])
    assert kept_ids(batch.instructions) == encoder.tokenizer(INSTRUCTION).input_ids
    assert batch.queries["attention_mask"][0].sum() == LIMIT


def test_collator_and_evaluation_agree_for_a_long_qwen_pair(qwen):
    """Training and evaluation feed a decoder the same left-padded ids, its last token the instruction's."""
    encoder = BiEncoder(
        qwen,
        random_init=True,
        pooling="last",
        padding_side="left",
        pair_template="Instruct: {instruction}\nQuery: {query}",
        max_pair_length=LIMIT,
    )
    row = {
        "query_positive": LONG_QUERY,
        "query_negative": "cats purr",
        "instruction_positive": INSTRUCTION,
        "instruction_negative": "for experts",
        "document_positive": "lava is hot rock",
        "hard_negative_document_1": "birds sing",
        "hard_negative_document_2": "dogs bark",
    }
    batch = TripletCollator(encoder.text, num_swap_negatives=1)([row])
    seen = []
    encoder.backbone.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"][kwargs["attention_mask"].bool()]),
        with_kwargs=True,
    )
    encoder.encode_pairs([LONG_QUERY], [INSTRUCTION])
    assert kept_ids(batch.pairs) == seen[0].tolist()
    assert batch.pairs["attention_mask"][:, -1].all()  # left padding: every row ends in a real token
    decoded = encoder.tokenizer.decode(kept_ids(batch.pairs))
    assert decoded.startswith(f"Instruct: {INSTRUCTION}\nQuery: what is lava")


def _save(encoder, path, drop_truncation: bool = False):
    module = RetrievalModule(encoder, build_loss("uni_p"))
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)  # what Lightning calls when it writes a .ckpt
    if drop_truncation:  # a checkpoint written before model.truncation existed
        del checkpoint["infembed"]["encoder"]["options"]["truncation"]
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("truncation", ["query", "end"])
def test_the_truncation_travels_in_the_checkpoint(tmp_path, truncation):
    torch.manual_seed(0)
    encoder = tiny_bert_encoder(max_pair_length=LIMIT, truncation=truncation)
    path = _save(encoder, tmp_path / "last.ckpt")
    loaded = load_encoder(path)
    assert loaded.text.replace(tokenizer=encoder.text.tokenizer) == encoder.text
    assert torch.equal(
        loaded.encode_pairs([LONG_QUERY], [INSTRUCTION]), encoder.encode_pairs([LONG_QUERY], [INSTRUCTION])
    )
    other = "end" if truncation == "query" else "query"
    assert load_encoder(path, truncation=other).text.truncation == other


def test_a_checkpoint_from_before_the_option_loads_with_end_truncation(tmp_path, caplog):
    encoder = tiny_bert_encoder(max_pair_length=LIMIT, truncation="end")
    path = _save(encoder, tmp_path / "old.ckpt", drop_truncation=True)
    with caplog.at_level("WARNING", logger="infembed.models.checkpoint"):
        assert load_encoder(path).text.truncation == "end"
    assert "predates model.truncation: loaded with truncation=end" in caplog.text
    caplog.clear()
    assert load_encoder(path, truncation="query").text.truncation == "query"
    assert "predates" not in caplog.text
