"""Pre-flight checks, run before anything heavy is built: every config value with a known range or choice, the
cross-key conflicts, and that the hub repositories a run needs are reachable (or cached offline)."""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import typing
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from infembed.errors import ConfigError, UserError, check_bool, check_choice, check_int, check_number
from infembed.hub_ids import is_hub_id

TASKS = ("train", "evaluate", "build_data")
KERNELS = ("auto", "naive", "chunked", "triton")
Check = typing.Callable[[object, str], None]  # (value, key) -> None, raises ConfigError


def _precisions() -> tuple[str, ...]:
    from lightning.fabric.connector import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS

    return (*typing.get_args(_PRECISION_INPUT_STR), *typing.get_args(_PRECISION_INPUT_STR_ALIAS))


def _int(minimum: int) -> Check:
    return functools.partial(check_int, minimum=minimum)


def _number(low: float = 0, high: float | None = None, bounds: str = "[]") -> Check:
    return functools.partial(check_number, low=low, high=high, bounds=bounds)


def _int_or_auto(value, key: str) -> None:
    if value != "auto" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ConfigError(f"{key}={value!r}: expected an integer >= 0 or auto")


@functools.cache
def choices() -> dict[str, tuple]:
    """The valid values of every enumerated key, each from the module that owns it (imported when a config is
    checked: constants only, nothing is built)."""
    from infembed.build.mining import NEGATIVES
    from infembed.data.schema import ON_BAD_ROW
    from infembed.data.synthetic import DIFFICULTIES, GENERATORS
    from infembed.eval.benchmarks import FORMATS
    from infembed.eval.retrieval import BACKENDS
    from infembed.eval.runner import MODES
    from infembed.losses.registry import LOSS_NAMES
    from infembed.models.encoder import POOLINGS
    from infembed.models.schedules import SCHEDULES
    from infembed.text import FUSIONS, PADDING_SIDES, TRUNCATIONS
    from infembed.tracking import CHECKPOINT_ARTIFACTS

    return {
        "task": TASKS,
        "kernel": KERNELS,
        "trainer.precision": _precisions(),
        "data.on_bad_row": ON_BAD_ROW,
        "data.synthetic.difficulty": DIFFICULTIES,
        "data.synthetic.generator": GENERATORS,
        "loss.name": LOSS_NAMES,
        "model.pooling": POOLINGS,
        "model.fusion": FUSIONS,
        "model.padding_side": PADDING_SIDES,
        "model.truncation": TRUNCATIONS,
        "module.scheduler.name": SCHEDULES,
        "benchmark.format": FORMATS,
        "benchmark.mode": MODES,
        "benchmark.use_instruction": (True, False, "both"),
        "benchmark.retrieval_backend": BACKENDS,
        "build.mining.negatives": NEGATIVES,
        "logger.checkpoint_artifact": CHECKPOINT_ARTIFACTS,
    }


def _choice(value, key: str) -> None:
    check_choice(str(value) if key == "trainer.precision" else value, choices()[key], key)


