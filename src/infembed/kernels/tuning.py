"""Which kernels run for a shape class: timed once on a slice, cached on disk, or forced from the environment.

A shape class is (device name, input dtype, padded D, N rounded up to a power of two, masks, columns). On the first
call of a class the triton backend's candidates are timed on a slice of at most ``TUNE_ROWS`` rows (random unit
vectors, M = N): every forward tile, then every backward (design, tile) after the fastest forward; for ``auto`` the
chunked torch path (forward + backward) as well, and the faster of the two backends wins. A tile that does not fit
the device is skipped. The choice is written to a JSON file (``INFEMBED_KERNEL_CACHE``, default
``~/.cache/infembed/kernel_choices.json``) under an exclusive lock held while tuning, so the processes of one
machine (DDP ranks, a sweep) tune once and then all read the same backend and tiles: their results are bitwise
equal. Point the variable at a shared file to share it across machines. The choice is logged once per process; an
unwritable cache warns once and tunes for that process alone.

Environment switches (checked on every call, cheapest first; an unknown value is a ``KernelConfigError``):
    INFEMBED_AUTO_BACKEND=triton|chunked        auto uses this backend, without timing the other
    INFEMBED_TRITON_BWD=blocked|register        only this backward design is a candidate
    INFEMBED_TRITON_FWD_TILE=NAME               this forward tile (a ``Tile.name`` of triton_ops.TILES)
    INFEMBED_TRITON_BWD_TILE=NAME               this backward tile (of the design's kernel)
A forced class with a single candidate left is not timed; forced values are part of the cache key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from infembed.errors import UserError
from infembed.kernels.chunked import ChunkedImpl, default_block_rows

TUNE_ROWS = 16384
ENV_CACHE = "INFEMBED_KERNEL_CACHE"
ENV_BACKEND = "INFEMBED_AUTO_BACKEND"
ENV_DESIGN = "INFEMBED_TRITON_BWD"
ENV_FWD_TILE = "INFEMBED_TRITON_FWD_TILE"
ENV_BWD_TILE = "INFEMBED_TRITON_BWD_TILE"
log = logging.getLogger(__name__)
_DECIDED: dict[str, Choice] = {}  # cache key → choice, this process


class KernelConfigError(UserError):
    """An INFEMBED_* kernel environment variable with a value the kernels do not have."""


@dataclass(frozen=True)
class ShapeClass:
    """What a kernel choice depends on."""

    device: str  # the device's name, e.g. "NVIDIA H200"
    dtype: str
    dim: int  # D padded to triton_ops.D_ALIGN
    n: int  # max(M, N) rounded up to a power of two
    exclude: bool
    with_col: bool

    def key(self) -> str:
        flags = f"ex{int(self.exclude)}col{int(self.with_col)}"
        return f"{self.device}|{self.dtype}|D{self.dim}|N{self.n}|{flags}"


@dataclass(frozen=True)
class Choice:
    """A decision: ``backend`` "triton" (with forward tile ``fwd``, backward ``design`` and tile ``bwd``, by
    name) or "chunked"; ``times_ms``: what was timed (candidate → ms); ``source``: tuned, cache or forced."""

    backend: str
    fwd: str | None = None
    design: str | None = None
    bwd: str | None = None
    times_ms: dict | None = None
    source: str = "tuned"

    def plan(self, dtype: torch.dtype):
        """The triton_ops.Plan of this choice (backend triton)."""
        from infembed.kernels import triton_ops

        return triton_ops.Plan(
            _tile("fwd", self.fwd, dtype),
            self.design,
            _tile(triton_ops.DESIGN_KERNEL[self.design], self.bwd, dtype),
        )


def shape_class(device: torch.device, dtype: torch.dtype, m: int, n: int, dim: int, exclude, with_col):
    """The ShapeClass of one call."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return ShapeClass(
        name,
        str(dtype).removeprefix("torch."),
        dim + (-dim % 16),
        1 << max(0, math.ceil(math.log2(max(m, n)))),
        bool(exclude),
        bool(with_col),
    )


def cache_path() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "infembed" / "kernel_choices.json")


def _env(name: str, valid) -> str | None:
    value = os.environ.get(name) or None
    if value is not None and value not in valid:
        raise KernelConfigError(f"{name}={value!r}: expected one of {', '.join(valid)}")
    return value


def forced_design() -> str:
    """INFEMBED_TRITON_BWD, default "blocked"."""
    return _env(ENV_DESIGN, ("blocked", "register")) or "blocked"


