"""A BiEncoder as an mteb 2 encoder, so any mteb task runs with the project's own text handling (FollowIR included).

    import mteb
    from infembed.eval.mteb_adapter import MTEBEncoder
    model = MTEBEncoder(encoder, name="infembed/minilm")       # encoder: BiEncoder, e.g. a checkpoint's
    mteb.evaluate(model, mteb.get_benchmark("FollowIR").tasks)

or in one command (a checkpoint, or a plain backbone with the default templates), on registered mteb tasks or on
local benchmark folders (BEIR, BIRCO or FollowIR format, read and checked by :mod:`infembed.eval.benchmarks`)::

    python -m infembed.eval.mteb_adapter --ckpt CKPT --benchmark FollowIR [--tasks NAME ...] [--out DIR]
        [--truncation query|end]
    python -m infembed.eval.mteb_adapter --ckpt CKPT --folder /data/birco/arguana /data/followir/robust04

A folder becomes an mteb retrieval task (:func:`folder_task`): queries with their instructions, qrels of the split,
and the pool the project's evaluation reranks (``candidates.jsonl``, or BIRCO-style judged pools) as mteb's
``top_ranked``. A FollowIR-format folder becomes mteb's FollowIR layout: each query twice, ``<id>-og`` under the
original instruction with the original qrels and ``<id>-changed`` under the changed one, and p-MRR (mteb's own
``evaluate_p_mrr_change``) as the main score. The scores of every task and their mean are printed. A task whose data
is on the Hugging Face hub, asked for offline, stops with one line (:class:`HubUnavailable`).

mteb 2 protocol (``mteb.models.EncoderProtocol``): ``encode(inputs: DataLoader, *, task_metadata, hf_split,
hf_subset, prompt_type, **kwargs)`` -> (n, D) array, ``similarity`` / ``similarity_pairwise`` (cosine for a
normalised encoder, else dot) and ``mteb_model_meta``. Each batch is a dict of lists:

- ``prompt_type=document``: ``title`` (optional) and ``body`` -> ``passage_text(title, body)`` (the same join as the
  project's benchmark readers) -> ``encode_passages`` (the passage template);
- otherwise (queries, and symmetric tasks that pass no prompt type): ``query`` and ``instruction`` (empty when the
  task has none) -> ``encode_pairs`` (the pair template). mteb's own ``text`` column, query + " " + instruction,
  is not used: the pair template decides where the instruction goes, and the encoder's text spec how a pair above
  ``max_pair_length`` is cut (``truncation``: the checkpoint's own, or ``--truncation``; ``query`` keeps the
  instruction). Task-level prompts are not used.

The model meta's revision is the encoder's fingerprint (weights and text spec), so mteb's result cache never serves
one checkpoint's scores for another of the same name, nor one truncation rule's for the other's.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

import mteb
import numpy as np
import torch
from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models import ModelMeta
from mteb.types import PromptType

from infembed.errors import UserError, run_command
from infembed.eval.benchmarks import FollowIRBenchmark, load_benchmark, passage_text
from infembed.eval.runner import candidate_pools
from infembed.logs import quiet_library_bars
from infembed.text import TRUNCATIONS


class HubUnavailable(UserError):
    """An mteb task needs the Hugging Face hub, which cannot be reached (offline mode, no network)."""


def model_meta(encoder, name: str) -> ModelMeta:
    """mteb's ``ModelMeta`` of ``encoder``: ``name`` ("org/model", e.g. "infembed/<model preset>"), sizes, lengths."""
    text = encoder.text
    return ModelMeta(
        loader=None,
        name=name,
        revision=encoder.fingerprint()[:16],
        release_date=None,
        languages=None,
        n_parameters=sum(p.numel() for p in encoder.parameters()),
        memory_usage_mb=None,
        max_tokens=max(text.max_pair_length, text.max_passage_length),
        embed_dim=encoder.dim,
        license=None,
        open_weights=None,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch"],
        similarity_fn_name="cosine" if encoder.normalize else "dot",
        use_instructions=True,
        training_datasets=None,
        adapted_from=encoder.backbone_name,
    )


def _columns(batches: Iterable[dict], *keys: str) -> dict[str, list]:
    """Concatenate the named columns of a DataLoader's dict batches (a column absent from a batch is skipped)."""
    out: dict[str, list] = {key: [] for key in keys}
    for batch in batches:
        for key in keys:
            out[key].extend(batch.get(key, ()))
    return out


def _matrix(embeddings) -> torch.Tensor:
    return torch.as_tensor(np.asarray(embeddings), dtype=torch.float32).reshape(-1, np.shape(embeddings)[-1])