# key -> check(value, key); keys missing from the config or set to null are skipped
CHECKS: dict[str, Check] = {
    "task": _choice,
    "kernel": _choice,
    "seed": _int(0),
    "trainer.max_steps": _int(1),
    "trainer.accumulate_grad_batches": _int(1),
    "trainer.log_every_n_steps": _int(1),
    "trainer.precision": _choice,
    "trainer.use_distributed_sampler": check_bool,
    "data.global_batch_size": _int(1),
    "data.num_workers": _int(0),
    "data.shuffle_buffer": _int(0),
    "data.num_swap_negatives": _int_or_auto,
    "data.stream_retries": _int(0),
    "data.stream_backoff_s": _number(0),
    "data.val_fraction": _number(0, 1, "[)"),
    "data.on_bad_row": _choice,
    "data.synthetic.difficulty": _choice,
    "data.synthetic.generator": _choice,
    "data.mask_false_swaps": check_bool,
    "data.false_swap_rate": _number(0, 1),
    "callbacks.nonfinite.skip_steps": _int(0),
    "callbacks.checkpoint.save_last": check_bool,
    "loss.name": _choice,
    "loss.temperature": _number(0, bounds="(]"),
    "loss.gather": check_bool,
    "model.pooling": _choice,
    "model.fusion": _choice,
    "model.padding_side": _choice,
    "model.truncation": _choice,
    "model.normalize": check_bool,
    "model.separate_passage_tower": check_bool,
    "model.random_init": check_bool,
    "model.gradient_checkpointing": check_bool,
    "module.optimizer.lr": _number(0, bounds="(]"),
    "module.scheduler.name": _choice,
    "module.scheduler.warmup_ratio": _number(0, 1, "[)"),
    "logger.offline": check_bool,
    "logger.checkpoint_artifact": _choice,
    "evaluation.before": check_bool,
    "evaluation.batch_size": _int(1),
    "evaluation.wise_ft": _number(0, 1),
    "benchmark.format": _choice,
    "benchmark.mode": _choice,
    "benchmark.use_instruction": _choice,
    "benchmark.retrieval_backend": _choice,
    "benchmark.top_k": _int(1),
    "benchmark.batch_size": _int(1),
    "grad_cache.chunk_size": _int(1),
    "build.positives_per_query": _int(1),
    "build.max_rows": _int(1),
    "build.max_attempts": _int(1),
    "build.judge": check_bool,
    "build.mining.negatives": _choice,
    "build.mining.top_k": _int(1),
    "build.mining.candidates_shown": _int(1),
    "build.mining.margin": _number(0, bounds="(]"),
    "generator.concurrency": _int(1),
    "generator.max_retries": _int(0),
    "generator.timeout_s": _number(0, bounds="(]"),
}
TRAIN_ONLY = (
    "trainer.",
    "data.",
    "loss.",
    "module.",
    "grad_cache.",
    "callbacks.",
    "logger.",
    "evaluation.before",
)
BUILD_ONLY = ("build.", "generator.")
# Lightning strategies that start their ranks by re-running the command line (sys.argv) in child processes
ARGV_RELAUNCH = (
    "ddp",
    "ddp_find_unused_parameters_true",
    "ddp_find_unused_parameters_false",
    "fsdp",
    "ddpstrategy",
    "fsdpstrategy",
)


def _select(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, default=None, throw_on_missing=True)
    except Exception as err:  # noqa: BLE001 (an interpolation to a missing key, a ??? value)
        raise ConfigError(f"{key}: {err}") from None


def validate(cfg: DictConfig) -> None:
    """Check every value with a known range or choice before anything heavy is built (one line per mistake)."""
    _check_required(cfg)
    check_choice(cfg.task, TASKS, "task")
    for key, check in CHECKS.items():
        if (cfg.task != "train" and key.startswith(TRAIN_ONLY)) or (
            cfg.task != "build_data" and key.startswith(BUILD_ONLY)
        ):
            continue
        value = _select(cfg, key)
        if value is not None:
            check(value, key)
    if cfg.task == "train":
        _check_divisible(cfg)
        _check_multirun_ddp(cfg)
        _check_grad_cache_strategy(cfg)
        _check_grad_cache_fusion(cfg)
        _check_false_swaps(cfg)
    _check_target_keys(cfg)
    _check_optimized_metric(cfg)
    ckpt = cfg.get("ckpt_path")
    if ckpt and ckpt not in ("last", "hpc") and not Path(ckpt).is_file():
        raise ConfigError(f"ckpt_path={ckpt}: no such checkpoint file")
    if _select(cfg, "evaluation.wise_ft") is not None:
        _check_wise_ft(cfg)


