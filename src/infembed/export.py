"""Export a trained BiEncoder to a plain Hugging Face / sentence-transformers folder that loads without infembed.

    python -m infembed.export --ckpt logs/.../checkpoints/last.ckpt --out exported/my-model

The folder holds the backbone (``save_pretrained``: ``config.json`` + ``model.safetensors``) and its tokenizer at the
top level, plus the classic sentence-transformers module files (``modules.json``, ``sentence_bert_config.json``,
``1_Pooling/config.json``, ``2_Normalize/`` when normalised, ``config_sentence_transformers.json``), so both work:

- ``transformers.AutoModel.from_pretrained(DIR)`` + the pooling named in ``1_Pooling/config.json`` + L2 norm;
- ``sentence_transformers.SentenceTransformer(DIR)``.

The pair text must be built exactly as in training: ``pair_template.format(query=..., instruction=...)``, stripped
(stored in ``config_sentence_transformers.json`` under ``infembed`` and in ``infembed.json``); passages go through
``passage_template``, whose fixed prefix is also the ``document`` prompt. sentence-transformers has one
``max_seq_length``: the passage length is stored; the pair length is in ``infembed.json``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from infembed.errors import UserError

POOLING_FLAGS = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "last": "pooling_mode_lasttoken",
}


class ExportError(UserError):
    """The encoder cannot be represented as one sentence-transformers folder."""


def _write_json(path: Path, payload: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _prefix(template: str, field: str) -> str | None:
    """``"passage: {passage}"`` -> ``"passage: "``; None when the template has text after the field."""
    head, _, tail = template.partition("{" + field + "}")
    return head if tail == "" else None


def export_sentence_transformers(encoder, out_dir: str | os.PathLike) -> Path:
    """Write ``encoder`` (a ``BiEncoder`` with one shared tower) to ``out_dir``; returns the folder."""
    if encoder.passage_backbone is not None:
        raise ExportError(
            "export: separate_passage_tower=True has two backbones; a sentence-transformers folder holds one"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder.backbone.save_pretrained(out)
    encoder.tokenizer.save_pretrained(out)
    text = encoder.text
    passage_template = text.passage_template
    templates = {
        "pair_template": text.pair_template,
        "passage_template": passage_template,
        "pooling": encoder.pooling,
        "normalize": encoder.normalize,
        "max_pair_length": text.max_pair_length,
        "max_passage_length": text.max_passage_length,
        "padding_side": text.padding_side,
        "usage": "queries: encode pair_template.format(query=q, instruction=i).strip() with no prompt; "
        "passages: passage_template.format(passage=p) (or prompt_name='document' when it is a plain prefix)",
    }
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if encoder.normalize:
        normalize = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        modules.append(normalize)
        (out / "2_Normalize").mkdir(exist_ok=True)
    _write_json(out / "modules.json", modules)
    st_config = {"max_seq_length": text.max_passage_length, "do_lower_case": False}
    _write_json(out / "sentence_bert_config.json", st_config)
    pooling = {flag: encoder.pooling == name for name, flag in POOLING_FLAGS.items()}
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": encoder.backbone.config.hidden_size,
        **pooling,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "include_prompt": True,
    })
    document_prompt = _prefix(passage_template, "passage")
    _write_json(out / "config_sentence_transformers.json", {
        "prompts": {"query": "", "document": document_prompt or ""},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine" if encoder.normalize else "dot",
        "infembed": templates,
    })
    _write_json(out / "infembed.json", templates)
    return out


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m infembed.export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint written by python run.py")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    from infembed.models.checkpoint import load_encoder

    out = export_sentence_transformers(load_encoder(args.ckpt), args.out)
    print(f"exported to {out}")
    return out


if __name__ == "__main__":
    main()
