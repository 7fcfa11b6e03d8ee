"""Benchmark the similarity log-sum-exp backends against the device's roofline: time, TFLOP/s, memory, passes.

    python -m infembed.kernels.benchmark --device cuda --sizes 32768 --dim 768 --dtype bf16 --json out.json
    python -m infembed.kernels.benchmark --device cuda --sizes 32768 --dim 768 --dtype bf16 --fits 262144
    python -m infembed.kernels.benchmark --dry          # tiny sizes on CPU (Triton interpreter): the CLI works

Work per step (``--shape``): ``uni_p_iq`` = row and column lse of one Z·Pᵀ (diagonal excluded) + backward, as
the uni_p_iq / multi_p_iq losses need; ``lse`` = row lse only + backward. Inputs are L2-normalised, scale = 20
(τ = 0.05).

Roofline. Before the backends, on the device itself: the measured ceiling of a bf16 GEMM (torch.mm of two
``--ceiling-n``² matrices, 2n³ flops) and the copy bandwidth (``copy_`` of a 1 GiB buffer, read + write). Each
backend's throughput is counted over the same work, 5 · 2N²D flops (forward S, recomputed S, and the three
GEMM-sized products of the backward: the target's 5 GEMM-equivalent passes), whatever it executes, so the numbers
compare: TFLOP/s, % of the measured ceiling, % of the datasheet's dense bf16 peak (``DATASHEET_BF16_TFLOPS``, when the
card is known). ``passes`` = the GEMM-sized passes the backend really executes (naive 3, chunked 4, triton its
plan's); ``tile`` = the triton plan that ran (tuning.py's choice) or auto's backend.

Each (backend, size) runs in a fresh subprocess, so one backend's allocations cannot hide another's.
Peak memory = the extra memory of the timed steps above what the process holds with q and k (no grads) and
after the warm-up steps:
  * CUDA: ``torch.cuda.max_memory_allocated()`` minus the allocation before the first step;
  * CPU: the resident-set high-water mark. The worker runs with glibc's ``MALLOC_MMAP_THRESHOLD_=65536``
    (every block ≥ 64 KiB is its own mapping, returned to the OS when torch frees it, so RSS follows live
    memory), runs the warm-up steps, drops the gradients, resets the kernel's peak-RSS counter (``5`` written
    to ``/proc/self/clear_refs``), and reports ``VmHWM`` after the timed steps minus ``VmRSS`` before them
    (``/proc/self/status``): every page the steps really touched at their peak, fragmentation included.
Ratios are to ``naive`` measured in the same invocation.

``--breakdown`` (CUDA): one more step under ``torch.profiler``, and a table of the GPU kernels it ran (total ms
per kernel name: the triton forward, the dq and dk launches, cuBLAS GEMMs, ...).
``--find-max N_CAP``: afterwards, per backend, N doubles from the largest ``--sizes`` until a step fails (out of
memory) or N would pass N_CAP; the largest N that ran is reported.
``--fits [N]`` (default 262,144): instead of ``--sizes``, one step of triton alone at N, reported as the table row.
``--json PATH``: everything above (ceiling, rows, find-max) as one JSON document.
``--dry``: CPU, N = 96, D = 40, naive / chunked / triton (interpreter), a 256² ceiling: minutes become seconds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from infembed.kernels import tuning
from infembed.kernels.dispatch import similarity_lse, similarity_lse_rowcol

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SHAPES = ("uni_p_iq", "lse")
SCALE = 20.0
BACKENDS = ("naive", "chunked", "triton", "auto")
FITS_N = 262_144
# dense bf16 tensor-core peak (TFLOP/s, no sparsity) by a substring of the device name, most specific first
DATASHEET_BF16_TFLOPS = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
)
FIXED_PASSES = {"naive": 3, "chunked": 4}  # naive: S, dS·K, dSᵀ·Q; chunked: S, S again, two GEMMs


def _proc_status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _step(q, k, backend: str, shape: str) -> None:
    """One forward + backward of the chosen work on fresh gradients."""
    q.grad = k.grad = None
    if shape == "uni_p_iq":
        row, col = similarity_lse_rowcol(q, k, SCALE, exclude_diagonal=True, backend=backend)  # (N,), (N,)
        (row.sum() + col.sum()).backward()
    else:
        similarity_lse(q, k, SCALE, exclude_diagonal=True, backend=backend).sum().backward()  # (N,)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    backend: str,
    n: int,
    dim: int,
    dtype: str,
    device: str,
    shape: str,
    repeats: int,
    warmup: int,
    breakdown: bool = False,
) -> dict:
    """Median seconds per forward+backward and peak extra bytes, in this process."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(0)
    q, k = (
        torch.nn.functional.normalize(torch.randn(n, dim, generator=gen, device=dev), dim=-1)
        .to(DTYPES[dtype])
        .requires_grad_()
        for _ in range(2)
    )  # (N, D) each
    for _ in range(warmup):  # lazy initialisation (thread pools, kernel compilation) stays out of the peak
        _step(q, k, backend, shape)
    q.grad = k.grad = None
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        base = _proc_status_kib("VmRSS") * 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _step(q, k, backend, shape)
        _sync(dev)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else _proc_status_kib("VmHWM") * 1024
    time_s = statistics.median(times)
    result = {
        "backend": backend,
        "n": n,
        "time_s": time_s,
        "peak_bytes": max(0, peak - base),
        "tflops": 5 * 2 * n * n * dim / time_s / 1e12,
        **_what_ran(backend, dim, DTYPES[dtype], dev),
    }
    if breakdown and dev.type == "cuda":
        result["kernels"] = _kernel_times(q, k, backend, shape)
    return result


