"""BIRCO's dev splits (clinical-trial, wtb, doris-mae) as InF-IR rows: real queries, instructions and judgements.

    python experiments/birco_realtext/make_rows.py ../shared/data/birco logs/birco_realtext/rows.jsonl

One row per (dev query, judged-relevant passage), at most ``--per-query`` passages per query:

| column | from BIRCO |
|---|---|
| query_positive, instruction_positive, document_positive | the query, its task's instruction, a relevant passage |
| hard_negative_document_1 | a judged non-relevant passage of the same query's pool (a real hard negative) |
| instruction_negative | the instruction of another dev task (a real objective the positive does not answer) |
| query_negative, hard_negative_document_2 | another query of the same task and one of its relevant passages |

Relevant = the task's top grade (clinical-trial 2 "eligible", wtb 1, doris-mae ≥ 0.5); non-relevant = below the
threshold (clinical-trial 0 or 1 "excluded", wtb 0, doris-mae < 0.25; doris-mae 0.25–0.5 is used for neither).
BIRCO has no passage judged for (another task's instruction, this query), so the triplet (I-, Q+, HN1) is an
approximation: HN1 is a real hard negative of (I+, Q+), but not a judged positive of (I-, Q+). The test splits are
never read; the rows stay outside the repository (BIRCO is CC BY-NC 4.0).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

TASKS = {  # task -> (relevant if score >= this, non-relevant if score < this)
    "clinical-trial": (2.0, 2.0),
    "wtb": (1.0, 1.0),
    "doris-mae": (0.5, 0.25),
}


def read_jsonl(path: Path) -> dict[str, dict]:
    with path.open() as handle:
        return {row["_id"]: row for row in map(json.loads, handle)}


def read_dev_judgements(
    path: Path, relevant: float, non_relevant: float
) -> dict[str, tuple[list[str], list[str]]]:
    """``{query_id: (relevant passage ids, non-relevant passage ids)}`` of the dev qrels (file order kept)."""
    pools: dict[str, tuple[list[str], list[str]]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            pos, neg = pools.setdefault(row["query-id"], ([], []))
            score = float(row["score"])
            if score >= relevant:
                pos.append(row["corpus-id"])
            elif score < non_relevant:
                neg.append(row["corpus-id"])
    return {q: pool for q, pool in pools.items() if pool[0] and pool[1]}


def task_rows(
    root: Path, task: str, other_instructions: list[str], per_query: int, rng: random.Random
) -> list[dict]:
    corpus = read_jsonl(root / task / "corpus.jsonl")
    queries = read_jsonl(root / task / "queries.jsonl")
    pools = read_dev_judgements(root / task / "qrels" / "dev.tsv", *TASKS[task])
    rows = []
    for query_id, (relevant, non_relevant) in pools.items():
        query = queries[query_id]
        others = [q for q in pools if q != query_id]
        for passage_id in rng.sample(relevant, min(per_query, len(relevant))):
            other = rng.choice(others)
            rows.append(
                {
                    "query_positive": query["text"],
                    "query_negative": queries[other]["text"],
                    "instruction_positive": query["instruction"],
                    "instruction_negative": rng.choice(other_instructions),
                    "document_positive": corpus[passage_id]["text"],
                    "hard_negative_document_1": corpus[rng.choice(non_relevant)]["text"],
                    "hard_negative_document_2": corpus[rng.choice(pools[other][0])]["text"],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("birco", type=Path, help="the converted BIRCO root (task folders)")
    parser.add_argument("out", type=Path, help="the InF-IR rows to write (.jsonl)")
    parser.add_argument(
        "--per-query", type=int, default=4, help="at most this many relevant passages per query"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    instructions = {
        t: read_jsonl(args.birco / t / "queries.jsonl").popitem()[1]["instruction"] for t in TASKS
    }
    rows = []
    for task in TASKS:
        others = [text for t, text in instructions.items() if t != task]
        task_part = task_rows(args.birco, task, others, args.per_query, rng)
        print(
            f"{task}: {len(task_part)} rows from {len({r['query_positive'] for r in task_part})} dev queries"
        )
        rows += task_part
    rng.shuffle(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tmp.rename(args.out)
    print(f"{len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
