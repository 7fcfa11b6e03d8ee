"""``python experiments/holm_legacy.py REPORT`` as the experiment READMEs quote it: the Holm-adjusted p-values of a
report rendered before the report printed them, from its committed test table; a file without one stops with a
line naming the file and the expected header."""

import subprocess
import sys

from helpers import ROOT

SCRIPT = ROOT / "experiments" / "holm_legacy.py"


def holm_table(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True)


def test_adjusts_the_committed_report_as_quoted_in_its_readme():
    done = holm_table("experiments/loss_seeds_hard/report.md")
    assert done.returncode == 0, done.stderr
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| loss=")]
    assert [r[2] for r in rows][0] == "synthetic/p-mrr" and len(rows) == 4  # smallest raw p first
    assert [(r[4], r[5].rstrip(" |")) for r in rows] == [
        ("0.0057", "0.0228"), ("0.0663", "0.1989"), ("0.0776", "0.1989"), ("0.3030", "0.3030"),
    ]  # fmt: skip
    one = holm_table("experiments/loss_seeds_hard/report.md", "--metric", "synthetic/p-mrr")
    assert "1 tests in the family" in one.stdout and "| 0.0057 | 0.0057 |" in one.stdout


def test_a_file_without_a_test_table_names_the_file_and_the_header(tmp_path):
    (tmp_path / "report.md").write_text("# a report\n\nno tests here\n")
    done = holm_table(str(tmp_path / "report.md"))
    assert done.returncode == 1 and done.stdout == ""
    assert (
        f"{tmp_path / 'report.md'}: no paired-test table" in done.stderr and "| A | B | metric" in done.stderr
    )


def test_a_row_with_missing_cells_names_its_line(tmp_path):
    header = "| A | B | metric | queries | Δ = A − B | 95 % CI of Δ | p |"
    (tmp_path / "report.md").write_text(
        f"# r\n{header}\n|---|---|---|---:|---:|---:|---:|\n| a | b | m | 10 | 0.2 |\n"
    )
    done = holm_table(str(tmp_path / "report.md"))
    assert done.returncode == 1 and f"{tmp_path / 'report.md'}:4: expected 7 cells" in done.stderr