class MTEBEncoder:
    """mteb 2 encoder over a ``BiEncoder`` (see the module docstring)."""

    def __init__(self, encoder, name: str | None = None, batch_size: int = 64):
        self.model = encoder
        self.batch_size = batch_size
        self.mteb_model_meta = model_meta(encoder, name or f"infembed/{encoder.name}")

    def encode(
        self, inputs, *, task_metadata=None, hf_split=None, hf_subset=None, prompt_type=None, **kwargs
    ):
        """(n, D) float32 array, in input order: passages for ``PromptType.document``, else query-instruction pairs."""
        batch_size = kwargs.get("batch_size") or self.batch_size
        show = bool(kwargs.get("show_progress_bar", False))
        if prompt_type == PromptType.document:
            cols = _columns(inputs, "body", "title", "text")
            bodies = cols["body"] or cols["text"]
            titles = cols["title"] if len(cols["title"]) == len(bodies) else [""] * len(bodies)
            texts = [passage_text(t, b) for t, b in zip(titles, bodies)]
            emb = self.model.encode_passages(texts, batch_size=batch_size, show_progress=show)  # (n, D)
        else:
            cols = _columns(inputs, "query", "instruction", "text")
            queries = cols["query"] or cols["text"]
            instructions = (
                cols["instruction"] if len(cols["instruction"]) == len(queries) else [""] * len(queries)
            )
            emb = self.model.encode_pairs(
                queries, instructions, batch_size=batch_size, show_progress=show
            )  # (n, D)
        return emb.numpy()

    def _pair(self, embeddings1, embeddings2) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = _matrix(embeddings1), _matrix(embeddings2)  # (n1, D), (n2, D)
        if self.model.normalize:  # cosine; a dot product otherwise
            a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
        return a, b

    def similarity(self, embeddings1, embeddings2) -> torch.Tensor:
        """(n1, D) x (n2, D) -> (n1, n2): cosine when the encoder normalises, else the dot product."""
        a, b = self._pair(embeddings1, embeddings2)
        return a @ b.T  # (n1, n2)

    def similarity_pairwise(self, embeddings1, embeddings2) -> torch.Tensor:
        """(n, D), (n, D) -> (n,): the diagonal of ``similarity``."""
        a, b = self._pair(embeddings1, embeddings2)
        return (a * b).sum(-1)  # (n,)


def _followir_split(bench: FollowIRBenchmark) -> RetrievalSplitData:
    """mteb's FollowIR layout: every query as ``<id>-og`` (original instruction and qrels) and ``<id>-changed``."""
    pools = candidate_pools(bench, "auto")
    queries, qrels, top_ranked = [], {}, {}
    for suffix, instructions, judged in (
        ("og", bench.instruction_og, bench.qrels_og),
        ("changed", bench.instruction_changed, bench.qrels_changed),
    ):
        for qid, text in bench.queries.items():
            queries.append({"id": f"{qid}-{suffix}", "text": text, "instruction": instructions.get(qid, "")})
            qrels[f"{qid}-{suffix}"] = {doc: int(rel) for doc, rel in judged.get(qid, {}).items()}
            if pools is not None:
                top_ranked[f"{qid}-{suffix}"] = list(pools.get(qid, ()))
    return RetrievalSplitData(
        corpus=Dataset.from_list([{"id": d, "text": t} for d, t in bench.corpus.items()]),
        queries=Dataset.from_list(queries),
        relevant_docs=qrels,
        top_ranked=top_ranked or None,
    )


def _retrieval_split(bench) -> RetrievalSplitData:
    pools = candidate_pools(bench, "auto")
    queries = [
        {"id": q, "text": t, "instruction": bench.instructions.get(q, "")} for q, t in bench.queries.items()
    ]
    return RetrievalSplitData(
        corpus=Dataset.from_list([{"id": d, "text": t} for d, t in bench.corpus.items()]),
        queries=Dataset.from_list(queries),
        relevant_docs={q: {d: int(r) for d, r in docs.items()} for q, docs in bench.qrels.items()},
        top_ranked=pools,
    )


def folder_task(path: str, split: str = "test") -> AbsTaskRetrieval:
    """An mteb retrieval task over a local benchmark folder (see the module docstring), named after the folder."""
    bench = load_benchmark(path, split)
    followir = isinstance(bench, FollowIRBenchmark)
    split_data = _followir_split(bench) if followir else _retrieval_split(bench)

    class LocalFolderTask(AbsTaskRetrieval):
        metadata = TaskMetadata(
            name=bench.name,
            description=f"The local benchmark folder {path} (split {split}).",
            reference=None,
            dataset={"path": str(path), "revision": bench.corpus_key or "local"},
            type="InstructionReranking" if followir else "InstructionRetrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=[split],
            eval_langs=["eng-Latn"],
            main_score="p-MRR" if followir else "ndcg_at_10",
            date=None,
            domains=None,
            task_subtypes=None,
            license=None,
            annotations_creators=None,
            dialect=None,
            sample_creation=None,
            bibtex_citation="",
        )

        def load_data(self, num_proc=None, **kwargs):
            self.dataset = {"default": {split: split_data}}
            self.data_loaded = True

        def task_specific_scores(self, scores, qrels, results, hf_split, hf_subset):
            if not followir:
                return {}
            from mteb._evaluators.retrieval_metrics import evaluate_p_mrr_change

            return evaluate_p_mrr_change(qrels, results, bench.changed_docs(), self.k_values)

    return LocalFolderTask()


