"""Swap sampling with labels: false negatives masked (data.mask_false_swaps), a dose injected on purpose
(data.false_swap_rate), and the false-negative measuring command on both generators."""

import json

import pytest

from infembed.data import synthetic
from infembed.data.collator import TripletCollator
from infembed.data.false_negatives import measure
from infembed.data.schema import COLUMNS, expand_row
from infembed.text import TextSpec

from helpers import MINILM, run_module, run_py

SPEC = TextSpec(MINILM)


def labelled_row(n: int, audience: int, stance: int) -> dict:
    """Row n about topic "t{n % 2}": I+ asks for the audience, its passages show (audience, stance)."""
    topic = f"t{n % 2}"
    row = {c: f"{c} {n}" for c in COLUMNS}
    show = {"topic": topic, "audience": audience, "stance": stance}
    flipped = dict(show, audience=1 - audience)
    row["labels"] = {
        "query_positive": {"topic": topic},
        "query_negative": {"topic": topic},
        "instruction_positive": {"topic": topic, "audience": audience},
        "instruction_negative": {"topic": topic, "audience": 1 - audience},
        "document_positive": show,
        "hard_negative_document_1": flipped,
        "hard_negative_document_2": show,
        "decoys": {
            c: [f"decoy {c} {n} a", f"decoy {c} {n} b"]
            for c in ("document_positive", "hard_negative_document_1")
        },
    }
    return row


