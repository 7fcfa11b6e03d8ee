"""Export to a plain HF / sentence-transformers folder: same embeddings without infembed."""

import json

import pytest
import torch
import yaml
from sentence_transformers import SentenceTransformer

from infembed.errors import CheckpointError
from infembed.export import ExportError, ExportWarning, export_sentence_transformers
from infembed.losses import build_loss
from infembed.models.module import RetrievalModule

from helpers import tiny_bert_encoder

PAIRS = [("what is a cat", "answer briefly"), ("dogs", "")]
PASSAGES = ["cats are small felines that purr", "a dog is a loyal companion animal, often kept as a pet"]


def _manual_embed(folder, texts, pooling, normalize):
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    tokens = tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**tokens).last_hidden_state  # (B, L, H)
    mask = tokens["attention_mask"].unsqueeze(-1).float()  # (B, L, 1)
    if pooling == "mean":
        pooled = (hidden * mask).sum(1) / mask.sum(1)  # (B, H)
    else:
        pooled = hidden[:, 0]  # (B, H)
    return torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled


@pytest.mark.parametrize("pooling, normalize", [("mean", True), ("cls", False)])
def test_exported_folder_reproduces_embeddings_with_plain_transformers(tmp_path, pooling, normalize):
    template = "Q: {query} I: {instruction}"
    enc = tiny_bert_encoder(pooling=pooling, normalize=normalize, pair_template=template)
    with pytest.warns(ExportWarning, match="no pair prompt is written"):
        out = export_sentence_transformers(enc, tmp_path / "export")
    meta = json.loads((out / "infembed.json").read_text())
    assert meta["pair_template"] == "Q: {query} I: {instruction}" and meta["pooling"] == pooling
    pool_cfg = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pool_cfg["pooling_mode"] == pooling  # sentence-transformers' own Pooling module wrote it
    assert (out / "2_Normalize").is_dir() == normalize
    pair_texts = [meta["pair_template"].format(query=q, instruction=i).strip() for q, i in PAIRS]
    expected_pairs = enc.encode_pairs([q for q, _ in PAIRS], [i for _, i in PAIRS])
    expected_passages = enc.encode_passages(PASSAGES)
    assert torch.allclose(_manual_embed(out, pair_texts, pooling, normalize), expected_pairs, atol=1e-5)
    assert torch.allclose(_manual_embed(out, PASSAGES, pooling, normalize), expected_passages, atol=1e-5)


@pytest.mark.parametrize(
    "pair_template, passage_template, prompts",
    [
        ("{query} {instruction}", "{passage}", {"query": "", "document": ""}),
        ("query: {query} {instruction}", "passage: {passage}", {"query": "query: ", "document": "passage: "}),
    ],
    ids=["default", "e5"],
)
def test_sentence_transformers_round_trip(tmp_path, pair_template, passage_template, prompts):
    enc = tiny_bert_encoder(pair_template=pair_template, passage_template=passage_template)
    out = export_sentence_transformers(enc, tmp_path / "export")
    model = SentenceTransformer(str(out), device="cpu")
    assert model.prompts == prompts
    # the instruction is appended to the query with one space, as mteb 2 joins them
    got = model.encode_query([f"{q} {i}".strip() for q, i in PAIRS], convert_to_tensor=True)
    expected = enc.encode_pairs([q for q, _ in PAIRS], [i for _, i in PAIRS])
    assert torch.allclose(got.cpu(), expected, atol=1e-5)
    got = model.encode_document(PASSAGES, convert_to_tensor=True)
    assert torch.allclose(got.cpu(), enc.encode_passages(PASSAGES), atol=1e-5)


