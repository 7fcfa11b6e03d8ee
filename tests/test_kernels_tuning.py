"""The kernel choice (tuning.py): timed once on CPU with the chunked path and the Triton interpreter at tiny sizes,
cached on disk so a second process reads the same choice, forced from the environment, logged once.

On a GPU the same code times the real tiles (tests/test_kernels_gpu.py checks that processes agree there too).
"""

import json
import logging
import subprocess
import sys

import pytest
import torch

from infembed.kernels import tuning

from helpers import offline_env

pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
CPU = torch.device("cpu")
CHOOSE = """
import json, sys, torch
from infembed.kernels import tuning
cls = tuning.shape_class(torch.device("cpu"), torch.float32, 40, 40, 24, True, True)
c = tuning.choose(cls, torch.device("cpu"), torch.float32, with_chunked=True)
print(json.dumps({"backend": c.backend, "fwd": c.fwd, "design": c.design, "bwd": c.bwd, "source": c.source}))
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache file and no decision remembered in this process."""
    path = tmp_path / "choices.json"
    monkeypatch.setenv(tuning.ENV_CACHE, str(path))
    monkeypatch.setattr(tuning, "_DECIDED", {})
    for name in (tuning.ENV_BACKEND, tuning.ENV_DESIGN, tuning.ENV_FWD_TILE, tuning.ENV_BWD_TILE):
        monkeypatch.delenv(name, raising=False)
    return path


def _cls(n=40, dim=24):
    return tuning.shape_class(CPU, torch.float32, n, n, dim, True, True)


@pytest.mark.kernel
def test_tuning_times_chunked_and_every_triton_candidate_then_caches_the_fastest(cache, caplog):
    caplog.set_level(logging.INFO, logger="infembed.kernels.tuning")
    choice = tuning.choose(_cls(), CPU, torch.float32, with_chunked=True)
    assert choice.source == "tuned"
    assert set(choice.times_ms) == {
        "chunked",
        "fwd 32x32x32dv32w4s1",
        "triton blocked:32x32x32dv32w4s1",
        "triton register:32x32x32dv32w4s1",
    }
    assert all(ms > 0 for ms in choice.times_ms.values())
    triton_best = min(v for name, v in choice.times_ms.items() if name.startswith("triton "))
    expected = "triton" if triton_best <= choice.times_ms["chunked"] else "chunked"
    assert choice.backend == expected  # the faster of the two, as timed
    (entry,) = json.loads(cache.read_text()).values()
    assert entry["backend"] == choice.backend and entry["times_ms"] == choice.times_ms
    again = tuning.choose(_cls(), CPU, torch.float32, with_chunked=True)
    assert again is choice  # remembered in the process: not timed again
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "kernel choice for cpu|float32|D32|N64|ex1col1|auto|" in caplog.records[0].message


@pytest.mark.kernel
@pytest.mark.e2e
def test_a_second_process_reads_the_first_ones_choice(cache):
    env = offline_env(**{tuning.ENV_CACHE: str(cache), "TRITON_INTERPRET": "1"})
    run = lambda: subprocess.run(
        [sys.executable, "-c", CHOOSE], env=env, capture_output=True, text=True, check=True, timeout=300
    )
    first, second = (json.loads(run().stdout.strip().splitlines()[-1]) for _ in range(2))
    assert first.pop("source") == "tuned" and second.pop("source") == "cache"
    assert first == second


def test_a_cached_choice_is_used_without_timing(cache):
    """Whatever the timings would say now, the cached choice stands (that is what makes processes agree)."""
    key = f"{_cls().key()}|auto|"
    entry = {"backend": "chunked", "fwd": None, "design": None, "bwd": None, "times_ms": {"chunked": 1.0}}
    cache.write_text(json.dumps({key: entry}))
    choice = tuning.choose(_cls(), CPU, torch.float32, with_chunked=True, timer=_no_timing)
    assert (choice.backend, choice.source) == ("chunked", "cache")


