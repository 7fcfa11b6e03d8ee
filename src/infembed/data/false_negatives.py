"""How often the training negatives are false, from a dataset's labels (data.schema), at a batch size and K.

Batches are drawn as training draws them (one pass of the shuffled stream of `rows` rows each, InfIRStream with
the training seed and shuffle buffer) and their swaps sampled by the project's collator (TripletCollator.sample,
seeded per batch exactly as in training). Over all batches:
    swap slots  a valid slot (i, k) is false when p_i satisfies its instruction's constraints, or the instruction
                is one of p_i's decoys: (Q_i, I_j, p_i) is then a valid triplet that ℓ_I pushes away
                rate = false slots / valid slots; also per sampled (not designed) slot and per triplet (≥ 1)
    passages    an in-batch pair (i, j ≠ i) is false when p_j satisfies Q_i's and I_i's constraints (ℓ_P)
Reported twice: without masking (what the data alone gives) and with the collator as configured
(--mask-false-swaps, --false-swap-rate; the defaults of data/_base.yaml). Rows without labels are not judged.

    python -m infembed.data.false_negatives --data DIR_OR_FILE [--rows 8] [--k auto] [--batches 500]
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from infembed.data.collator import TripletCollator, resolve_num_swap_negatives
from infembed.data.dataset import InfIRStream
from infembed.data.schema import TRIPLETS_PER_ROW, expand_decoys, expand_labels, expand_row, satisfies
from infembed.data.sources import LocalSource
from infembed.errors import UserError


@dataclass
class Counts:
    slots: int = 0
    false_slots: int = 0
    sampled_slots: int = 0  # slots other than the designed I- of a (I+, Q+) triplet
    false_sampled_slots: int = 0
    triplets: int = 0
    triplets_with_false: int = 0
    passage_pairs: int = 0
    false_passage_pairs: int = 0

    def rates(self) -> dict[str, float]:
        def share(part: int, whole: int) -> float:
            return part / whole if whole else 0.0

        return {
            "swap_slots": share(self.false_slots, self.slots),
            "sampled_swap_slots": share(self.false_sampled_slots, self.sampled_slots),
            "triplets_with_a_false_swap": share(self.triplets_with_false, self.triplets),
            "in_batch_passages": share(self.false_passage_pairs, self.passage_pairs),
        }


def count_batch(collator: TripletCollator, rows: list[dict], k: int, counts: Counts) -> None:
    """Add one batch's swap slots and in-batch passage pairs (labelled triplets only) to `counts`."""
    labels = [t for row in rows for t in (expand_labels(row) or [None] * TRIPLETS_PER_ROW)]
    decoys = [d for row in rows for d in expand_decoys(row)]
    instructions = [t[0] for row in rows for t in expand_row(row)]
    constraints: dict[str, dict] = {}
    for text, label in zip(instructions, labels):
        if label is not None:
            constraints.setdefault(text, label[0])
    unique, chosen, mask = collator.sample(instructions, k, collator.generator(rows), rows)
    designed = {i: instructions[i + 1] for i in range(0, len(instructions), TRIPLETS_PER_ROW)}
    for i, label in enumerate(labels):
        if label is None:
            continue
        texts = [unique[u] for u in chosen[i][mask[i]].tolist()]
        false = [t in decoys[i] or (t in constraints and satisfies(label[2], constraints[t])) for t in texts]
        sampled = [f for t, f in zip(texts, false) if t != designed.get(i)]
        counts.slots += len(false)
        counts.false_slots += sum(false)
        counts.sampled_slots += len(sampled)
        counts.false_sampled_slots += sum(sampled)
        counts.triplets += 1
        counts.triplets_with_false += any(false)
        for j, other in enumerate(labels):
            if j != i and other is not None:
                counts.passage_pairs += 1
                counts.false_passage_pairs += satisfies(other[2], label[1]) and satisfies(other[2], label[0])


def measure(
    data: str,
    rows: int = 8,
    k: int | str = "auto",
    batches: int = 500,
    seed: int = 42,
    shuffle_buffer: int = 1000,
    mask_false_swaps: bool = True,
    false_swap_rate: float = 0.0,
) -> dict:
    """{"k", "batches", "labelled_triplets", "unmasked": rates, "configured": rates} (see the module docstring)."""
    path = Path(data)
    source = LocalSource(str(path / "train.jsonl" if path.is_dir() else path))
    swaps = resolve_num_swap_negatives(k, TRIPLETS_PER_ROW * rows)
    collators = {
        "unmasked": TripletCollator(None, swaps, seed, mask_false_swaps=False),
        "configured": TripletCollator(None, swaps, seed, "concat", mask_false_swaps, false_swap_rate),
    }
    counts = {name: Counts() for name in collators}
    stream = iter(InfIRStream(source, shuffle_buffer=shuffle_buffer, seed=seed))
    drawn = 0
    for drawn in range(1, batches + 1):
        batch = list(itertools.islice(stream, rows))
        if len(batch) < rows:
            drawn -= 1
            break
        for name, collator in collators.items():
            count_batch(collator, batch, swaps, counts[name])
    if counts["unmasked"].triplets == 0:
        raise UserError(
            f"{data}: no labelled rows in {drawn} batches of {rows}: nothing to judge (labels column)"
        )
    return {
        "rows": rows,
        "k": swaps,
        "batches": drawn,
        "labelled_triplets": counts["unmasked"].triplets,
        "mask_false_swaps": mask_false_swaps,
        "false_swap_rate": false_swap_rate,
        **{name: c.rates() for name, c in counts.items()},
    }


def _swaps(value: str) -> int | str:
    return value if value == "auto" else int(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", required=True, help="a synthetic data directory (its train.jsonl) or a file"
    )
    parser.add_argument("--rows", type=int, default=8, help="rows per device batch (data.global_batch_size)")
    parser.add_argument(
        "--k", type=_swaps, default="auto", help="swaps per triplet or auto (the paper's rule)"
    )
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--shuffle-buffer", type=int, default=1000)
    parser.add_argument("--no-mask-false-swaps", dest="mask", action="store_false")
    parser.add_argument("--false-swap-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        result = measure(
            args.data,
            args.rows,
            args.k,
            args.batches,
            args.seed,
            args.shuffle_buffer,
            args.mask,
            args.false_swap_rate,
        )
    except UserError as err:  # a missing or malformed file: one line, exit 1
        raise SystemExit(f"error: {err}") from None
    for name in ("unmasked", "configured"):
        rates = result[name]
        print(
            f"{name}: false swap slots {100 * rates['swap_slots']:.1f} % (sampled slots "
            f"{100 * rates['sampled_swap_slots']:.1f} %, triplets with one "
            f"{100 * rates['triplets_with_a_false_swap']:.1f} %), false in-batch passages "
            f"{100 * rates['in_batch_passages']:.2f} %"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