def _tile(kernel: str, name: str, dtype: torch.dtype):
    from infembed.kernels import triton_ops

    for tile in (*triton_ops.tiles(kernel, dtype), triton_ops.INTERPRETER_TILE):
        if tile.name == name:
            return tile
    raise KernelConfigError(f"{kernel} tile {name!r} is not a tile of the kernels for {dtype}")


def candidates(dtype: torch.dtype, device: torch.device, with_chunked: bool) -> dict:
    """{"backends", "fwd", "bwd": [(design, tile)]} left after the environment switches (interpreter: its tile)."""
    from infembed.kernels import triton_ops

    backend = _env(ENV_BACKEND, ("triton", "chunked")) if with_chunked else "triton"
    designs = (
        [_env(ENV_DESIGN, triton_ops.DESIGNS)] if os.environ.get(ENV_DESIGN) else list(triton_ops.DESIGNS)
    )
    on_cuda = device.type == "cuda"
    pick = lambda kernel: triton_ops.tiles(kernel, dtype) if on_cuda else (triton_ops.INTERPRETER_TILE,)
    fwd, bwd = list(pick("fwd")), [(d, t) for d in designs for t in pick(triton_ops.DESIGN_KERNEL[d])]
    if os.environ.get(ENV_FWD_TILE):
        fwd = [_tile("fwd", os.environ[ENV_FWD_TILE], dtype)]
    if os.environ.get(ENV_BWD_TILE):
        name = os.environ[ENV_BWD_TILE]
        every = lambda d: (*triton_ops.tiles(triton_ops.DESIGN_KERNEL[d], dtype), triton_ops.INTERPRETER_TILE)
        bwd = [(d, t) for d in designs for t in every(d) if t.name == name]
        if not bwd:
            raise KernelConfigError(
                f"{ENV_BWD_TILE}={name!r}: not a tile of the {'/'.join(designs)} backward"
            )
    return {"backends": [backend] if backend else ["triton", "chunked"], "fwd": fwd, "bwd": bwd}


def interpreter_plan(dtype: torch.dtype, device: torch.device):
    """The plan under the interpreter, where nothing is timed: the forced tiles (shrunk to the inputs by the
    launchers), else the interpreter tile; the design of INFEMBED_TRITON_BWD (default blocked) where both remain."""
    from infembed.kernels import triton_ops

    cands = candidates(dtype, device, with_chunked=False)
    design, tile = next((c for c in cands["bwd"] if c[0] == forced_design()), cands["bwd"][0])
    return triton_ops.Plan(cands["fwd"][0], design, tile)


def _forced_key() -> str:
    names = (ENV_BACKEND, ENV_DESIGN, ENV_FWD_TILE, ENV_BWD_TILE)
    return ",".join(f"{n}={os.environ[n]}" for n in names if os.environ.get(n))


def default_timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """ms per call of ``fn``: triton.testing.do_bench on CUDA (≈ 25 ms each), else the median of 3 calls."""
    if device.type == "cuda":
        from triton.testing import do_bench

        return lambda fn: do_bench(fn, warmup=5, rep=20)

    def median_ms(fn):
        fn()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1e3 * statistics.median(times)

    return median_ms


def tune(cls: ShapeClass, device: torch.device, dtype: torch.dtype, cands: dict, timer=None) -> Choice:
    """Time the candidates on a ≤ TUNE_ROWS slice (module docstring) and return the fastest."""
    timer = timer or default_timer(device)
    rows = min(cls.n, TUNE_ROWS)
    gen = torch.Generator(device=device).manual_seed(0)
    q, k = (
        torch.nn.functional.normalize(torch.randn(rows, cls.dim, generator=gen, device=device), dim=-1).to(
            dtype
        )
        for _ in range(2)
    )  # (rows, D) each
    args = (20.0, cls.exclude, 0, cls.with_col, False)
    ones = torch.ones(rows, device=device)  # (rows,) incoming grads
    grads = (ones, ones if cls.with_col else None)
    times = {}

    def step(impl, backward):
        row, col, *_ = impl.forward(q, k, *args)
        if backward:
            impl.backward(q, k, row, col, *grads, 20.0, cls.exclude, 0, (True, True))

    if "chunked" in cands["backends"]:
        times["chunked"] = timer(lambda: step(ChunkedImpl(default_block_rows(rows, rows)), True))
    best = None
    if "triton" in cands["backends"]:
        best = _fastest_triton(cands, dtype, device, times, timer, step)
    if best is None or times.get("chunked", math.inf) < times[best[0]]:
        return Choice("chunked", times_ms=times)
    _, plan = best
    return Choice("triton", plan.fwd.name, plan.design, plan.bwd.name, times)