def test_a_stale_cached_tile_is_tuned_again(cache):
    key = f"{_cls().key()}|triton|"
    stale = {"backend": "triton", "fwd": "999x1x1w1s1", "design": "blocked", "bwd": "x", "times_ms": {}}
    cache.write_text(json.dumps({key: stale}))
    choice = tuning.choose(_cls(), CPU, torch.float32, with_chunked=False, timer=lambda fn: 1.0)
    assert choice.source == "tuned" and choice.fwd == "32x32x32dv32w4s1"
    assert json.loads(cache.read_text())[key]["fwd"] == "32x32x32dv32w4s1"


def _no_timing(fn):
    raise AssertionError("timed although the choice is cached or forced")


def test_the_environment_forces_a_backend_or_a_plan_without_timing(cache, monkeypatch):
    monkeypatch.setenv(tuning.ENV_BACKEND, "chunked")
    choice = tuning.choose(_cls(), CPU, torch.float32, with_chunked=True, timer=_no_timing)
    assert (choice.backend, choice.source) == ("chunked", "forced")
    monkeypatch.setenv(tuning.ENV_BACKEND, "triton")
    monkeypatch.setenv(tuning.ENV_DESIGN, "register")
    choice = tuning.choose(_cls(), CPU, torch.float32, with_chunked=True, timer=_no_timing)
    assert (choice.backend, choice.design, choice.source) == ("triton", "register", "forced")
    assert choice.plan(torch.float32).bwd.block_dv == 32
    assert not cache.exists()  # nothing timed, nothing written


def test_forcing_real_gpu_tiles_by_name(monkeypatch):
    monkeypatch.setenv(tuning.ENV_FWD_TILE, "128x64x64w8s3")
    monkeypatch.setenv(tuning.ENV_BWD_TILE, "64x64x64w4s2")
    cands = tuning.candidates(torch.bfloat16, torch.device("cuda"), with_chunked=False)
    assert [t.name for t in cands["fwd"]] == ["128x64x64w8s3"]
    assert [(d, t.name) for d, t in cands["bwd"]] == [("blocked", "64x64x64w4s2")]
    monkeypatch.setenv(tuning.ENV_BWD_TILE, "64x64x64dv64w4s2")
    cands = tuning.candidates(torch.bfloat16, torch.device("cuda"), with_chunked=False)
    assert [d for d, _ in cands["bwd"]] == ["register"]


@pytest.mark.parametrize(
    "name,value,message",
    [
        (tuning.ENV_BACKEND, "naive", r"INFEMBED_AUTO_BACKEND='naive': expected one of triton, chunked"),
        (tuning.ENV_FWD_TILE, "1x1x1w1s1", r"fwd tile '1x1x1w1s1' is not a tile of the kernels"),
        (tuning.ENV_BWD_TILE, "1x1x1w1s1", r"INFEMBED_TRITON_BWD_TILE='1x1x1w1s1': not a tile of the"),
    ],
)
def test_unknown_switch_values_are_one_clear_error(cache, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(tuning.KernelConfigError, match=message):
        tuning.choose(_cls(), torch.device("cuda"), torch.bfloat16, with_chunked=True, timer=_no_timing)


def test_a_corrupt_cache_file_names_itself(cache):
    cache.write_text("{not json")
    with pytest.raises(tuning.KernelConfigError, match=r"choices.json: not a kernel choice cache"):
        tuning.choose(_cls(), CPU, torch.float32, with_chunked=True, timer=_no_timing)


def test_shape_classes_round_n_up_and_pad_d():
    cls = tuning.shape_class(CPU, torch.bfloat16, 30000, 1000, 200, False, True)
    assert (cls.n, cls.dim, cls.dtype) == (32768, 208, "bfloat16")
    assert cls.key() == "cpu|bfloat16|D208|N32768|ex0col1"


def test_an_unwritable_cache_warns_and_tunes_for_this_process(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(tuning.ENV_CACHE, str(blocker / "choices.json"))  # its folder is a file
    monkeypatch.setattr(tuning, "_DECIDED", {})
    with pytest.warns(
        RuntimeWarning, match=r"kernel choice cache .*choices.json: .*tuning for this process only"
    ):
        choice = tuning.choose(_cls(), CPU, torch.float32, with_chunked=False, timer=lambda fn: 1.0)
    assert (choice.backend, choice.source) == ("triton", "tuned")
