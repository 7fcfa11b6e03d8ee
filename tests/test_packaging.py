"""infembed is a real package: requirements.txt agrees with pyproject.toml, and a wheel installed into a fresh venv
gives console commands that compose the same config as ``python run.py``, from outside the repository."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

import infembed

from helpers import ROOT, offline_env

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
README_EXTRAS = ("mteb", "lora", "dev")  # what the README's `pip install -r requirements.txt` installs


def requirements_txt() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = [line for line in lines if line.strip() and not line.startswith(("#", "-e"))]
    return {Requirement(line).name: Requirement(line) for line in wanted}


def pyproject_requirements() -> dict[str, Requirement]:
    lines = PYPROJECT["dependencies"] + [
        r for e in README_EXTRAS for r in PYPROJECT["optional-dependencies"][e]
    ]
    return {Requirement(line).name: Requirement(line) for line in lines}


def test_requirements_txt_is_pyproject_with_torch_pinned():
    pinned, declared = requirements_txt(), pyproject_requirements()
    assert set(pinned) == set(declared)
    assert "-e ." in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    torch_pin = next(iter(pinned.pop("torch").specifier))
    assert torch_pin.operator == "==" and declared.pop("torch").specifier.contains(torch_pin.version)
    for name, requirement in pinned.items():
        assert requirement.specifier == declared[name].specifier, name


def test_version_is_the_package_metadata():
    assert infembed.__version__ == "0.1.0"  # pyproject reads it from here (dynamic version)
    assert PYPROJECT["dynamic"] == ["version"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from a copy of the repository, installed (no dependencies) into a fresh venv that sees the
    shared environment's packages through a .pth file; returns the venv's bin folder."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"
    for name in ("src", "conf"):
        shutil.copytree(
            ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", source], check=True
    )
    (wheel,) = (tmp / "dist").glob("infembed-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (tmp / "venv" / purelib).mkdir(parents=True, exist_ok=True)
    (tmp / "venv" / purelib / "shared_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "-q", "install", "--no-deps", "--no-index", wheel], check=True)
    return venv / "bin"


def run_installed(bin_dir, command: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in offline_env().items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    return subprocess.run(
        [str(bin_dir / command), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.e2e
def test_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    located = run_installed(
        installed,
        "python",
        "-c",
        "import infembed, infembed.cli; print(infembed.__version__, infembed.cli.CONF_DIR)",
        cwd=tmp_path,
    )
    version, conf_dir = located.stdout.split()
    assert version == "0.1.0" and conf_dir.startswith(str(installed.parent)) and str(ROOT) not in conf_dir
    assert (Path(conf_dir) / "train.yaml").is_file() and (Path(conf_dir) / "loss" / "uni_p.yaml").is_file()


@pytest.mark.e2e
def test_console_command_composes_the_same_config_as_run_py(installed, tmp_path):
    overrides = ("--cfg", "job", "--resolve", "debug=smoke", "loss=uni_p", "paths.root_dir=/x")
    console = run_installed(installed, "infembed", *overrides, cwd=tmp_path)
    assert console.returncode == 0, console.stderr[-2000:]
    source = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *overrides],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert console.stdout == source.stdout and "name: uni_p" in console.stdout


@pytest.mark.e2e
def test_console_commands_report_mistakes_in_one_line(installed, tmp_path):
    unknown = run_installed(installed, "infembed", "loss=_base", cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "loss=_base: no such option; expected one of multi_i_iq, multi_p_i, multi_p_i_iq, multi_p_iq, uni_i, "
        "uni_i_iq, uni_iq, uni_p, uni_p_i, uni_p_i_iq, uni_p_iq"
    ]
    for command in ("infembed-export", "infembed-report", "infembed-mteb"):
        helped = run_installed(installed, command, "--help", cwd=tmp_path)
        assert helped.returncode == 0 and "usage:" in helped.stdout, (command, helped.stderr[-2000:])
    missing = run_installed(
        installed,
        "infembed-export",
        "--ckpt",
        str(tmp_path / "nope.ckpt"),
        "--out",
        str(tmp_path / "x"),
        cwd=tmp_path,
    )
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr[-2000:]
    assert "nope.ckpt" in missing.stderr