ROWS = [
    labelled_row(n, audience=n // 2 % 2, stance=n % 3 % 2) for n in range(8)
]  # same-topic rows share values


def false_slots(collator: TripletCollator, rows: list[dict], k: int) -> tuple[int, int]:
    """(false swap slots, valid slots) over 50 seeds, judged from the rows' labels."""
    from infembed.data.false_negatives import Counts, count_batch

    counts = Counts()
    for seed in range(50):
        collator.seed = seed
        count_batch(collator, rows, k, counts)
    return counts.false_slots, counts.slots


def test_unmasked_sampling_draws_false_swaps_and_masking_removes_every_one():
    false, slots = false_slots(TripletCollator(None, 6, mask_false_swaps=False), ROWS, 6)
    assert (
        slots > 0 and false / slots > 0.1
    )  # rows 0 and 2 share topic t0 and audience 0: I+_2 describes P+_0
    false, slots = false_slots(TripletCollator(None, 6, mask_false_swaps=True), ROWS, 6)
    assert false == 0 and slots > 0


def test_masking_keeps_the_designed_negative_and_never_the_own_instruction():
    collator = TripletCollator(None, 3)
    instructions = [t[0] for row in ROWS for t in expand_row(row)]
    unique, chosen, mask = collator.sample(instructions, 3, collator.generator(ROWS), ROWS)
    for i in range(0, len(instructions), 3):  # (I+, Q+) triplets: their I- is the first slot
        assert unique[chosen[i, 0]] == instructions[i + 1] and mask[i, 0]
    picked = [unique[u] for u, ok in zip(chosen.flatten().tolist(), mask.flatten().tolist()) if ok]
    assert all(text.startswith("instruction") for text in picked)


def test_rows_without_labels_are_sampled_as_before():
    plain = [{c: r[c] for c in COLUMNS} for r in ROWS]
    instructions = [t[0] for row in plain for t in expand_row(row)]
    masked, unmasked = TripletCollator(None, 4), TripletCollator(None, 4, mask_false_swaps=False)
    a = masked.sample(instructions, 4, masked.generator(plain), plain)
    b = unmasked.sample(instructions, 4, unmasked.generator(plain))
    assert a[0] == b[0] and (a[1] == b[1]).all() and (a[2] == b[2]).all()


def test_false_swap_rate_one_replaces_every_slot_by_a_decoy_pair():
    tokenizer = SPEC.hf_tokenizer
    batch = TripletCollator(SPEC, 2, seed=3, false_swap_rate=1.0)(ROWS[:2])

    def decoded(tokens) -> list[str]:
        pairs = zip(tokens["input_ids"], tokens["attention_mask"])
        return [tokenizer.decode(ids[m.bool()], skip_special_tokens=True) for ids, m in pairs]

    texts = decoded(batch.pairs) + decoded(batch.swap_pairs)  # what swap_index points into
    swaps = [[texts[j] for j in row.tolist()] for row in batch.swap_index]  # (N, K) texts
    assert batch.swap_mask.all()
    for i, slots in enumerate(
        swaps
    ):  # P+ and hard negative 1 have decoys: every slot is one; hard negative 2 none
        with_decoys = i % 3 != 2
        assert all(("decoy" in text) == with_decoys for text in slots), (i, slots)
        assert len(set(slots)) == 2  # two distinct decoys, not one twice


@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_false_swap_rate_is_the_share_of_false_slots(tmp_path_factory, rate):
    out = tmp_path_factory.mktemp("dose") / "data"
    synthetic.generate(out, train_rows=400, eval_queries=2, seed=0)
    result = measure(str(out), rows=8, k="auto", batches=50, false_swap_rate=rate)
    assert result["k"] == 5
    assert abs(result["configured"]["swap_slots"] - rate) < 0.03, result
    assert result["unmasked"]["swap_slots"] < 0.02


def test_false_swap_rate_needs_the_concat_fusion():
    with pytest.raises(ValueError, match="data.false_swap_rate=0.5 needs model.fusion=concat"):
        TripletCollator(SPEC, 2, fusion="attention", false_swap_rate=0.5)
    with pytest.raises(ValueError, match=r"data.false_swap_rate=1.5: expected a number in \[0, 1\]"):
        TripletCollator(SPEC, 2, false_swap_rate=1.5)


@pytest.mark.e2e
@pytest.mark.parametrize(("generator", "low", "high"), [("v1", 0.38, 0.46), ("v2", 0.0, 0.01)])
def test_command_reports_the_false_negative_rate_of_each_generator(tmp_path, generator, low, high):
    """The issue measured 41.6 % false swap slots on v1 at 8 rows / K = 3; v2 is built to stay under 1 %."""
    out = tmp_path / generator
    synthetic.generate(out, train_rows=2000, eval_queries=2, seed=0, generator=generator)
    done = run_module(
        "infembed.data.false_negatives",
        "--data",
        str(out),
        "--rows",
        "8",
        "--k",
        "3",
        "--batches",
        "200",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["k"] == 3 and result["batches"] == 200 and result["labelled_triplets"] == 200 * 24
    assert low <= result["unmasked"]["swap_slots"] <= high, result
    assert result["configured"]["swap_slots"] == 0.0  # masked by the labels
    assert done.stdout.startswith("unmasked: false swap slots")


@pytest.mark.e2e
def test_command_on_rows_without_labels_is_one_line_and_exit_1(tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps({c: f"{c} {n}" for c in COLUMNS}) + "\n" for n in range(20)))
    done = run_module("infembed.data.false_negatives", "--data", str(plain), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {plain}: no labelled rows in 2 batches of 8: nothing to judge (labels column)"
    ]


@pytest.mark.e2e
def test_training_run_states_the_k_rule_and_trains_with_a_false_swap_dose(tmp_path):
    done = run_py(
        "debug=smoke",
        "logger=csv",
        "data.false_swap_rate=0.25",
        f"hydra.run.dir={tmp_path}/run",
        cwd=tmp_path,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    # debug=smoke: 4 rows = 12 triplets per device -> the paper's K = 6 instructions, the own one + 5 swaps
    assert "5 swap negatives per triplet (auto: the paper's K = min(12 triplets // 2, 6) = 6" in log
    assert (
        "swaps the passage satisfies masked where rows have labels, 0.25 of swap slots false by design" in log
    )
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["after"]["synthetic"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.false_swap_rate=1.5", "data.false_swap_rate=1.5: expected a number in [0, 1]"),
        ("data.mask_false_swaps=maybe", "data.mask_false_swaps='maybe': expected true or false"),
        (
            "model.fusion=attention data.false_swap_rate=0.5",
            "data.false_swap_rate=0.5 needs model.fusion=concat",
        ),
        ("data.synthetic.generator=v9", "data.synthetic.generator='v9': expected one of v1, v2"),
    ],
)
def test_wrong_false_swap_settings_fail_with_one_line(tmp_path, override, expected):
    done = run_py(
        "debug=smoke", "logger=csv", *override.split(), f"hydra.run.dir={tmp_path}/run", cwd=tmp_path
    )
    message = done.stdout + done.stderr
    assert done.returncode == 1 and expected in message and "Traceback" not in message, message[-2000:]
    assert not (tmp_path / "data").exists()
