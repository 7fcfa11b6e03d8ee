"""Benchmark the similarity log-sum-exp backends: median forward+backward time and peak extra memory.

    python -m infembed.kernels.benchmark --device cpu --sizes 4096 16384 --dim 384 --dtype fp32 \
        --backends naive chunked --shape uni_p_iq

Work per step (``--shape``): ``uni_p_iq`` = row and column lse of one Z·Pᵀ (diagonal excluded) + backward, as
the uni_p_iq / multi_p_iq losses need; ``lse`` = row lse only + backward. Inputs are L2-normalised, scale = 20
(τ = 0.05).

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

from infembed.kernels.dispatch import similarity_lse, similarity_lse_rowcol

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SHAPES = ("uni_p_iq", "lse")
SCALE = 20.0


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
    result = {
        "backend": backend,
        "n": n,
        "time_s": statistics.median(times),
        "peak_bytes": max(0, peak - base),
    }
    if breakdown and dev.type == "cuda":
        result["kernels"] = _kernel_times(q, k, backend, shape)
    return result


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
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"backend": backend, "n": n, "error": reason[:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(results: list[dict], args) -> str:
    """Markdown table with ratios to naive at the same size."""
    naive = {r["n"]: r for r in results if r["backend"] == "naive" and "error" not in r}
    lines = [
        (
            f"shape={args.shape} device={args.device} dtype={args.dtype} D={args.dim} "
            f"repeats={args.repeats} (median) warmup={args.warmup}"
        ),
        "| backend | N | fwd+bwd time (s) | peak extra memory (MiB) | time / naive | memory / naive |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['n']} | failed: {r['error']} | | | |")
            continue
        ref = naive.get(r["n"])
        t_ratio = f"{r['time_s'] / ref['time_s']:.2f}" if ref else "n/a"
        m_ratio = f"{r['peak_bytes'] / ref['peak_bytes']:.3f}" if ref and ref["peak_bytes"] else "n/a"
        lines.append(
            f"| {r['backend']} | {r['n']} | {r['time_s']:.3f} | {r['peak_bytes'] / 2**20:.1f} | "
            f"{t_ratio} | {m_ratio} |"
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
        choices=("naive", "chunked", "triton"),
        default=None,
        help="default: naive chunked (cpu), naive chunked triton (cuda)",
    )
    parser.add_argument("--shape", choices=SHAPES, default="uni_p_iq")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--breakdown", action="store_true", help="CUDA: per-kernel GPU time of one step")
    parser.add_argument("--find-max", type=int, metavar="N_CAP", help="largest N ≤ N_CAP each backend runs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.backends is None:
        args.backends = ["naive", "chunked"] + (["triton"] if args.device == "cuda" else [])
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
    results = []
    for n in args.sizes:
        for backend in ["naive"] + [b for b in args.backends if b != "naive"]:
            if backend in args.backends:
                results.append(_run_worker(args, backend, n))
                print(f"  done: {backend} N={n}", file=sys.stderr, flush=True)
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}")
    print(_table(results, args))
    for r in results:
        if r.get("kernels"):
            print(f"\n{r['backend']} N={r['n']}: GPU kernels of one step (ms)")
            print("\n".join(f"  {ms:9.3f}  {name[:100]}" for name, ms in r["kernels"][:10]))
    if args.find_max:
        print("\n| backend | largest N that ran (≤ cap) | first failure |\n|---|---|---|")
        for backend in args.backends:
            largest, failure = _find_max(args, backend)
            print(f"| {backend} | {largest or 'none'} | {failure} |")


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
