"""Export a trained BiEncoder to a plain Hugging Face / sentence-transformers folder that loads without infembed.

    python -m infembed.export --ckpt logs/.../checkpoints/last.ckpt --out exported/my-model [--metrics metrics.json]
        [--wise-ft 0.5 --initial BACKBONE]   # weights interpolated with the untrained backbone (WiSE-FT)

The folder holds the backbone (``save_pretrained``: ``config.json`` + ``model.safetensors``) and its tokenizer at the
top level, the sentence-transformers module files (``modules.json``, ``sentence_bert_config.json``,
``1_Pooling/config.json``, ``2_Normalize/`` when normalised, ``config_sentence_transformers.json``), ``infembed.json``
(the text settings) and a model card ``README.md``. Both of these work:

- ``sentence_transformers.SentenceTransformer(DIR)``: ``encode_query(f"{query} {instruction}")`` and
  ``encode_document(passage)`` reproduce ``BiEncoder.encode_pairs`` / ``encode_passages`` (passages with a title:
  ``"title text"``). The instruction is appended to the query with one space, as mteb 2 does, so
  ``mteb.evaluate(SentenceTransformer(DIR), tasks)`` gives the BiEncoder's embeddings too;
- ``transformers.AutoModel.from_pretrained(DIR)`` + the pooling named in ``1_Pooling/config.json`` + L2 norm, on
  ``pair_template.format(query=..., instruction=...).strip()`` and ``passage_template.format(passage=...)``.

What a sentence-transformers prompt (a fixed prefix) can express, and what it cannot:

- a pair template ``"<prefix>{query} {instruction}"`` (the default ``"{query} {instruction}"``, e5's
  ``"query: {query} {instruction}"``) becomes the ``query`` prompt ``<prefix>``; any other pair template (the
  instruction first, as in ``"Instruct: {instruction}\nQuery: {query}"``, or text after the instruction) cannot: the
  export warns (``ExportWarning``), writes no ``query`` prompt, and ``encode_query`` then expects the finished pair
  text (``pair_template`` from ``infembed.json``);
- a passage template ``"<prefix>{passage}"`` becomes the ``document`` prompt; text after ``{passage}`` cannot, with
  the same warning and no ``document`` prompt;
- sentence-transformers has one ``max_seq_length``: the passage length is stored, so queries longer than the pair
  length (``max_pair_length`` in ``infembed.json``) are truncated later than in infembed;
- two towers (``separate_passage_tower=True``) cannot: ``ExportError``;
- the attention fusion (``fusion="attention"``: query and instruction encoded apart, then fused) cannot either, as a
  sentence-transformers model maps one text to one vector: ``ExportError`` (evaluate it with infembed's
  ``encode_pairs``, e.g. through ``python -m infembed.eval.mteb_adapter``).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

from infembed.errors import UserError

POOLING_FLAGS = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "last": "pooling_mode_lasttoken",
}
PAIR_TAIL = "{query} {instruction}"


class ExportError(UserError):
    """The encoder cannot be represented as one sentence-transformers folder."""


class ExportWarning(UserWarning):
    """A template that no sentence-transformers prompt can express (see the module docstring)."""


def _write_json(path: Path, payload: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _text_settings(encoder) -> dict:
    """The encoder's text settings (the one place this file reads them)."""
    return {k: v for k, v in encoder.text.as_dict().items() if k != "tokenizer"}


def _prompt(template: str, tail: str, kind: str) -> str | None:
    """``"<prefix>" + tail`` -> ``"<prefix>"`` (leading spaces dropped, as the pair text is stripped); else None
    with an ``ExportWarning``."""
    head = template[: -len(tail)] if template.endswith(tail) else None
    if head is None or "{" in head:
        warnings.warn(
            f"export: {kind} template {template!r} is not '<prefix>{tail}', so no sentence-transformers prompt can "
            f"express it; no {kind} prompt is written: format the text with infembed.json's {kind}_template before "
            "encoding",
            ExportWarning,
            stacklevel=3,
        )
        return None
    return head.lstrip() if kind == "pair" else head


def prompts(text: dict) -> dict[str, str]:
    """sentence-transformers prompts ``{"query": ..., "document": ...}`` for the templates that allow them."""
    found = {
        "query": _prompt(text["pair_template"], PAIR_TAIL, "pair"),
        "document": _prompt(text["passage_template"], "{passage}", "passage"),
    }
    return {name: prompt for name, prompt in found.items() if prompt is not None}


def model_card(encoder, text: dict, st_prompts: dict, details: dict[str, str], metrics: dict | None) -> str:
    """README.md of the export: backbone, pooling, templates, prompts, training details, metrics."""
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [sentence-transformers, infembed, instruction-following-retrieval]",
        "---",
        "",
        "# Instruction-following retrieval embedder (infembed)",
        "",
        f"- backbone: `{encoder.backbone_name}`, {encoder.dim}-dim, pooling `{encoder.pooling}`"
        + (", L2-normalised (cosine similarity)" if encoder.normalize else " (dot product)"),
        f"- pair template: `{text['pair_template']!r}` (max {text['max_pair_length']} tokens)",
        f"- passage template: `{text['passage_template']!r}` (max {text['max_passage_length']} tokens)",
        f"- sentence-transformers prompts: `{st_prompts}`",
        *(f"- {key}: {value}" for key, value in details.items()),
        "",
        "## Usage",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("PATH")',
        'queries = model.encode_query(["what is a cat answer briefly"])   # f"{query} {instruction}"',
        'passages = model.encode_document(["Cats are small felines."])      # f"{title} {text}" with a title',
        "scores = model.similarity(queries, passages)",
        "```",
        "",
        (
            "See `infembed.json` for the exact text settings (and the module docstring of `infembed.export` for "
            "what a prompt cannot express)."
        ),
    ]
    if metrics:
        lines += ["", "## Metrics", "", "```json", json.dumps(metrics, indent=2), "```"]
    return "\n".join(lines) + "\n"


