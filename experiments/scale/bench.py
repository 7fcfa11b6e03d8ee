"""Memory and time of one training step with and without the gradient cache, each in a fresh process.

    python experiments/scale/bench.py [--rows 128] [--chunk-size 32] [--loss multi_p_i] [--swaps 3] [--threads 1]

MiniLM (offline package), synthetic InF-IR rows (3 triplets each), one AdamW step: encode pairs, passages and swap
pairs, loss, backward, optimiser step. Each setting runs in its own child process, so its peak RSS (ru_maxrss) is
its own; a 2-row step first warms the kernels up. Printed: peak RSS, RSS growth during the step, step time, and the
cached/plain ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args) -> dict:
    import torch

    from infembed.config import _minilm_path
    from infembed.data.collator import TripletCollator
    from infembed.data.synthetic import TOPICS, make_row
    from infembed.losses import build_loss
    from infembed.models.encoder import BiEncoder
    from infembed.models.module import RetrievalModule

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    chunk = args.chunk_size or None
    module = RetrievalModule(
        BiEncoder(_minilm_path()), build_loss(args.loss, kernel="chunked"), grad_cache_chunk_size=chunk
    ).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=2e-5)
    collator = TripletCollator(module.encoder.text, num_swap_negatives=args.swaps, seed=0)
    rng = random.Random(0)

    def step(rows: int) -> tuple[float, dict]:
        batch = collator([make_row(rng, rng.choice(TOPICS)) for _ in range(rows)])
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        module.loss_fn(**module.embed_batch(batch)).loss.backward()
        optimizer.step()
        groups = [batch.pairs, batch.passages] + ([batch.swap_pairs] if batch.swap_pairs is not None else [])
        sizes = {
            "sequences": sum(g["input_ids"].shape[0] for g in groups),
            "tokens": sum(int(g["attention_mask"].sum()) for g in groups),
            "longest": max(g["input_ids"].shape[1] for g in groups),
        }
        return time.perf_counter() - start, sizes

    step(2)  # warm-up: optimiser state allocated, kernels chosen
    before, peak_before = rss_mb(), peak_mb()
    seconds, sizes = step(args.rows)
    peak = peak_mb()
    return {
        "chunk_size": chunk,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_before_mb": before,
        "step_growth_mb": peak - max(before, 0.0),
        "peak_before_mb": peak_before,
        **sizes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--loss", default="multi_p_i")
    parser.add_argument("--swaps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    results = []
    for chunk in (0, args.chunk_size):  # 0 = no cache
        command = [
            sys.executable,
            __file__,
            "--child",
            "--rows",
            str(args.rows),
            "--chunk-size",
            str(chunk),
            "--loss",
            args.loss,
            "--swaps",
            str(args.swaps),
            "--threads",
            str(args.threads),
        ]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    plain, cached = results
    print(
        f"rows={args.rows} triplets={3 * args.rows} loss={args.loss} K={args.swaps} "
        f"sequences={plain['sequences']} tokens={plain['tokens']} threads={args.threads}"
    )
    print("| setting | peak RSS (MB) | RSS growth in the step (MB) | step time (s) |")
    print("|---|---:|---:|---:|")
    for r in results:
        name = f"grad_cache.chunk_size={r['chunk_size']}" if r["chunk_size"] else "no cache"
        print(f"| {name} | {r['peak_rss_mb']:.0f} | {r['step_growth_mb']:.0f} | {r['seconds']:.1f} |")
    print(
        f"cached / plain: peak RSS {cached['peak_rss_mb'] / plain['peak_rss_mb']:.3f}, step growth "
        f"{cached['step_growth_mb'] / plain['step_growth_mb']:.3f}, time {cached['seconds'] / plain['seconds']:.3f}"
    )


if __name__ == "__main__":
    main()
