"""The report tool on fabricated multirun directories (the layout Hydra + pipeline.py write)."""
import json
from pathlib import Path

import pytest
import yaml

from infembed.report import ReportInputError, load_runs, write_report
from infembed.report.__main__ import main
from infembed.report.table import markdown_table, varying_keys


def make_job(root: Path, num: int, overrides: list[str], metrics: dict | None, choices: dict | None = None) -> Path:
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"data": {"global_batch_size": 8}}))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices or {}}}}))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    return job


def metrics(before: float, after: float) -> dict:
    return {"before": {"ndcg@10": 0.5, "p-mrr": before}, "after": {"ndcg@10": 0.6, "p-mrr": after}}


def write_multirun(root: Path, params: dict[str, str], task: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"params": params},
                                                                  "overrides": {"task": task}}}, sort_keys=False))


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """A 2×2 loss × batch sweep: three finished jobs, one crashed; a fifth expected job never started."""
    root = tmp_path / "multirun"
    write_multirun(root, {"loss": "uni_p,multi_p_i", "data.global_batch_size": "16,8,4"}, ["sweep=s"])
    jobs = [("uni_p", 16, metrics(0.0, 0.10)), ("uni_p", 8, metrics(0.0, 0.05)),
            ("multi_p_i", 16, metrics(0.0, 0.30)), ("multi_p_i", 8, None), ("uni_p", 4, metrics(0.0, 0.01))]
    for num, (loss, batch, m) in enumerate(jobs):
        make_job(root, num, ["sweep=s", f"loss={loss}", f"data.global_batch_size={batch}"], m, {"loss": loss})
    return root


def test_varying_keys_skip_constant_and_launcher_keys(grid):
    runs = load_runs([grid])
    assert varying_keys(runs) == ["data.global_batch_size", "loss"]


def test_table_sorts_numerically_keeps_sweep_order_and_shows_change(grid):
    table = markdown_table(load_runs([grid]))
    rows = [line for line in table.splitlines()[2:]]
    assert [r.split("|")[2:4] for r in rows] == [
        [" 4 ", " uni_p "], [" 8 ", " uni_p "], [" 16 ", " uni_p "], [" 16 ", " multi_p_i "]]
    assert "**30.0** (+30.0)" in rows[-1]  # best p-MRR in bold, with the change from before training
    assert "5.0 (+5.0)" in rows[1]


def test_failed_and_never_started_runs_are_listed(grid, tmp_path):
    path = write_report([grid], tmp_path / "out", title="t")
    text = path.read_text()
    assert "4 of 6 runs finished" in text
    assert "loss=multi_p_i data.global_batch_size=8" in text and "no metrics.json" in text
    assert "loss=multi_p_i data.global_batch_size=4" in text and "never started" in text


def test_plots_written_when_axis_varies(grid, tmp_path):
    out = tmp_path / "out"
    text = write_report([grid], out).read_text()
    for name in ("metrics_by_loss.png", "metrics_vs_batch.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in text
    assert not (out / "metrics_vs_model.png").exists()  # one model only: no model plot


def test_model_plot_uses_parameter_count(tmp_path):
    root = tmp_path / "m"
    for num, (model, params) in enumerate([("tiny", 1e5), ("minilm", 2.2e7)]):
        make_job(root, num, [f"model={model}"], {**metrics(0.0, 0.1 * num), "num_parameters": params},
                 {"model": model})
    write_report([root], tmp_path / "out")
    assert (tmp_path / "out" / "metrics_vs_model.png").is_file()


def test_several_sweeps_in_one_report(grid, tmp_path):
    other = tmp_path / "other"
    make_job(other, 0, ["loss=uni_i"], metrics(0.0, 0.2), {"loss": "uni_i"})
    runs = load_runs([grid, other])
    assert len(runs) == 7 and sum(r.ok for r in runs) == 5


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ReportInputError, match="no such directory"):
        load_runs([tmp_path / "absent"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportInputError, match="no Hydra job directories"):
        load_runs([tmp_path / "empty"])
    job = make_job(tmp_path / "bad", 0, ["loss=x"], None)
    (job / ".hydra" / "overrides.yaml").write_text("loss: x\n")
    with pytest.raises(ReportInputError, match=r"overrides.yaml: expected a YAML list"):
        load_runs([tmp_path / "bad"])


def test_corrupt_metrics_is_a_failed_run(tmp_path):
    job = make_job(tmp_path / "r", 0, ["loss=x"], None)
    (job / "metrics.json").write_text("{not json")
    (run,) = load_runs([tmp_path / "r"])
    assert not run.ok and "unreadable metrics.json: line 1" in run.error


def test_cli(grid, tmp_path, capsys):
    assert main([str(grid), "--out", str(tmp_path / "o")]) == 0
    assert "| job | data.global_batch_size | loss |" in capsys.readouterr().out
    assert main([str(tmp_path / "nope")]) == 1
    assert "no such directory" in capsys.readouterr().err