def _check_false_swaps(cfg: DictConfig) -> None:
    """Decoy swaps (data.false_swap_rate) are texts outside the batch: only the concat fusion encodes them."""
    rate = _select(cfg, "data.false_swap_rate")
    fusion = _select(cfg, "model.fusion") or "concat"
    if rate and fusion != "concat":
        raise ConfigError(f"data.false_swap_rate={rate} needs model.fusion=concat, got model.fusion={fusion}")


def _check_required(cfg: DictConfig) -> None:
    """A value left at ``???`` (e.g. ``benchmark.root`` of benchmark=birco) is named before anything is built."""
    missing = sorted(_missing_keys(OmegaConf.to_container(cfg, resolve=False)))
    if missing:
        raise ConfigError(f"{missing[0]}: a required value is not set (???); give {missing[0]}=...")


def _missing_keys(node, prefix: str = ""):
    """Dotted keys whose value is ``???`` in a plain (unresolved) config container."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(node, list):
            full_key = f"{prefix}[{key}]"
        else:
            full_key = f"{prefix}.{key}" if prefix else str(key)
        if value == "???":
            yield full_key
        elif isinstance(value, (dict, list)):
            yield from _missing_keys(value, full_key)


def benchmark_rows(cfg: DictConfig) -> dict[str, tuple[str, ...]]:
    """``{benchmark row: its metrics}`` that this run writes into metrics.json, as far as the config tells:
    the synthetic held-out topics when training on the synthetic data, and the rows of ``benchmark``."""
    from infembed.eval.runner import SYNTHETIC, SYNTHETIC_METRICS

    rows = {}
    if cfg.task == "train" and _select(cfg, "data.synthetic") is not None:
        rows[SYNTHETIC] = SYNTHETIC_METRICS
    benchmark = cfg.get("benchmark")
    if benchmark is None or benchmark.get("path") is None:
        return rows
    paths = list(benchmark.path) if OmegaConf.is_list(benchmark.path) else [benchmark.path]
    names = benchmark.get("name") or [None] * len(paths)
    names = list(names) if OmegaConf.is_list(names) or isinstance(names, list) else [names]
    metrics = (*(benchmark.get("metrics") or ()), "p-mrr")  # FollowIR-format data adds p-mrr
    suffixes = {True: ("",), False: (" (no instruction)",), "both": ("", " (no instruction)")}
    for path, name in zip(paths, names):
        # a hub dataset's row may be named by its id or by its last part
        labels = [name] if name else list(dict.fromkeys((Path(str(path)).name, str(path))))
        for label in labels:
            for suffix in suffixes.get(benchmark.get("use_instruction", True), ("",)):
                rows[f"{label}{suffix}"] = metrics
    return rows


def _check_optimized_metric(cfg: DictConfig) -> None:
    """``optimized_metric`` (when set) must be a path this run's metrics.json will have; the error lists them."""
    path = cfg.get("optimized_metric")
    if not path:
        return
    from infembed.results import check_metric_path

    stage, benchmark, metric = check_metric_path(path)
    stages = ("before", "after") if cfg.task == "train" and _select(cfg, "evaluation.before") else ("after",)
    rows = benchmark_rows(cfg)
    valid = [f"{s}/{b}/{m}" for s in stages for b, ms in rows.items() for m in ms]
    if stage not in stages or metric not in rows.get(benchmark, ()):
        raise ConfigError(
            f"optimized_metric={path}: this run does not produce it; expected one of {', '.join(valid) or 'none'}"
            " (a benchmark given by benchmark.path=... adds its rows), or optimized_metric=null"
        )


def _check_wise_ft(cfg: DictConfig) -> None:
    """WiSE-FT interpolates a trained checkpoint with the pretrained weights of the preset it started from."""
    if cfg.task != "evaluate" or not cfg.get("ckpt_path"):
        raise ConfigError(
            "evaluation.wise_ft interpolates a trained checkpoint with its initial model: it needs "
            "task=evaluate and ckpt_path=CHECKPOINT"
        )
    if _select(cfg, "model.random_init"):
        raise ConfigError(
            "evaluation.wise_ft: model.random_init=true has no pretrained weights to interpolate "
            "with; give the pretrained preset the checkpoint was trained from (model=...)"
        )