def _fastest_triton(cands, dtype, device, times, timer, step):
    """(candidate name, Plan) of the fastest forward tile plus the fastest backward after it; times in ``times``
    (forward alone per forward tile; forward + backward per backward candidate)."""
    from infembed.kernels import triton_ops

    def timed(name, plan, backward):
        try:
            times[name] = timer(lambda: step(triton_ops.TritonImpl(plan), backward))
        except triton_ops.TILE_ERRORS:
            return None
        return name, plan

    design, first_bwd = cands["bwd"][0]
    fwd = [timed(f"fwd {t.name}", triton_ops.Plan(t, design, first_bwd), False) for t in cands["fwd"]]
    fwd = min((f for f in fwd if f), key=lambda f: times[f[0]], default=None)
    if fwd is None:
        return None
    full = [timed(f"triton {d}:{t.name}", triton_ops.Plan(fwd[1].fwd, d, t), True) for d, t in cands["bwd"]]
    return min((f for f in full if f), key=lambda f: times[f[0]], default=None)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path``.lock for the read → tune → write of the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise KernelConfigError(f"{path}: not a kernel choice cache ({err}); delete it to re-tune") from err


def _write(path: Path, entries: dict) -> None:
    """Whole file or nothing: written beside it, then renamed over it."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
    os.replace(tmp, path)


def choose(
    cls: ShapeClass, device: torch.device, dtype: torch.dtype, with_chunked: bool, timer=None
) -> Choice:
    """The backend and tiles for ``cls``: forced, from this process, from the cache file, or tuned now."""
    cands = candidates(dtype, device, with_chunked)
    forced = _forced(cands)
    if forced is not None:
        return _logged(f"{cls.key()}|{_forced_key()}", forced)
    key = f"{cls.key()}|{'auto' if with_chunked else 'triton'}|{_forced_key()}"
    if key in _DECIDED:
        return _DECIDED[key]
    path = cache_path()
    try:
        with _locked(path):
            entries = _read(path)
            if _valid(entries.get(key), cands):
                return _logged(key, Choice(**{**entries[key], "source": "cache"}))
            choice = tune(cls, device, dtype, cands, timer)
            _write(path, {**entries, key: asdict(choice)})
    except OSError as err:  # an unwritable cache must not stop training: tune for this process alone
        warnings.warn(
            f"kernel choice cache {path}: {err}; tuning for this process only (other processes may choose other "
            f"tiles; set {ENV_CACHE} to a writable file)",
            RuntimeWarning,
            stacklevel=2,
        )
        choice = tune(cls, device, dtype, cands, timer)
    return _logged(key, choice)


def _forced(cands: dict) -> Choice | None:
    """The choice when the switches leave one candidate (nothing to time), else None."""
    if cands["backends"] == ["chunked"]:
        return Choice("chunked", source="forced")
    if cands["backends"] == ["triton"] and len(cands["fwd"]) == len(cands["bwd"]) == 1:
        design, bwd = cands["bwd"][0]
        return Choice("triton", cands["fwd"][0].name, design, bwd.name, source="forced")
    return None


def _valid(entry: dict | None, cands: dict) -> bool:
    """A cached entry names a backend and tiles that are still candidates (else it is re-tuned)."""
    if entry is None or entry.get("backend") not in cands["backends"]:
        return False
    if entry["backend"] == "chunked":
        return True
    bwd = {(d, t.name) for d, t in cands["bwd"]}
    return (
        entry.get("fwd") in {t.name for t in cands["fwd"]} and (entry.get("design"), entry.get("bwd")) in bwd
    )


def decided() -> dict[str, Choice]:
    """The choices this process made so far (cache key → choice), in order."""
    return dict(_DECIDED)


def _logged(key: str, choice: Choice) -> Choice:
    if key not in _DECIDED:
        _DECIDED[key] = choice
        tiles = f" fwd={choice.fwd} bwd={choice.design}:{choice.bwd}" if choice.backend == "triton" else ""
        log.info("kernel choice for %s: %s%s (%s)", key, choice.backend, tiles, choice.source)
    return _DECIDED[key]
