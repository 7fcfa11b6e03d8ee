"""What a paper takes from a report: the with/without-instruction table with the mean over tasks, figures with one
panel per benchmark and readable labels (PNG, PDF, SVG), raw and Holm-adjusted p with only survivors in bold, a
declared family, and the tables in W&B (an offline run, read back from its files)."""

import json

import numpy as np
import pytest

from infembed.report.stats import holm

from helpers.reports import make_job, per_query, report, table_rows

TASKS = ("arguana", "wtb")


def birco_values(rng, level: float) -> dict:
    """``{task: {"ndcg@10": ...}, "task (no instruction)": ...}`` on 50 queries; without the instruction 0.02 lower."""
    values = {}
    for task in TASKS:
        base = rng.uniform(level - 0.1, level + 0.1, 50)
        values[task] = {"ndcg@10": per_query(base)}
        values[f"{task} (no instruction)"] = {"ndcg@10": per_query(base - 0.02)}
    return values


@pytest.fixture(scope="module")
def birco(tmp_path_factory) -> dict:
    """The untrained model (one run) and a trained configuration (seeds 1–3), as birco_transfer evaluates them."""
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("birco") / "runs"
    after = {"untrained": birco_values(rng, 0.4)}
    make_job(root, 0, ["experiment=birco_transfer", "ckpt_path=null"], after["untrained"], seed=42)
    trained = ["experiment=birco_transfer", "loss=multi_p_i", "trained:experiment=loss_seeds_hard"]
    for seed in (1, 2, 3):
        after[seed] = birco_values(rng, 0.45)
        make_job(root, seed, [*trained, f"seed={seed}"], after[seed], seed=seed)
    out = root.parent / "out"
    result = report(root, "--out", out, "--baseline", "ckpt_path=null")
    return {"root": root, "out": out, "result": result, "after": after}


def run_mean(values: dict, task: str) -> float:
    return float(np.mean(list(values[task]["ndcg@10"].values())))


@pytest.mark.e2e
def test_with_and_without_instruction_as_columns_and_the_mean_over_tasks(birco):
    assert birco["result"].returncode == 0, birco["result"].stderr
    text = birco["result"].stdout
    assert "## ndcg@10 with and without the instruction" in text
    assert (
        "| configuration | seeds | arguana with | arguana without | wtb with | wtb without | mean with | "
        "mean without | gap |" in text
    )
    (row,) = [r for r in table_rows(text, "loss=multi_p_i trained:experiment=loss_seeds_hard") if len(r) == 9]
    seeds = [birco["after"][s] for s in (1, 2, 3)]
    with_ = np.mean([[run_mean(v, t) for t in TASKS] for v in seeds], axis=0)  # (tasks,)
    without = np.mean([[run_mean(v, f"{t} (no instruction)") for t in TASKS] for v in seeds], axis=0)
    assert row[1] == "3"
    assert row[2:6] == [f"{100 * with_[0]:.1f}", f"{100 * without[0]:.1f}", f"{100 * with_[1]:.1f}",
                        f"{100 * without[1]:.1f}"]  # fmt: skip
    assert row[6:9] == [f"{100 * with_.mean():.1f}", f"{100 * without.mean():.1f}", "+2.0"]


@pytest.mark.e2e
def test_figure_has_one_panel_per_benchmark_and_readable_labels(birco):
    svg = (birco["out"] / "metrics.svg").read_text()
    assert (birco["out"] / "metrics.pdf").read_bytes()[:4] == b"%PDF"
    assert (birco["out"] / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    for text in ("arguana (50 queries)", "wtb (50 queries)", "untrained (1 seed)",
                 "multi_p_i loss_seeds_hard (3 seeds)", "with the instruction"):  # fmt: skip
        assert text in svg, text
    assert "(no instruction) (" not in svg and "trained:" not in svg and "ckpt_path" not in svg
    assert "untrained model" not in svg  # no "before" stage in these runs: no dashed line to explain
    assert "Each also as PDF and SVG beside the PNG." in birco["result"].stdout


def holm_study(root) -> None:
    """Four configurations against a baseline, one run each: effects 0, 0.01, 0.03, 0.08 over 60 queries."""
    rng = np.random.default_rng(8)
    base = rng.uniform(0.2, 0.8, 60)
    for num, effect in enumerate((0.0, 0.0, 0.01, 0.03, 0.08)):
        values = base + effect + rng.normal(0, 0.08, 60)
        make_job(root, num, [f"loss=l{num}"], {"synthetic": {"p-mrr": per_query(values)}})


@pytest.mark.e2e
def test_holm_adjusted_p_beside_the_raw_one_and_only_survivors_bold(tmp_path):
    holm_study(tmp_path / "r")
    printed = report(tmp_path / "r", "--out", tmp_path / "out", "--baseline", "loss=l0")
    assert printed.returncode == 0, printed.stderr
    assert "**Family**: the 4 tests of this table" in printed.stdout
    found = [table_rows(printed.stdout, f"loss=l{i}")[0] for i in range(1, 5)]
    raw = [float(r[7]) for r in found]
    adjusted = [float(r[8].strip("*")) for r in found]
    assert adjusted == pytest.approx(holm(raw), abs=5e-5)
    for r, p in zip(found, adjusted):
        assert r[8].startswith("**") == r[5].startswith("**") == (p < 0.05)
    assert adjusted[-1] < 0.05 < adjusted[0] and any(p < 0.05 < q for p, q in zip(raw, adjusted))


@pytest.mark.e2e
def test_a_declared_family_of_one_is_not_adjusted(tmp_path):
    holm_study(tmp_path / "r")
    args = ("--compare", "loss=l3", "loss=l0", "--test-metric", "after/synthetic/p-mrr")
    printed = report(tmp_path / "r", "--out", tmp_path / "out", *args)
    assert printed.returncode == 0, printed.stderr
    (row,) = table_rows(printed.stdout, "loss=l3")
    assert "**Family**: the 1 tests" in printed.stdout and row[7] == row[8].strip("*")
    bad = report(tmp_path / "r", "--out", tmp_path / "out", "--test-metric", "after/arguana/ndcg@10")
    assert (
        bad.returncode == 1
        and "error: --test-metric after/arguana/ndcg@10: no finished run has it" in bad.stderr
    )


@pytest.mark.e2e
def test_tables_logged_to_wandb_offline(tmp_path):
    holm_study(tmp_path / "r")
    printed = report(tmp_path / "r", "--out", tmp_path / "out", "--wandb", "infembed-reports", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    (run_dir,) = (tmp_path / "logs" / "wandb").glob("offline-run-*")
    tables = {p.name.split("_")[0]: json.loads(p.read_text()) for p in run_dir.rglob("*.table.json")}
    assert set(tables) == {"configurations", "comparisons"}
    configurations = {row[0]: row for row in tables["configurations"]["data"]}
    assert tables["configurations"]["columns"][:4] == ["configuration", "seeds", "benchmark", "metric"]
    (cell,) = table_rows(printed.stdout, "0")
    assert f"{configurations['loss=l0'][4]:.1f}" in cell[3]
    comparisons = tables["comparisons"]
    assert len(comparisons["data"]) == 4 and comparisons["columns"][11:13] == ["p", "p_holm"]
    assert [r[12] for r in comparisons["data"]] == pytest.approx(holm([r[11] for r in comparisons["data"]]))