def _check_target_keys(cfg: DictConfig) -> None:
    """Every key of a node with a ``_target_`` must be an argument of it (a typo in ``+loss.temprature=...`` is named
    here, before anything is built, not as a TypeError when the loss is), unless the target takes ``**kwargs``."""
    for key, node in _target_nodes(cfg):
        accepted = _target_arguments(str(node._target_))
        unknown = sorted(
            str(k) for k in node if not str(k).startswith("_") and accepted is not None and k not in accepted
        )
        if unknown:
            prefix = f"{key}." if key else ""
            close = difflib.get_close_matches(str(unknown[0]), sorted(accepted), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(
                f"{prefix}{unknown[0]}: not an argument of {node._target_}{hint}; it takes: {', '.join(sorted(accepted))}"
            )


def _target_nodes(node: DictConfig, prefix: str = ""):
    """``(dotted key, node)`` of every mapping with a ``_target_`` under ``node`` (``hydra`` excluded)."""
    if "_target_" in node:
        yield prefix, node
    for key in node:
        child = node._get_node(key)
        if (
            key != "hydra"
            and isinstance(child, DictConfig)
            and not child._is_missing()
            and not child._is_none()
        ):
            yield from _target_nodes(child, f"{prefix}.{key}" if prefix else str(key))


@functools.cache
def _target_arguments(target: str) -> frozenset[str] | None:
    """The keyword arguments ``target`` accepts; None when it takes ``**kwargs`` (anything) or cannot be imported
    here (an optional backend: building it reports that)."""
    from hydra.utils import get_object

    try:
        parameters = inspect.signature(get_object(target)).parameters.values()
    except (ImportError, ValueError, TypeError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL)


def _check_divisible(cfg: DictConfig) -> None:
    """data.global_batch_size (rows) must split evenly over devices × nodes × accumulation steps."""
    devices = _select(cfg, "trainer.devices")
    if not isinstance(devices, int) or devices < 1:
        return  # "auto" or a device list: checked by the DataModule once the trainer knows the world size
    per_step = (
        devices
        * (_select(cfg, "trainer.num_nodes") or 1)
        * (_select(cfg, "trainer.accumulate_grad_batches") or 1)
    )
    rows = cfg.data.global_batch_size
    if rows % per_step:
        raise ConfigError(
            f"data.global_batch_size={rows} rows must be divisible by trainer.devices × trainer.num_nodes × "
            f"trainer.accumulate_grad_batches = {per_step}"
        )


def _device_count(devices) -> int:
    """Devices per node as given to the trainer: an int (-1 = all), a list of ids, "auto" or a "0,1" string."""
    if isinstance(devices, int):
        return 2 if devices == -1 else devices  # -1 may mean several
    if isinstance(devices, str):
        return 2 if devices.strip() in ("-1", "auto") else len([d for d in devices.split(",") if d.strip()])
    return len(devices) if devices is not None else 1


def _check_multirun_ddp(cfg: DictConfig) -> None:
    """A one-node multirun with a DDP strategy that re-runs sys.argv in each rank would run the sweep in every
    rank: refused, unless the ranks come from SLURM or torchrun (then there is no re-run)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
        return
    strategy = _strategy_name(cfg)
    if strategy not in ARGV_RELAUNCH or _device_count(_select(cfg, "trainer.devices")) < 2:
        return
    if "SLURM_NTASKS" in os.environ or "LOCAL_RANK" in os.environ:
        return
    raise ConfigError(
        f"trainer.strategy={strategy} with trainer.devices={_select(cfg, 'trainer.devices')} in a multirun (-m / "
        "sweep=): Lightning would re-run the whole sweep in every rank. Run the sweep with launcher=slurm (one "
        "task per device), or run single jobs with torchrun --nproc_per_node=N run.py ..."
    )


def _strategy_name(cfg: DictConfig) -> str:
    """trainer.strategy as a lowercase name: the string, or the class name of its ``_target_``."""
    strategy = _select(cfg, "trainer.strategy")
    name = (
        str(strategy.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(strategy, DictConfig) else strategy
    )
    return str(name or "").lower()


def _check_grad_cache_fusion(cfg: DictConfig) -> None:
    """The rule lives with the gradient cache (the module checks it too, for Python callers); asked here so the
    mistake stops before anything is loaded."""
    from infembed.models.grad_cache import check_fusion

    check_fusion(_select(cfg, "grad_cache.chunk_size"), _select(cfg, "model.fusion"))


def _check_grad_cache_strategy(cfg: DictConfig) -> None:
    """The gradient cache averages gradients itself, which sharded strategies (FSDP, DeepSpeed) do not allow."""
    name = _strategy_name(cfg)
    if _select(cfg, "grad_cache.chunk_size") is not None and any(s in name for s in ("fsdp", "deepspeed")):
        raise ConfigError(
            f"grad_cache.chunk_size={cfg.grad_cache.chunk_size} with trainer.strategy={name}: the gradient cache "
            "needs whole gradients on each rank (DDP or one device); use grad_cache.chunk_size=null with FSDP"
        )


# --- hub reachability: a local backbone folder must exist; a hub id must be in the local Hugging Face cache when
# HF_HUB_OFFLINE=1 and otherwise answer on the hub. Anything else is one line naming the key, the repository and the ways out.

WAYS_OUT = {
    "model": "run with network access (and without HF_HUB_OFFLINE=1), download it once (hf download {id}), or "
    "point {key} at a local model folder",
    "dataset": "run with network access (and without HF_HUB_OFFLINE=1), download it once (hf download {id} "
    "--repo-type dataset), or train on local files: data=local data.train_source=FILE|DIR|GLOB",
}


class HubAccessError(UserError):
    """A model or dataset the run needs can be neither found on disk nor reached on the hub."""


def check_reachable(key: str, name: str, repo_type: str) -> None:
    """``name`` (the value of config ``key``): a reachable hub ``repo_type`` repository, or for a model a local
    folder that exists."""
    if not is_hub_id(name):
        if repo_type == "model" and not Path(name).exists():
            raise HubAccessError(f"{key}={name}: no such model folder (nor an 'org/name' hub id)")
        return
    from huggingface_hub import constants

    problem = cache_problem(name, repo_type) if constants.HF_HUB_OFFLINE else hub_problem(name, repo_type)
    if problem:
        ways_out = WAYS_OUT[repo_type].format(id=name, key=key)
        raise HubAccessError(f"{key}={name}: {problem}; ways out: {ways_out}")


def cache_problem(name: str, repo_type: str) -> str | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(name, repo_type=repo_type, local_files_only=True)
    except LocalEntryNotFoundError:
        return f"the hub {repo_type} is not in the local cache and HF_HUB_OFFLINE=1"
    return None


def hub_problem(name: str, repo_type: str) -> str | None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().repo_info(name, repo_type=repo_type, timeout=15)
    except RepositoryNotFoundError:
        return f"no such {repo_type} on the hub (or it is private or gated: log in with `hf auth login`)"
    except OSError as error:  # connection refused, DNS, timeout, HTTP 5xx
        return f"the hub is unreachable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    return None


def check_hub_access(cfg: DictConfig) -> None:
    """The backbone (unless a checkpoint is evaluated) and hub datasets must be reachable or cached offline."""
    if cfg.task == "train" or not cfg.ckpt_path:
        check_reachable("model.backbone", str(cfg.model.backbone), "model")
    if cfg.task == "train":
        for key in ("train_source", "val_source"):
            if cfg.data.get(key):
                check_reachable(f"data.{key}", str(cfg.data[key]), "dataset")