def test_templates_no_prompt_can_express_warn_and_write_no_prompt(tmp_path):
    enc = tiny_bert_encoder(
        pair_template="Instruct: {instruction}\nQuery: {query}",
        passage_template="{passage} </s>",
        truncation="end",
    )
    with pytest.warns(ExportWarning) as caught:
        out = export_sentence_transformers(enc, tmp_path / "export")
    assert [str(w.message).split(" template")[0] for w in caught] == ["export: pair", "export: passage"]
    written = json.loads((out / "config_sentence_transformers.json").read_text())["prompts"]
    assert not any(written.values())  # sentence-transformers' defaults only: empty query and document prompts
    assert "What this export cannot express" in (out / "README.md").read_text()
    model = SentenceTransformer(str(out), device="cpu")  # encode_query then takes the finished pair text
    got = model.encode_query([enc.text.format_pair("cats", "briefly")], convert_to_tensor=True)
    assert torch.allclose(got.cpu(), enc.encode_pairs(["cats"], ["briefly"]), atol=1e-5)


def test_separate_towers_are_refused(tmp_path):
    enc = tiny_bert_encoder(separate_passage_tower=True)
    with pytest.raises(ExportError, match="two backbones"):
        export_sentence_transformers(enc, tmp_path / "export")


def test_export_cli_needs_an_existing_checkpoint(tmp_path):
    from infembed.export import main

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "o")])


def test_export_cli_from_a_lightning_checkpoint_writes_a_model_card(tmp_path):
    from infembed.export import main

    module = RetrievalModule(tiny_bert_encoder(), build_loss("uni_p"))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text(
        "paths:\n  root_dir: /nowhere\n  data_dir: ${paths.root_dir}/data\n"
        "model:\n  backbone: org/some-backbone\n  random_init: false\n"
        "data:\n  train_source: ${paths.data_dir}/inf_ir/train.jsonl\n"
    )
    (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    cwd: /data/project\n")
    ckpt = run / "checkpoints" / "last.ckpt"
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)  # what Lightning adds when it writes a .ckpt
    torch.save(checkpoint, ckpt)
    metrics = {"after": {"synthetic": {"p-mrr": 0.5, "ndcg@10": 0.25}}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    out = main(
        ["--ckpt", str(ckpt), "--out", str(tmp_path / "export"), "--metrics", str(run / "metrics.json")]
    )
    expected = module.encoder.encode_passages(PASSAGES)
    assert torch.allclose(_manual_embed(out, PASSAGES, "mean", True), expected, atol=1e-5)
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["base_model"] == "org/some-backbone" and header["library_name"] == "sentence-transformers"
    assert "datasets" not in header  # a local file is no hub dataset id
    assert header["model-index"][0]["results"][0]["metrics"] == [
        {"type": "p-mrr", "value": 0.5},
        {"type": "ndcg@10", "value": 0.25},
    ]
    for fact in (
        "infembed.losses.registry.UniPLoss",
        '"temperature": 0.05',
        "/data/project/data/inf_ir/train.jsonl",  # resolved against the directory the run started from
        "| synthetic | p-mrr | – | 50.0 |",
        "32 dimensions",
    ):
        assert fact in card, fact
    assert "${" not in card and ".cache/infembed" not in card


def test_export_cli_wise_ft_writes_the_interpolated_weights(tmp_path):
    from infembed.export import main
    from infembed.models.encoder import BiEncoder
    from infembed.models.weight_ensemble import interpolate

    initial = tiny_bert_encoder()
    start = tmp_path / "start"
    initial.backbone.save_pretrained(start)
    initial.tokenizer.save_pretrained(start)
    module = RetrievalModule(
        tiny_bert_encoder(), build_loss("uni_p")
    )  # other random weights: the "trained" model
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "last.ckpt")
    with pytest.raises(SystemExit):
        main(["--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "x"), "--wise-ft", "0.5"])
    out = main(
        [
            "--ckpt",
            str(tmp_path / "last.ckpt"),
            "--out",
            str(tmp_path / "export"),
            "--wise-ft",
            "0.3",
            "--initial",
            str(start),
        ]
    )
    expected = interpolate(module.encoder, BiEncoder(str(start), **module.encoder.options()), 0.3)
    assert torch.allclose(
        _manual_embed(out, PASSAGES, "mean", True), expected.encode_passages(PASSAGES), atol=1e-5
    )
    assert not torch.allclose(
        expected.encode_passages(PASSAGES), initial.encode_passages(PASSAGES), atol=1e-3
    )
    assert "WiSE-FT: 0.7 x" in (out / "README.md").read_text()
