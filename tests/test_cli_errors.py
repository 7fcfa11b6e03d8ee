"""User mistakes on the command line print one line by default (the valid options where there is a list), exit 1
and build nothing; INFEMBED_TRACEBACK=1 or the user's HYDRA_FULL_ERROR=1 shows the full traceback; the internal
bases of conf/ are no choice."""

import os
import re

import pytest

from helpers import offline_env, run_py

LOSSES = "multi_i_iq, multi_p_i, multi_p_i_iq, multi_p_iq, uni_i, uni_i_iq, uni_iq, uni_p, uni_p_i, uni_p_i_iq, uni_p_iq"
MISTAKES = [
    ("loss=foo", f"loss=foo: no such option; expected one of {LOSSES}"),
    ("loss=_base", f"loss=_base: no such option; expected one of {LOSSES}"),
    ("data=_base", "data=_base: no such option; expected one of inf_ir, local, synthetic, synthetic_smoke"),
    (
        "trainer.max_stepz=3",
        "trainer.max_stepz: no such key (did you mean trainer.max_steps?); trainer has: ",
    ),
    ("lossx=uni_p", "lossx: no such key (did you mean loss?); the config has: benchmark, build, callbacks, "),
    ("loss.temperature=[1", "cannot parse an override: no viable alternative at input '[1'"),
    ("evaluation.before=maybe", "ConfigError: evaluation.before='maybe': expected true or false"),
    ("model.normalize=1", "ConfigError: model.normalize=1: expected true or false"),
    ("loss.gather=yes", "ConfigError: loss.gather='yes': expected true or false"),
    ("data.on_bad_row=ignore", "ConfigError: data.on_bad_row='ignore': expected one of raise, skip"),
    (
        "data.synthetic.difficulty=medium",
        "ConfigError: data.synthetic.difficulty='medium': expected one of easy",
    ),
    (
        "benchmark.use_instruction=1",
        "ConfigError: benchmark.use_instruction=1: expected one of True, False, both",
    ),
    ("benchmark.mode=random", "ConfigError: benchmark.mode='random': expected one of auto, rerank, retrieve"),
    ("scheduler.name=step", "ConfigError: module.scheduler.name='step': expected one of linear, cosine"),
    (
        "benchmark=birco",
        "ConfigError: benchmark.root: a required value is not set (???); give benchmark.root=...",
    ),
    (
        "optimized_metric=after/beir/ndcg@10",
        "ConfigError: optimized_metric=after/beir/ndcg@10: this run does not",
    ),
]


def output_lines(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


@pytest.mark.e2e
@pytest.mark.parametrize("override, expected", MISTAKES, ids=[o for o, _ in MISTAKES])
def test_a_mistake_is_one_line_with_the_valid_options(tmp_path, override, expected):
    result = run_py("debug=smoke", "logger=csv", override, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    lines = output_lines(result)
    assert result.returncode == 1 and len(lines) == 1, lines
    assert expected in lines[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("switch", ["INFEMBED_TRACEBACK", "HYDRA_FULL_ERROR"])
def test_the_full_traceback_on_request(tmp_path, switch):
    env = {k: v for k, v in offline_env(**{switch: "1"}).items() if k != "HYDRA_FULL_ERROR" or switch == k}
    result = run_py("loss=foo", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "MissingConfigException" in result.stderr


@pytest.mark.e2e
def test_help_offers_no_internal_base():
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = run_py("--help", cwd=os.getcwd(), env=env)
    assert result.returncode == 0
    groups = result.stdout.split("== Config ==")[0]
    assert f"loss: {LOSSES}" in groups
    assert not re.search(r"[ ,:]_\w", groups)  # no group or option whose name starts with "_"
    assert "data: inf_ir, local, synthetic, synthetic_smoke" in groups
