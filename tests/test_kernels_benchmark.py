"""The benchmark CLI runs end to end on a small size and reports ratios to naive from the same run."""

import re

from infembed.kernels import benchmark


def test_benchmark_prints_table_with_ratios_and_real_peak_memory(capsys):
    benchmark.main(["--sizes", "1024", "--dim", "8", "--repeats", "1", "--warmup", "1", "--shape", "lse"])
    out = capsys.readouterr().out
    row = r"\| (\w+) \| 1024 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|"
    rows = {m.group(1): [float(x) for x in m.groups()[1:]] for m in re.finditer(row, out)}
    assert set(rows) == {"naive", "chunked"}, out
    time_s, peak_mib, time_ratio, mem_ratio = rows["naive"]
    assert time_s > 0
    assert time_ratio == 1.0 and mem_ratio == 1.0
    assert peak_mib >= 4.0  # naive holds at least the one materialised 1024² fp32 matrix
    assert rows["chunked"][0] > 0


def test_find_max_doubles_n_up_to_the_cap(capsys):
    benchmark.main(["--sizes", "128", "--dim", "4", "--repeats", "1", "--shape", "lse", "--find-max", "512"])
    out = capsys.readouterr().out
    assert "| naive | 512 | none up to the cap 512 |" in out
    assert "| chunked | 512 | none up to the cap 512 |" in out