def export_sentence_transformers(
    encoder,
    out_dir: str | os.PathLike,
    details: dict[str, str] | None = None,
    metrics_path: str | None = None,
) -> Path:
    """Write ``encoder`` (a ``BiEncoder`` with one shared tower) to ``out_dir``; returns the folder.

    ``details`` (e.g. ``{"loss": ..., "data": ...}``) and the ``metrics_path`` file's JSON go into the model card.
    """
    from infembed.models.encoder import merged_backbone

    if encoder.passage_backbone is not None:
        raise ExportError(
            "export: separate_passage_tower=True has two backbones; a sentence-transformers folder holds one"
        )
    if encoder.fusion == "attention":
        raise ExportError(
            "export: fusion=attention embeds a pair from two separately encoded texts (query, instruction); a "
            "sentence-transformers folder maps one text to one vector: evaluate it with infembed (encode_pairs, "
            "python -m infembed.eval.mteb_adapter)"
        )
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf-8")) if metrics_path else None
    text = _text_settings(encoder)
    st_prompts = prompts(text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged_backbone(encoder).save_pretrained(out)  # LoRA adapters merged: a plain Hugging Face model
    encoder.tokenizer.save_pretrained(out)
    settings = {**text, "pooling": encoder.pooling, "normalize": encoder.normalize, "prompts": st_prompts}
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if encoder.normalize:
        normalize = {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        }
        modules.append(normalize)
        (out / "2_Normalize").mkdir(exist_ok=True)
    _write_json(out / "modules.json", modules)
    _write_json(
        out / "sentence_bert_config.json",
        {"max_seq_length": text["max_passage_length"], "do_lower_case": False},
    )
    pooling = {flag: encoder.pooling == name for name, flag in POOLING_FLAGS.items()}
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": encoder.dim,
            **pooling,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "include_prompt": True,
        },
    )
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "prompts": st_prompts,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine" if encoder.normalize else "dot",
        },
    )
    _write_json(out / "infembed.json", settings)
    (out / "README.md").write_text(
        model_card(encoder, text, st_prompts, details or {}, metrics), encoding="utf-8"
    )
    return out


def training_details(ckpt: str | os.PathLike) -> dict[str, str]:
    """Loss (recorded in the checkpoint) and data (from the Hydra run's ``.hydra/config.yaml`` beside
    ``checkpoints/``, when present) for the model card."""
    import yaml

    from infembed.checkpoint_files import KEY, read_checkpoint

    record = read_checkpoint(ckpt, mmap=True)[KEY]
    details = {"loss": str(record.get("loss", {}).get("name", "unknown"))}
    config = Path(ckpt).resolve().parent.parent / ".hydra" / "config.yaml"
    if config.is_file():
        data = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("data") or {}
        details["data"] = str(data.get("train_source", "unknown"))
    return details


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m infembed.export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint written by python run.py")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--metrics", default=None, help="a metrics.json to quote in the model card")
    parser.add_argument(
        "--wise-ft",
        type=float,
        default=None,
        metavar="ALPHA",
        help="export (1 - ALPHA)·initial + ALPHA·trained weights (WiSE-FT); needs --initial",
    )
    parser.add_argument(
        "--initial",
        default=None,
        metavar="BACKBONE",
        help="with --wise-ft: the backbone folder or hub id the training started from",
    )
    args = parser.parse_args(argv)
    if (args.wise_ft is None) != (args.initial is None):
        parser.error("--wise-ft and --initial go together")
    if args.wise_ft is not None and not 0 <= args.wise_ft <= 1:
        parser.error(f"--wise-ft {args.wise_ft}: expected a number in [0, 1]")
    from infembed.models.checkpoint import load_encoder

    encoder = load_encoder(args.ckpt)
    details = training_details(args.ckpt)
    if args.wise_ft is not None:
        from infembed.models.encoder import BiEncoder
        from infembed.models.weight_ensemble import interpolate

        encoder = interpolate(encoder, BiEncoder(args.initial, **encoder.options()), args.wise_ft)
        details["weights"] = (
            f"WiSE-FT: {1 - args.wise_ft:g} x {args.initial} + {args.wise_ft:g} x the fine-tuned"
        )
    out = export_sentence_transformers(encoder, args.out, details, args.metrics)
    print(f"exported to {out}")
    return out


if __name__ == "__main__":
    from infembed.errors import UserError

    try:
        main()
    except UserError as err:  # a damaged checkpoint, a bad option: one line, exit 1
        raise SystemExit(f"{type(err).__name__}: {err}") from None
