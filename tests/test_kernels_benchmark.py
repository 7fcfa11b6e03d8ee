"""The benchmark CLI runs end to end on a tiny size and reports ratios to naive from the same run."""

import re

from infembed.kernels import benchmark


def test_benchmark_prints_table_with_ratios(capsys):
    benchmark.main(["--sizes", "96", "--dim", "8", "--repeats", "1", "--warmup", "0", "--shape", "lse"])
    out = capsys.readouterr().out
    rows = {
        m.group(1): m.groups()
        for m in re.finditer(r"\| (\w+) \| 96 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", out)
    }
    assert set(rows) == {"naive", "chunked"}, out
    assert rows["naive"][3] == "1.00"
    assert float(rows["chunked"][1]) > 0


def test_worker_peak_memory_grows_with_n():
    """Measured in a fresh worker process (as the CLI does), so this process's heap cannot hide allocations."""
    args = benchmark._parse(["--dim", "8", "--repeats", "1", "--warmup", "1", "--shape", "uni_p_iq"])
    small, large = (benchmark._run_worker(args, "naive", n) for n in (64, 1024))
    assert large["peak_bytes"] >= 1024 * 1024 * 4  # at least the one materialised 1024² fp32 matrix
    assert large["peak_bytes"] > small["peak_bytes"]