def _what_ran(backend: str, dim: int, dtype: torch.dtype, device: torch.device) -> dict:
    """{"passes", "tile"} of the step just timed: the plan tuning.py chose (CUDA) or the interpreter's."""
    if backend in FIXED_PASSES:
        return {"passes": FIXED_PASSES[backend], "tile": None}
    choices = list(tuning.decided().values())
    if device.type != "cuda" and backend == "triton":
        plan = tuning.interpreter_plan(dtype, device)
        return {"passes": plan.passes(dim), "tile": f"{plan.fwd.name} {plan.design}:{plan.bwd.name}"}
    if not choices or choices[-1].backend == "chunked":
        return {"passes": FIXED_PASSES["chunked"], "tile": "chunked"}
    choice = choices[-1]
    return {"passes": choice.plan(dtype).passes(dim), "tile": f"{choice.fwd} {choice.design}:{choice.bwd}"}


def ceiling(device: str, gemm_n: int, copy_bytes: int) -> dict:
    """Measured bf16 GEMM TFLOP/s (torch.mm, n × n × n) and copy GB/s (read + write) on ``device``."""
    dev = torch.device(device)
    a, b = (torch.randn(gemm_n, gemm_n, device=dev, dtype=torch.bfloat16) for _ in range(2))
    src = torch.empty(copy_bytes // 2, device=dev, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    gemm_s, copy_s = _best_time(lambda: torch.mm(a, b), dev), _best_time(lambda: dst.copy_(src), dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = next((tflops for key, tflops in DATASHEET_BF16_TFLOPS if key in name), None)
    return {
        "device": name,
        "gemm_n": gemm_n,
        "bf16_gemm_tflops": 2 * gemm_n**3 / gemm_s / 1e12,
        "copy_gbps": 2 * copy_bytes / copy_s / 1e9,
        "datasheet_bf16_tflops": peak,
    }


def _best_time(fn, device: torch.device, repeats: int = 10) -> float:
    """Fastest of ``repeats`` timed calls after one warm-up (seconds)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _kernel_times(q, k, backend: str, shape: str) -> list[tuple[str, float]]:
    """(GPU kernel name, total ms) of one profiled step, longest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        _step(q, k, backend, shape)
        _sync(q.device)
    totals = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            totals[event.name] = totals.get(event.name, 0.0) + event.device_time_total / 1e3
    return sorted(totals.items(), key=lambda item: -item[1])


def _run_worker(args, backend: str, n: int, repeats: int | None = None) -> dict:
    """``measure`` in a fresh interpreter; an error (e.g. out of memory) is reported, not raised."""
    cmd = [
        sys.executable,
        "-m",
        "infembed.kernels.benchmark",
        "--worker",
        "--backends",
        backend,
        "--sizes",
        str(n),
        "--dim",
        str(args.dim),
        "--dtype",
        args.dtype,
        "--device",
        args.device,
        "--shape",
        args.shape,
        "--repeats",
        str(repeats or args.repeats),
        "--warmup",
        str(args.warmup),
    ] + (["--breakdown"] if args.breakdown else [])
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}  # glibc: blocks ≥ 64 KiB go back on free
    if args.device == "cpu":
        env["TRITON_INTERPRET"] = "1"  # triton on CPU tensors (tiny sizes only)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"backend": backend, "n": n, "error": reason[:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(results: list[dict], args, roof: dict) -> str:
    """Markdown table with ratios to naive at the same size and shares of the roofline."""
    naive = {r["n"]: r for r in results if r["backend"] == "naive" and "error" not in r}
    share = lambda tflops, peak: f"{100 * tflops / peak:.1f}" if peak else "n/a"
    lines = [
        (
            f"shape={args.shape} device={args.device} dtype={args.dtype} D={args.dim} "
            f"repeats={args.repeats} (median) warmup={args.warmup}"
        ),
        (
            f"ceiling on {roof['device']}: bf16 GEMM {roof['bf16_gemm_tflops']:.1f} TFLOP/s (n={roof['gemm_n']}), "
            f"copy {roof['copy_gbps']:.0f} GB/s, datasheet bf16 {roof['datasheet_bf16_tflops'] or 'unknown'}"
        ),
        "| backend | N | fwd+bwd time (s) | peak extra memory (MiB) | time / naive | memory / naive | "
        "TFLOP/s (5·2N²D) | % measured | % datasheet | passes | tile |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['n']} | failed: {r['error']} | | | | | | | | |")
            continue
        ref = naive.get(r["n"])
        t_ratio = f"{r['time_s'] / ref['time_s']:.2f}" if ref else "n/a"
        m_ratio = f"{r['peak_bytes'] / ref['peak_bytes']:.3f}" if ref and ref["peak_bytes"] else "n/a"
        lines.append(
            f"| {r['backend']} | {r['n']} | {r['time_s']:.3f} | {r['peak_bytes'] / 2**20:.1f} | "
            f"{t_ratio} | {m_ratio} | {r['tflops']:.3g} | {share(r['tflops'], roof['bf16_gemm_tflops'])} | "
            f"{share(r['tflops'], roof['datasheet_bf16_tflops'])} | {r['passes']} | {r['tile'] or '-'} |"
        )
    return "\n".join(lines)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384], help="N (= M) values")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32")
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=None,
        help="default: naive chunked (cpu), naive chunked triton auto (cuda)",
    )
    parser.add_argument("--shape", choices=SHAPES, default="uni_p_iq")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--breakdown", action="store_true", help="CUDA: per-kernel GPU time of one step")
    parser.add_argument("--find-max", type=int, metavar="N_CAP", help="largest N ≤ N_CAP each backend runs")
    parser.add_argument("--fits", type=int, nargs="?", const=FITS_N, metavar="N", help="one triton step at N")
    parser.add_argument(
        "--ceiling-n",
        type=int,
        help="n of the n × n × n bf16 ceiling GEMM (default 8192 on cuda, 512 on cpu)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write everything as JSON here")
    parser.add_argument("--dry", action="store_true", help="tiny sizes on CPU (Triton interpreter)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dry:
        args.device, args.sizes, args.dim, args.repeats, args.warmup, args.ceiling_n = (
            "cpu",
            [96],
            40,
            1,
            1,
            256,
        )
        args.backends = args.backends or ["naive", "chunked", "triton"]
        args.fits = args.fits and 96
    if args.backends is None:
        args.backends = ["naive", "chunked"] + (["triton", "auto"] if args.device == "cuda" else [])
    if args.fits:
        args.sizes, args.backends = [args.fits], ["triton"]
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def main(argv=None) -> None:
    args = _parse(argv)
    if args.worker:
        result = measure(
            args.backends[0],
            args.sizes[0],
            args.dim,
            args.dtype,
            args.device,
            args.shape,
            args.repeats,
            args.warmup,
            args.breakdown,
        )
        print(json.dumps(result))
        return
    gemm_n = args.ceiling_n or (8192 if args.device == "cuda" else 512)  # bf16 on a CPU: minutes at 8192
    roof = ceiling(args.device, gemm_n, 2**30 if args.device == "cuda" else 2**24)
    if args.device == "cuda":
        torch.cuda.empty_cache()  # the workers get the memory back
    doc = {"config": {k: v for k, v in vars(args).items() if k != "worker"}, "ceiling": roof, "results": []}
    for n in args.sizes:
        for backend in ["naive"] + [b for b in args.backends if b != "naive"]:
            if backend in args.backends:
                doc["results"].append(_run_worker(args, backend, n))
                print(f"  done: {backend} N={n}", file=sys.stderr, flush=True)
                _dump(args, doc)
    print(_table(doc["results"], args, roof), flush=True)
    for r in doc["results"]:
        if r.get("kernels"):
            print(f"\n{r['backend']} N={r['n']}: GPU kernels of one step (ms)")
            print("\n".join(f"  {ms:9.3f}  {name[:100]}" for name, ms in r["kernels"][:10]))
    if args.find_max:
        print("\n| backend | largest N that ran (≤ cap) | first failure |\n|---|---|---|", flush=True)
        doc["find_max"] = []
        for backend in args.backends:  # each row printed and saved as soon as it is known
            largest, failure = _find_max(args, backend)
            print(f"| {backend} | {largest or 'none'} | {failure} |", flush=True)
            doc["find_max"].append({"backend": backend, "largest_n": largest, "stopped": failure})
            _dump(args, doc)


def _dump(args, doc: dict) -> None:
    """Write ``doc`` to --json (whole file: beside it, then renamed), so a timeout keeps what finished."""
    if args.json:
        tmp = Path(args.json + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, args.json)


def _find_max(args, backend: str) -> tuple[int | None, str]:
    """Double N from the largest --sizes until a step fails or N passes --find-max; (largest N, why it stopped)."""
    n, largest = max(args.sizes), None
    while n <= args.find_max:
        result = _run_worker(args, backend, n, repeats=1)
        print(f"  find-max: {backend} N={n}: {result.get('error', 'ok')}", file=sys.stderr, flush=True)
        if "error" in result:
            return largest, f"N={n}: {result['error']}"
        largest, n = n, 2 * n
    return largest, f"none up to the cap {args.find_max}"


if __name__ == "__main__":
    main()