def _is_offline_error(error: BaseException) -> bool:
    """A failure to reach the hub: offline mode, or a connection error anywhere in the exception's chain."""
    from huggingface_hub.errors import OfflineModeIsEnabled
    from requests.exceptions import ConnectionError as RequestsConnectionError

    kinds = (OfflineModeIsEnabled, RequestsConnectionError, ConnectionError)
    while error is not None:
        if isinstance(error, kinds) or "offline mode" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
    return False


def evaluate(model, tasks, **kwargs):
    """``mteb.evaluate`` that turns an unreachable hub into one :class:`HubUnavailable` line."""
    try:
        return mteb.evaluate(model, tasks, **kwargs)
    except Exception as error:
        if not _is_offline_error(error):
            raise
        names = ", ".join(task.metadata.name for task in tasks)
        raise HubUnavailable(
            f"mteb: the data of {names} is on the Hugging Face hub, which cannot be reached "
            f"({type(error).__name__}; HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', 'unset')}): run once "
            "with network access to fill the cache, or give local folders with --folder"
        ) from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infembed.eval.mteb_adapter", description=__doc__.splitlines()[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="a Lightning checkpoint of infembed's RetrievalModule")
    source.add_argument("--model", help="a backbone (hub name or local folder) with the default templates")
    parser.add_argument(
        "--name", default=None, help="model name in mteb's results (default: infembed/<preset name>)"
    )
    parser.add_argument("--benchmark", default=None, help="an mteb benchmark, e.g. FollowIR")
    parser.add_argument(
        "--tasks", nargs="*", default=[], help="mteb task names, e.g. Robust04InstructionRetrieval"
    )
    parser.add_argument(
        "--folder",
        nargs="*",
        default=[],
        help="local benchmark folders (BEIR, BIRCO or FollowIR format), each one task",
    )
    parser.add_argument("--split", default="test", help="qrels split of the --folder tasks (default: test)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--truncation",
        choices=TRUNCATIONS,
        default=None,
        help="how a pair above max_pair_length is cut (default: the checkpoint's own; query for --model)",
    )
    parser.add_argument(
        "--out", default=None, help="mteb result cache folder (default: mteb's, ~/.cache/mteb)"
    )
    args = parser.parse_args(argv)
    if not args.benchmark and not args.tasks and not args.folder:
        parser.error("give --benchmark NAME, --tasks NAME [NAME ...] or --folder DIR [DIR ...]")
    return args


def main(argv=None):
    args = parse_args(argv)
    quiet_library_bars()
    tasks = list(mteb.get_benchmark(args.benchmark).tasks) if args.benchmark else []
    tasks += list(mteb.get_tasks(tasks=args.tasks)) if args.tasks else []
    tasks += [folder_task(folder, args.split) for folder in args.folder]  # checked before the model loads
    text_changes = {"truncation": args.truncation} if args.truncation else {}
    if args.ckpt:
        from infembed.models.checkpoint import load_encoder

        encoder = load_encoder(args.ckpt, **text_changes)
    else:
        from infembed.models.encoder import BiEncoder

        encoder = BiEncoder(args.model, name=Path(args.model).stem, **text_changes)
    name = args.name or f"infembed/{encoder.name}"
    if args.folder:  # never cached: mteb keys results by task name, and a folder's content can change
        kwargs = {"cache": None}
    else:
        kwargs = {"cache": mteb.ResultCache(args.out)} if args.out else {}
    results = evaluate(MTEBEncoder(encoder, name, args.batch_size), tasks, **kwargs)
    scores = [task_result.get_score() for task_result in results.task_results]
    for task_result, score in zip(results.task_results, scores):
        print(f"{task_result.task_name}: {score:.4f}")
    if len(scores) > 1:
        print(f"mean over {len(scores)} tasks: {sum(scores) / len(scores):.4f}")
    return results


__all__ = ["HubUnavailable", "MTEBEncoder", "evaluate", "folder_task", "model_meta"]


if __name__ == "__main__":
    run_command(main)
