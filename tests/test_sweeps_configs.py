"""Sweep and launcher configs: each sweep expands to its jobs, the local launcher caps parallelism, the SLURM
launcher's sbatch script carries the trainer's resources (rendered by the real plugin, nothing submitted), and the
W&B logger config groups and tags sweep runs."""

from pathlib import Path

import hydra
import pytest
from omegaconf import OmegaConf

from helpers.compose import CONF, compose_train, expand

LOSSES = sorted(p.stem for p in (CONF / "loss").glob("*.yaml") if not p.stem.startswith("_"))
EXPECTED_JOBS = {"loss_ablation": 11, "batch_scaling": 2 * 5, "model_scale": 5, "full_grid": 11 * 3 * 3}


def compose_hydra(overrides: list[str]):
    return compose_train(*overrides, hydra_node=True)


def test_every_sweep_file_is_tested():
    assert sorted(p.stem for p in (CONF / "sweep").glob("*.yaml")) == sorted(EXPECTED_JOBS)


@pytest.mark.parametrize("name", sorted(EXPECTED_JOBS))
def test_sweep_composes_and_expands_to_expected_jobs(name):
    cfg = compose_hydra([f"sweep={name}"])
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and cfg.experiment_name == name
    (jobs,) = expand(cfg, [f"sweep={name}"])
    assert len(jobs) == EXPECTED_JOBS[name]
    assert len({tuple(job) for job in jobs}) == len(jobs)
    for job in jobs[:: max(1, len(jobs) // 12)]:  # a spread of jobs composes as Hydra would compose it
        job_cfg = compose_hydra(job)
        for override in job:
            key, value = override.split("=", 1)
            if key == "loss":
                assert job_cfg.loss.name == value
            elif key == "data.global_batch_size":
                assert job_cfg.data.global_batch_size == int(value)


def test_loss_ablation_covers_exactly_the_loss_configs():
    cfg = compose_hydra(["sweep=loss_ablation"])
    (jobs,) = expand(cfg, [])
    assert sorted(job[0].split("=", 1)[1] for job in jobs) == LOSSES


def test_local_launcher_caps_parallel_jobs_and_threads(monkeypatch):
    monkeypatch.delenv("INFEMBED_LOCAL_PARALLEL_JOBS", raising=False)
    cfg = compose_hydra(["sweep=loss_ablation", "launcher=local"])
    assert cfg.hydra.launcher._target_.endswith("LocalLauncher")
    batches = expand(cfg, [])
    assert [len(b) for b in batches] == [2, 2, 2, 2, 2, 1]  # at most two jobs at a time on a 2-core machine
    assert cfg.hydra.job.env_set.OMP_NUM_THREADS == "1"
    monkeypatch.setenv("INFEMBED_LOCAL_PARALLEL_JOBS", "3")
    assert compose_hydra(["sweep=loss_ablation", "launcher=local"]).hydra.sweeper.max_batch_size == 3


class Submitted(Exception):
    """Raised instead of calling sbatch: carries the script submitit would have submitted."""


def render_sbatch(monkeypatch, tmp_path: Path, overrides: list[str]) -> tuple[str, int]:
    """Run the real submitit SLURM launcher up to the point where it would call sbatch."""
    from submitit.slurm.slurm import SlurmExecutor

    def capture(executor, command):
        raise Submitted(executor._make_submission_file_text(command, "uid"), executor.max_num_timeout)

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # pretend srun exists
    monkeypatch.setattr(SlurmExecutor, "_submit_command", capture)
    cfg = compose_hydra(["sweep=loss_ablation", "launcher=slurm", f"hydra.sweep.dir={tmp_path}", *overrides])
    launcher = hydra.utils.instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(Submitted) as submitted:
        launcher.launch([["loss=uni_p"], ["loss=multi_p_i"]], initial_job_idx=0)
    return submitted.value.args


def test_slurm_sbatch_carries_trainer_resources_and_site_settings(monkeypatch, tmp_path):
    script, max_num_timeout = render_sbatch(
        monkeypatch,
        tmp_path,
        [
            "trainer=ddp",
            "trainer.num_nodes=2",
            "slurm.partition=gpu-long",
            "slurm.account=proj",
            "slurm.qos=high",
            "slurm.constraint=h100",
            "slurm.timeout_min=90",
            "slurm.mem_per_gpu=80G",
            "slurm.cpus_per_task=12",
            "slurm.setup=[module load cuda]",
        ],
    )
    lines = set(script.splitlines())
    for flag in (
        "nodes=2",
        "ntasks-per-node=4",
        "gpus-per-node=4",
        "cpus-per-task=12",
        "mem-per-gpu=80G",
        "time=90",
        "partition=gpu-long",
        "account=proj",
        "qos=high",
        "constraint=h100",
        "signal=USR2@120",
        "array=0-1%2",
        "job-name=loss_ablation",
    ):
        assert f"#SBATCH --{flag}" in lines, flag
    assert not any(
        line.startswith("#SBATCH --mem=") for line in lines
    )  # SLURM refuses --mem with --mem-per-gpu
    assert "module load cuda" in lines
    assert any(line.startswith("srun ") and "submitit.core._submit" in line for line in lines)
    assert max_num_timeout == 3  # requeues after a timeout; preemptions always requeue


def test_slurm_site_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INFEMBED_SLURM_PARTITION", "from-env")
    monkeypatch.setenv("INFEMBED_SLURM_TIMEOUT_MIN", "30")
    monkeypatch.setenv("INFEMBED_SLURM_MEM_PER_GPU", "40G")
    script, _ = render_sbatch(monkeypatch, tmp_path, ["trainer=gpu"])
    lines = set(script.splitlines())
    assert {
        "#SBATCH --partition=from-env",
        "#SBATCH --time=30",
        "#SBATCH --nodes=1",
        "#SBATCH --mem-per-gpu=40G",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --ntasks-per-node=1",
    } <= lines
    assert not any(
        line.startswith(("#SBATCH --account", "#SBATCH --qos")) for line in lines
    )  # unset: omitted


def test_slurm_memory_scales_with_gpus_per_node(monkeypatch, tmp_path):
    """The default per-GPU memory: a 4-GPU node asks for 4 × 64G, a 1-GPU job for 64G (nothing fixed per node)."""
    for devices in (1, 4):
        script, _ = render_sbatch(
            monkeypatch, tmp_path / str(devices), ["trainer=ddp", f"trainer.devices={devices}"]
        )
        lines = set(script.splitlines())
        assert {f"#SBATCH --gpus-per-node={devices}", "#SBATCH --mem-per-gpu=64G"} <= lines


def test_slurm_cpu_only_job_takes_memory_per_node_and_the_given_name(monkeypatch, tmp_path):
    script, _ = render_sbatch(
        monkeypatch,
        tmp_path,
        [
            "trainer=cpu",
            "hydra.launcher.gpus_per_node=0",
            "slurm.mem_per_gpu=null",
            "slurm.mem_gb=96",
            "experiment_name=my_sweep",
        ],
    )
    lines = set(script.splitlines())
    assert {"#SBATCH --mem=96GB", "#SBATCH --job-name=my_sweep"} <= lines
    assert not any(line.startswith("#SBATCH --mem-per-gpu") for line in lines)


def test_slurm_launcher_resumes_and_leaves_requeue_to_submitit():
    cfg = compose_hydra(["launcher=slurm"])
    assert cfg.ckpt_path == "last"  # Lightning resumes from <job dir>/checkpoints/last.ckpt after a requeue
    (plugin,) = [hydra.utils.instantiate(p) for p in cfg.trainer.plugins]
    assert type(plugin).__name__ == "SLURMEnvironment" and plugin.auto_requeue is False


def test_wandb_logger_groups_and_tags_sweep_runs():
    cfg = compose_hydra(["sweep=loss_ablation", "logger=wandb", "loss=uni_p_i", "model=tiny"])
    logger = OmegaConf.to_container(cfg.logger, resolve=True)
    assert logger["group"] == "loss_ablation" and logger["job_type"] == "train" and logger["offline"] is True
    assert {"loss=uni_p_i", f"global_batch={cfg.data.global_batch_size}", "task=train"} <= set(logger["tags"])
    assert any(tag.startswith("model=") for tag in logger["tags"])


@pytest.mark.parametrize("experiment", ["loss_ablation_minilm", "loss_ablation_tiny"])
def test_experiments_are_diffs_over_their_sweep(experiment):
    """An experiment selects its sweep and wins over it (experiment_name, sweep dir), and its jobs keep its diff."""
    cfg = compose_hydra([f"experiment={experiment}"])
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and cfg.experiment_name == experiment
    jobs = [job for batch in expand(cfg, []) for job in batch]
    assert len(jobs) == 11
    job_cfg = compose_hydra([f"experiment={experiment}", *jobs[0]])
    assert job_cfg.experiment_name == experiment and job_cfg.loss.name == jobs[0][0].split("=", 1)[1]
    if experiment == "loss_ablation_tiny":
        assert job_cfg.model.name == "tiny" and job_cfg.trainer.max_steps == 500
