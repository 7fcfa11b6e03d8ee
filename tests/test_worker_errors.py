"""A DataError raised inside a DataLoader worker process reaches the console as the same one line (file, line,
field, what was expected) and exit status 1, not torch's multi-line RuntimeError with the worker's traceback."""

import json

import pytest

from helpers.faults import SMOKE, start_run, wait_until
from helpers.training import row


@pytest.mark.e2e
def test_a_bad_row_read_in_a_worker_is_one_line(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(row(n)) + "\n" for n in range(16)))
    job = tmp_path / "job"
    process = start_run(
        *SMOKE, "data=local", f"data.train_source={rows}", "data.val_fraction=0", "data.num_workers=2",
        "trainer.max_steps=200", f"hydra.run.dir={job}", cwd=tmp_path,
    )  # fmt: skip
    wait_until(process, lambda: (job / "checkpoints" / "step1.ckpt").exists())
    bad = [json.dumps(row(n) | ({"query_positive": 7} if n == 2 else {})) + "\n" for n in range(16)]
    rows.write_text("".join(bad))  # the file changes under the running job: the next pass reads line 3
    output, _ = process.communicate(timeout=600)
    errors = [line for line in output.splitlines() if "DataError" in line]
    assert process.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert len(errors) == 1 and "Caught" not in errors[0], output[-3000:]
    assert f"DataError: {rows}: line 3: field 'query_positive': expected a string, got int 7" in errors[0]
